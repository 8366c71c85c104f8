"""An in-process probe node for graph tests: subscribe, publish, call services and wait, always with a timeout."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import rclpy
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import QoSProfile


class GraphTimeout(AssertionError):
    """A wait on the graph ran out of time (an AssertionError, so pytest reports it as a test failure)."""


def wait_until(predicate: Callable[[], Any], timeout_s: float, what: str, period_s: float = 0.01) -> Any:
    """Poll ``predicate`` until it returns something truthy; raise GraphTimeout naming ``what`` otherwise."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise GraphTimeout(f"timed out after {timeout_s:.1f} s waiting for {what}")
        time.sleep(period_s)


class Recorder:
    """Messages received on one subscription, with receive times, safe to read from the test thread."""

    def __init__(self):
        self._lock = threading.Lock()
        self._messages: list[Any] = []
        self._times: list[float] = []

    def __call__(self, msg: Any) -> None:
        with self._lock:
            self._messages.append(msg)
            self._times.append(time.monotonic())

    @property
    def messages(self) -> list[Any]:
        with self._lock:
            return list(self._messages)

    @property
    def times(self) -> list[float]:
        with self._lock:
            return list(self._times)

    def __len__(self) -> int:
        with self._lock:
            return len(self._messages)

    def wait_for(self, count: int, timeout_s: float, what: str = "messages") -> list[Any]:
        wait_until(lambda: len(self) >= count, timeout_s, f"{count} {what} (got {len(self)})")
        return self.messages

    def rate_hz(self, skip: int = 1) -> float:
        """Mean receive rate over the recorded messages, ignoring the first ``skip`` (discovery warm-up)."""
        times = self.times[skip:]
        if len(times) < 2:
            return 0.0
        return (len(times) - 1) / (times[-1] - times[0])


class GraphProbe:
    """A node in a private rclpy context, spun by a background thread. Use as a context manager."""

    def __init__(self, name: str = "so101_test_probe", namespace: str = ""):
        self.context = Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node(name, namespace=namespace, context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self._thread = threading.Thread(target=self._spin, name=f"{name}-spin", daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        try:
            while self.context.ok():
                self.executor.spin_once(timeout_sec=0.05)
        except Exception:
            pass

    def subscribe(self, msg_type: type, topic: str, qos: QoSProfile | int = 10, raw: bool = False) -> Recorder:
        recorder = Recorder()
        self.node.create_subscription(msg_type, topic, recorder, qos, raw=raw)
        return recorder

    def publisher(self, msg_type: type, topic: str, qos: QoSProfile | int = 10):
        return self.node.create_publisher(msg_type, topic, qos)

    def wait_for_subscribers(self, publisher, count: int = 1, timeout_s: float = 20.0) -> None:
        wait_until(
            lambda: publisher.get_subscription_count() >= count,
            timeout_s,
            f"{count} subscriber(s) on {publisher.topic_name}",
        )

    def wait_for_publishers(self, topic: str, count: int = 1, timeout_s: float = 20.0) -> None:
        wait_until(lambda: self.node.count_publishers(topic) >= count, timeout_s, f"{count} publisher(s) on {topic}")

    def call(self, srv_type: type, name: str, request: Any, timeout_s: float = 20.0) -> Any:
        client = self.node.create_client(srv_type, name)
        try:
            wait_until(client.service_is_ready, timeout_s, f"service {name}")
            future = client.call_async(request)
            wait_until(future.done, timeout_s, f"the reply of {name}")
            return future.result()
        finally:
            self.node.destroy_client(client)

    def close(self) -> None:
        try:
            self.context.shutdown()
        except Exception:
            pass
        self._thread.join(timeout=5.0)
        self.executor.shutdown(timeout_sec=1.0)
        self.node.destroy_node()

    def __enter__(self) -> GraphProbe:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
