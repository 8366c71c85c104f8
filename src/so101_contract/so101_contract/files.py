"""Atomic file writes: a crash or a power cut leaves the old file or the complete new one, never half of one.

Everything the project writes for another process or a later run to read (policy weights, models, calibration,
metrics, datasets, run metadata) goes through here. Checkpoint directories, renamed whole, use ``fsync_path``.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path


def fsync_path(path: str | os.PathLike) -> None:
    """fsync a file or a directory (a rename is durable only once its directory is)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: str | os.PathLike, write: Callable[[str], None]) -> None:
    """``write(temporary_path)`` fills a file beside ``path``; it is fsynced and renamed over ``path``, then the
    directory is fsynced. The file gets the usual permissions (0666 less the umask), not mkstemp's private 0600.
    If ``write`` raises, ``path`` is untouched and the temporary file is removed."""
    path = Path(path)
    directory = path.parent if str(path.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    os.close(fd)
    try:
        write(tmp)
        fsync_path(tmp)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    try:  # make the rename itself durable; not every platform can open a directory
        fsync_path(directory)
    except OSError:
        pass


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write(path, lambda tmp: Path(tmp).write_text(text))


def _umask() -> int:
    mask = os.umask(0)  # the only way to read it; nodes are single-process, and this runs at save time only
    os.umask(mask)
    return mask
