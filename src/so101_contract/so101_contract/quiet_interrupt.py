"""Imported first by every node module, before its heavy imports (torch, MuJoCo, pinocchio): a Ctrl-C while they load
(the first seconds of a node process, before node_main.run_node takes the signals over) ends the process quietly.

It sets sys.excepthook so that an uncaught KeyboardInterrupt prints nothing (a 25-line traceback from inside
``import torch`` otherwise); Python then exits as interrupted by SIGINT (status 130 in a shell, -2 to a parent that
reads it with subprocess); an error raised because of the interrupt is silent too. Every other uncaught exception
prints as before.
"""

from __future__ import annotations

import sys


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


if not getattr(sys.excepthook, "so101_quiet", False):
    _quiet_keyboard_interrupt.so101_quiet = True
    sys.excepthook = _quiet_keyboard_interrupt
