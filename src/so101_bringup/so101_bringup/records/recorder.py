"""recorder: the project's topics into a rosbag2 bag (MCAP) with ``rosbags``, for machines without ``ros2 bag``.

Raw subscriptions (the CDR bytes on the wire, as ``ros2 bag record`` stores them), each connection with its full
message definition, so ``ros2 bag`` and ``rosbags`` both read the bag. Topics are picked up as their publishers
appear, with QoS matching them; Ctrl-C or SIGTERM closes the bag with its index."""

from __future__ import annotations

import so101_contract.quiet_interrupt  # noqa: F401  (first: Ctrl-C during the heavy imports below is quiet)

# isort: split
import argparse
import signal
import sys
import time
from pathlib import Path

from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.utilities import remove_ros_args
from rosbags.interfaces import Qos, QosDurability, QosHistory, QosLiveliness, QosReliability, QosTime
from rosbags.rosbag2 import StoragePlugin, Writer

from so101_bringup.graph import RECORDED_TOPICS  # the graph declaration owns the list
from so101_bringup.records.bag_types import TypeDefinitionError, ensure_type, message_class, project_typestore
from so101_contract.cli import positive_float
from so101_contract.node_main import run_node

RELIABLE_DEPTH = 1000  # a writer hiccup (disk flush) must not drop transitions
BEST_EFFORT_DEPTH = 100  # sensor streams: bounded memory for images


def _qos_time(duration) -> QosTime:
    ns = int(duration.nanoseconds)
    return QosTime(sec=ns // 1_000_000_000, nsec=ns % 1_000_000_000)


def _bag_qos(profile: QoSProfile) -> Qos:
    """An rclpy QoS profile as rosbag2 metadata (the enum values are rmw's in both)."""
    return Qos(
        history=QosHistory(int(profile.history)),
        depth=int(profile.depth),
        reliability=QosReliability(int(profile.reliability)),
        durability=QosDurability(int(profile.durability)),
        deadline=_qos_time(profile.deadline),
        lifespan=_qos_time(profile.lifespan),
        liveliness=QosLiveliness(int(profile.liveliness)),
        liveliness_lease_duration=_qos_time(profile.liveliness_lease_duration),
        avoid_ros_namespace_conventions=bool(profile.avoid_ros_namespace_conventions),
    )


def subscription_qos(offered: list[QoSProfile]) -> QoSProfile:
    """A profile that matches every publisher: best effort if any offers only that, transient local if all offer it."""
    best_effort = any(p.reliability == ReliabilityPolicy.BEST_EFFORT for p in offered)
    latched = bool(offered) and all(p.durability == DurabilityPolicy.TRANSIENT_LOCAL for p in offered)
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST,
        depth=BEST_EFFORT_DEPTH if best_effort else RELIABLE_DEPTH,
        reliability=ReliabilityPolicy.BEST_EFFORT if best_effort else ReliabilityPolicy.RELIABLE,
        durability=DurabilityPolicy.TRANSIENT_LOCAL if latched else DurabilityPolicy.VOLATILE,
    )


