"""Imported first by every node module, before its heavy imports (torch, MuJoCo, pinocchio): a Ctrl-C while they load
(the first seconds of a node process, before node_main.run_node takes the signals over) ends the process quietly.

It sets sys.excepthook so that an uncaught KeyboardInterrupt prints nothing (a 25-line traceback from inside
``import torch`` otherwise); Python then exits as interrupted by SIGINT (status 130 in a shell, -2 to a parent that
reads it with subprocess); an error raised because of the interrupt is silent too. Every other uncaught exception
prints as before.
"""

from __future__ import annotations

import signal
import sys
import threading

# A Ctrl-C arrived while the node's modules loaded. Some library code swallows the KeyboardInterrupt (an import that
# catches BaseException); node_main then stops the node as soon as it takes the signals over, instead of running on.
INTERRUPTED = threading.Event()


def _interrupted(exc: BaseException | None) -> bool:
    """A KeyboardInterrupt, or an error raised because of one (rclpy's C-extension import turns a Ctrl-C that lands
    in it into ``ImportError: initialization failed``)."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, KeyboardInterrupt):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False


def _quiet_keyboard_interrupt(exc_type, exc, tb, _previous=sys.excepthook) -> None:
    if issubclass(exc_type, KeyboardInterrupt) or _interrupted(exc):
        return
    _previous(exc_type, exc, tb)


def _on_sigint(signum, frame) -> None:
    INTERRUPTED.set()
    signal.default_int_handler(signum, frame)  # KeyboardInterrupt, as Python's own handler does


if (
    threading.current_thread() is threading.main_thread()
    and signal.getsignal(signal.SIGINT) is signal.default_int_handler
):
    signal.signal(signal.SIGINT, _on_sigint)

if not getattr(sys.excepthook, "so101_quiet", False):
    _quiet_keyboard_interrupt.so101_quiet = True
    sys.excepthook = _quiet_keyboard_interrupt
