"""keyboard: single key presses in a terminal as operator commands (std_msgs/UInt8 on ``operator/commands``).

space = toggle intervention, s = mark success, f = mark failure, q or Ctrl-C = quit. The terminal is put in
cbreak mode (termios: no line buffering, no echo, but Ctrl-C still interrupts and log lines still print normally)
and restored on exit, whatever the exit. Without a terminal on stdin (a launch file, a pipe) the node says so and
exits cleanly without touching anything: use the ``operator/command`` service, a pedal or a joystick there.
"""

from __future__ import annotations

import os
import select
import sys
from dataclasses import dataclass

import rclpy
from rclpy.node import Node
from std_msgs.msg import UInt8

from so101_contract import qos
from so101_contract.parameters import declare_config
from so101_hilserl_interfaces.srv import OperatorCommand

KEYS = {
    " ": OperatorCommand.Request.TOGGLE_INTERVENTION,
    "s": OperatorCommand.Request.MARK_SUCCESS,
    "f": OperatorCommand.Request.MARK_FAILURE,
}
QUIT_KEYS = ("q", "\x03", "\x04")  # q, Ctrl-C, Ctrl-D
HELP = "keyboard: space = toggle intervention, s = mark success, f = mark failure, q = quit"


@dataclass(frozen=True)
class KeyboardConfig:
    """No parameters: the keys are fixed (KEYS), and the commands go to ``operator/commands``."""


CONFIG = KeyboardConfig


def command_for_key(key: str) -> int | None:
    """The OperatorCommand constant of a key, or None for keys without a meaning (case-insensitive)."""
    return KEYS.get(key.lower() if key != " " else key)


def run(node: Node, fd: int) -> None:
    """Read keys from ``fd`` (already in cbreak mode) and publish their commands until quit or shutdown."""
    publisher = node.create_publisher(UInt8, "operator/commands", qos.EVENTS)
    node.get_logger().info(HELP)
    while rclpy.ok(context=node.context):
        readable, _, _ = select.select([fd], [], [], 0.1)
        if not readable:
            continue
        data = os.read(fd, 1)
        if not data:  # end of input
            return
        key = data.decode(errors="replace")
        if key in QUIT_KEYS:
            return
        command = command_for_key(key)
        if command is not None:
            publisher.publish(UInt8(data=command))
            node.get_logger().info(f"sent {key!r} -> command {command}")


def main(args=None) -> None:
    rclpy.init(args=args)
    node = Node("keyboard")
    try:
        declare_config(node, CONFIG)
        if not sys.stdin.isatty():
            node.get_logger().warning(
                "stdin is not a terminal: nothing to read keys from, exiting. Run the keyboard node in a terminal "
                "(ros2 run so101_hilserl_actor keyboard_node), or use the operator/command service or a joystick."
            )
            return
        import termios
        import tty

        fd = sys.stdin.fileno()
        saved = termios.tcgetattr(fd)
        try:
            tty.setcbreak(fd)
            run(node, fd)
        except KeyboardInterrupt:
            pass
        finally:
            termios.tcsetattr(fd, termios.TCSADRAIN, saved)
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    main()
