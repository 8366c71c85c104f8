"""The one ``main`` of every project node: init, spin, clean shutdown on Ctrl-C, the node always destroyed."""

from __future__ import annotations

import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node


def run_node(node_class: type[Node], args: list[str] | None = None) -> None:
    """Spin one node in rclpy's single-threaded executor until shutdown.

    Nodes with timing-critical work (the actor's control loop, the simulation's physics) run it in their own thread;
    one executor thread for the callbacks keeps the GIL free for it (a multi-threaded executor measurably starved
    the actor's loop). ``destroy_node`` runs on every exit path, so nodes can write their final state there.
    A node that can finish by itself (the actor after ``max_episodes``) has a ``finished`` rclpy Future: spinning
    ends when it completes, and the process exits 0, without shutting the context down from another thread.
    """
    rclpy.init(args=args)
    node = None
    try:
        node = node_class()
        finished = getattr(node, "finished", None)
        if finished is not None:
            rclpy.spin_until_future_complete(node, finished)
        else:
            rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
