"""A node that misbehaves at shutdown in one chosen way, run by test_node_main.py through node_main.run_node.

python shutdown_probe_node.py --ros-args -p mode:=MODE [-p shutdown_timeout_s:=S]

It publishes std_msgs/String on ``probe/alive`` every 50 ms (the test waits for that), then per mode:
- ``destroy_node``: destroy_node blocks forever on an event (Python code, the GIL free);
- ``destroy_node_holding_gil``: destroy_node blocks in C code that holds the GIL (libc sleep via ctypes.PyDLL), as
  a middleware teardown spinning in C would;
- ``context_shutdown``: a context on_shutdown callback blocks, i.e. rclpy's shutdown hangs after the node is gone;
- ``publish_after_destroy``: a worker thread that nobody stops publishes every millisecond until its publisher is
  destroyed under it;
- ``thread_dies``: a worker thread raises once a subscriber sees the node (no signal needed);
- ``slow_start``: the constructor takes 1.5 s after printing ``constructing`` (a signal comes meanwhile); the
  node prints ``destroyed`` from destroy_node;
- ``clean``: nothing wrong.
"""

from __future__ import annotations

import ctypes
import threading
import time

from rclpy.node import Node
from std_msgs.msg import String

from so101_contract.node_main import run_node
from so101_contract.parameters import declare

MODES = (
    "clean",
    "destroy_node",
    "destroy_node_holding_gil",
    "context_shutdown",
    "publish_after_destroy",
    "thread_dies",
    "slow_start",
)
SLOW_START_S = 1.5


def _block_forever() -> None:
    threading.Event().wait()


class ShutdownProbeNode(Node):
    def __init__(self):
        super().__init__("shutdown_probe")
        self.mode = declare(self, "mode", "clean", "how the node misbehaves at shutdown", MODES)
        if self.mode == "slow_start":
            print("constructing", flush=True)
            time.sleep(SLOW_START_S)  # as a learner loading its replay buffer
        self.shutdown_timeout_s = declare(self, "shutdown_timeout_s", 2.0, "node_main's bound (s)", (0.1, 60.0))
        self.alive_pub = self.create_publisher(String, "probe/alive", 10)
        self.create_timer(0.05, lambda: self.alive_pub.publish(String(data=self.mode)))
        if self.mode == "context_shutdown":
            self.context.on_shutdown(_block_forever)  # a plain function: rclpy keeps it (methods only weakly)
        if self.mode in ("publish_after_destroy", "thread_dies"):
            threading.Thread(target=self._worker, name=f"probe-{self.mode}", daemon=True).start()

    def _worker(self) -> None:
        if self.mode == "thread_dies":
            while self.alive_pub.get_subscription_count() == 0:  # the test has seen the node up
                threading.Event().wait(0.05)
            threading.Event().wait(0.5)
            raise RuntimeError("probe worker failed")
        while True:  # deliberately ignores any stop: its publish races the teardown
            self.alive_pub.publish(String(data="worker"))
            threading.Event().wait(0.001)

    def destroy_node(self) -> None:
        if self.mode == "slow_start":
            print("destroyed", flush=True)
        if self.mode == "destroy_node":
            _block_forever()
        elif self.mode == "destroy_node_holding_gil":
            ctypes.PyDLL(None).sleep(3600)  # PyDLL keeps the GIL for the call
        super().destroy_node()


if __name__ == "__main__":
    run_node(ShutdownProbeNode)
