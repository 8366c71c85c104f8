"""Imported first by every node module and the runner, before their heavy imports (torch, MuJoCo, pinocchio, rclpy):
a Ctrl-C while they load (the first seconds of the process) is noted, not raised, and honoured once the process can:
node_main stops the node as it takes the signals over, the runner exits at its start (``take_over``). Raised there,
the KeyboardInterrupt could land inside a C++ extension's import (rclpy and pinocchio are pybind11 modules) and abort
the process ("terminate called after throwing an instance of 'pybind11::error_already_set'").

It also sets sys.excepthook so that an uncaught KeyboardInterrupt prints nothing; an error raised because of one is
silent too. Every other uncaught exception prints as before.
"""

from __future__ import annotations

import signal
import sys
import threading

# A Ctrl-C arrived while the process's modules loaded: node_main (or the runner's take_over) stops it at once.
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


def _on_sigint(_signum, _frame) -> None:
    INTERRUPTED.set()  # only noted: see the module's docstring


def take_over() -> bool:
    """For a process that is not a node (the runner), once its imports are done: Ctrl-C raises KeyboardInterrupt
    again from now on. True when one came during the imports: the process should stop at once."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.default_int_handler)
    return INTERRUPTED.is_set()


if (
    threading.current_thread() is threading.main_thread()
    and signal.getsignal(signal.SIGINT) is signal.default_int_handler
):
    signal.signal(signal.SIGINT, _on_sigint)

if not getattr(sys.excepthook, "so101_quiet", False):
    _quiet_keyboard_interrupt.so101_quiet = True
    sys.excepthook = _quiet_keyboard_interrupt
