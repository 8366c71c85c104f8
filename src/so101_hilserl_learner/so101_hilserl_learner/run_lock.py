"""One writer per run directory: the learner holds ``run_dir/.lock`` while it runs; the importer and
``checkpoint_tool repair`` take it for their write and refuse while someone else holds it.

An fcntl.flock on an open file: the OS releases it when the holder exits, however it exits (a SIGKILL'ed learner
leaves no stale lock behind). The file's text names the holder, for the refusal message only.
"""

from __future__ import annotations

import fcntl
import os
import socket
from pathlib import Path

LOCK_FILE = ".lock"


class RunDirBusy(RuntimeError):
    """Another process holds the run directory; the text names it and says what to do."""


class RunDirLock:
    def __init__(self, run_dir: Path, holder: str):
        self.path = Path(run_dir) / LOCK_FILE
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            other = os.pread(self._fd, 200, 0).decode(errors="replace").strip() or "another process"
            os.close(self._fd)
            self._fd = -1
            raise RunDirBusy(
                f"{self.path.parent} is in use by {other}; stop it first (one writer per run directory)"
            ) from None
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, f"{holder} (pid {os.getpid()} on {socket.gethostname()})\n".encode(), 0)

    def release(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)  # closing the file releases the flock
            self._fd = -1

    def __enter__(self) -> RunDirLock:
        return self

    def __exit__(self, *exc) -> None:
        self.release()