class BagRecorder(Node):
    def __init__(self, out: Path, topics: tuple[str, ...], discovery_timeout_s: float, poll_period_s: float):
        super().__init__("bag_recorder")
        out = Path(out)
        if out.exists():
            raise FileExistsError(f"--out {out} already exists; rosbag2 bags are written to a new directory")
        out.parent.mkdir(parents=True, exist_ok=True)
        self.out = out
        self.typestore = project_typestore()
        # Fully qualified names (as ros2 bag stores them): relative ones resolve in this node's namespace.
        self.wanted = {self.resolve_topic_name(t): t for t in topics}
        self.counts: dict[str, int] = {}
        self._connections: dict[str, object] = {}
        self._writer = Writer(out, version=9, storage_plugin=StoragePlugin.MCAP)
        self._writer.open()
        self._closed = False
        self._deadline = time.monotonic() + discovery_timeout_s
        self._warned_missing = False
        self._discover()
        self.create_timer(poll_period_s, self._discover)
        self.get_logger().info(f"recording {len(self.wanted)} topics into {out} (MCAP)")

    def _discover(self) -> None:
        if self._closed:
            return
        types = dict(self.get_topic_names_and_types())
        for topic in sorted(set(self.wanted) - set(self._connections)):
            # A topic seen only through its subscribers is not ready: its publishers' QoS decides ours (a reliable
            # subscription would never match the sensor-data publisher that appears later).
            if topic in types and self.count_publishers(topic) > 0:
                self._subscribe(topic, types[topic])
        missing = sorted(set(self.wanted) - set(self._connections))
        if missing and not self._warned_missing and time.monotonic() > self._deadline:
            self._warned_missing = True
            self.get_logger().warning(
                f"no publisher yet on {', '.join(missing)}; still watching, they are recorded once they appear"
            )

    def _subscribe(self, topic: str, type_names: list[str]) -> None:
        if len(type_names) != 1:
            self.get_logger().error(f"{topic} has several types {type_names}; not recorded")
            self._connections[topic] = None
            return
        msgtype = type_names[0]
        try:
            ensure_type(self.typestore, msgtype)
            msg_class = message_class(msgtype)
        except (TypeDefinitionError, AttributeError, ModuleNotFoundError, ValueError) as err:
            self.get_logger().error(f"{topic} ({msgtype}) not recorded: {err}")
            self._connections[topic] = None
            return
        offered = [info.qos_profile for info in self.get_publishers_info_by_topic(topic)]
        connection = self._writer.add_connection(
            topic, msgtype, typestore=self.typestore, offered_qos_profiles=[_bag_qos(p) for p in offered]
        )
        self._connections[topic] = connection
        self.counts[topic] = 0

        def on_message(data: bytes, topic=topic, connection=connection) -> None:
            if self._closed:
                return
            self._writer.write(connection, self.get_clock().now().nanoseconds, data)
            self.counts[topic] += 1

        self.create_subscription(msg_class, topic, on_message, subscription_qos(offered), raw=True)
        self.get_logger().info(f"recording {topic} ({msgtype})")

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._writer.close()
        summary = ", ".join(f"{t}: {n}" for t, n in sorted(self.counts.items())) or "nothing"
        print(f"recorder: bag {self.out} closed ({summary})", flush=True)  # the ROS context may be shut down already

    shutdown_timeout_s = 8.0  # node_main's bound: closing a large bag writes its index; it must not be cut short

    def destroy_node(self) -> None:
        # A second Ctrl-C (or the runner's SIGTERM) must not cut the close short and leave a bag without its index.
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_IGN)
        self.close()
        super().destroy_node()


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m so101_bringup.records.recorder",
        description="Record ROS 2 topics into a rosbag2 bag (MCAP) without ros2 bag: serialized messages, with "
        "their definitions (the project's custom messages included). Stop with Ctrl-C; the bag is then closed "
        "and readable by `ros2 bag info/play` and by rosbags. ROS arguments (--ros-args -r __ns:=/robot) work.",
    )
    parser.add_argument("--out", required=True, type=Path, help="bag directory to create (must not exist)")
    parser.add_argument(
        "--topics",
        nargs="+",
        default=list(RECORDED_TOPICS),
        help="topics to record; relative names resolve in the node's namespace (default: the project's topics)",
    )
    parser.add_argument(
        "--discovery-timeout",
        type=float,
        default=10.0,
        help="seconds after which topics without a publisher are named in a warning (they are still picked up later)",
    )
    parser.add_argument("--poll-period", type=positive_float, default=0.5, help="seconds between looks at the graph")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv if argv is None else argv
    args = parse_args(remove_ros_args(argv)[1:])
    if args.out.exists():
        sys.exit(f"recorder: --out {args.out} already exists; rosbag2 bags are written to a new directory")
    run_node(
        lambda: BagRecorder(args.out, tuple(args.topics), args.discovery_timeout, args.poll_period),
        argv,
    )


if __name__ == "__main__":
    main()
