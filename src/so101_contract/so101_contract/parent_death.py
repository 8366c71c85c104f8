"""A node process dies with the process that started it (the runner, `ros2 launch`), however that one dies.

Linux sends a process a chosen signal when its parent exits (prctl PR_SET_PDEATHSIG). A runner that is SIGKILLed
cannot stop its nodes, and nodes in their own sessions would otherwise train on, unsupervised, on a domain the
next run then shares. A node takes the signal as a stop request (so101_contract.node_main: SIGHUP, a short one).
Elsewhere than Linux this does nothing.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1
PARENT_PID_ENV = "SO101_PARENT_PID"  # set by a starter that must be the parent still there (the runner)


def die_with_parent(sig: int = signal.SIGHUP) -> bool:
    """Ask the kernel for ``sig`` when this process's parent exits; True when set. A parent named in
    ``$SO101_PARENT_PID`` that is already gone (it died while this process started) cannot signal any more: then
    ``sig`` is raised now."""
    if not sys.platform.startswith("linux"):
        return False
    parent = os.environ.get(PARENT_PID_ENV, "")
    parent_pid = int(parent) if parent.isdigit() else None
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
        return False
    if parent_pid is not None and os.getppid() != parent_pid:
        os.kill(os.getpid(), sig)
    return True
