"""A node that republishes every message it receives, after deserializing it: half of a DDS round trip test.

python -m so101_testing.echo so101_hilserl_interfaces/msg/Transition echo_in echo_out [--latched]
"""

from __future__ import annotations

import argparse
import importlib

import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy


def import_message(type_name: str) -> type:
    """'pkg/msg/Name' -> the generated Python class."""
    package, kind, name = type_name.split("/")
    return getattr(importlib.import_module(f"{package}.{kind}"), name)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("type", help="message type, e.g. std_msgs/msg/String")
    parser.add_argument("input", help="topic to read")
    parser.add_argument("output", help="topic to republish on")
    parser.add_argument("--latched", action="store_true", help="use reliable transient-local QoS, depth 1")
    args, ros_args = parser.parse_known_args(argv)

    msg_type = import_message(args.type)
    qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
    if args.latched:
        qos = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)

    rclpy.init(args=ros_args)
    node = rclpy.create_node("so101_echo")
    publisher = node.create_publisher(msg_type, args.output, qos)
    node.create_subscription(msg_type, args.input, publisher.publish, qos)
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    main()
