"""Append-only journal of received transitions: what makes the replay buffers survive a crash.

Every accepted transition is appended, as its serialized (CDR) message, to the current segment file before the
learner handles the next message. On restart the learner replays the journal through the same ingest path, so the
buffers come back exactly as they were (ingest is deterministic).

Loss window (documented in the package README):
- the learner process killed (SIGKILL, OOM, a crash): nothing is lost; each record is handed to the OS with one
  write() as it arrives, and the OS keeps it;
- the machine losing power: at most ``fsync_period_s`` seconds of transitions (records are fsync'ed that often).

Record layout: 4-byte little-endian payload length, 4-byte CRC-32 of the payload, payload. A kill in the middle of a
write leaves a torn record at the end of the newest segment; reading stops there and the next open truncates it.
Segment files roll over at ``segment_bytes`` so old data can be archived or removed by whole files.
"""

from __future__ import annotations

import os
import struct
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

from so101_contract.files import fsync_path

HEADER = struct.Struct("<II")
SEGMENT_SUFFIX = ".journal"


class JournalError(RuntimeError):
    pass


def _segments(directory: Path) -> list[Path]:
    return sorted(directory.glob(f"*{SEGMENT_SUFFIX}"))


def _valid_length(path: Path) -> tuple[int, int]:
    """(bytes of whole valid records, record count) at the start of a segment."""
    size = path.stat().st_size
    offset = count = 0
    with open(path, "rb") as handle:
        while offset + HEADER.size <= size:
            length, crc = HEADER.unpack(handle.read(HEADER.size))
            if offset + HEADER.size + length > size:
                break
            payload = handle.read(length)
            if zlib.crc32(payload) != crc:
                break
            offset += HEADER.size + length
            count += 1
    return offset, count


def read_journal(directory: Path) -> Iterator[bytes]:
    """Every whole record, oldest first. A torn or corrupt record ends its segment (only the newest can have one)."""
    segments = _segments(Path(directory))
    for index, path in enumerate(segments):
        valid, _ = _valid_length(path)
        if valid < path.stat().st_size and index < len(segments) - 1:
            raise JournalError(
                f"{path}: corrupt record at byte {valid} in a segment that is not the newest; the journal was "
                "modified outside the learner. Move that file away to start from the records before it."
            )
        with open(path, "rb") as handle:
            offset = 0
            while offset < valid:
                length, _ = HEADER.unpack(handle.read(HEADER.size))
                yield handle.read(length)
                offset += HEADER.size + length


class TransitionJournal:
    def __init__(self, directory: Path, fsync_period_s: float = 1.0, segment_bytes: int = 256 * 1024 * 1024):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.fsync_period_s = float(fsync_period_s)
        self.segment_bytes = int(segment_bytes)
        self.records = 0
        segments = _segments(self.directory)
        for path in segments[:-1]:
            self.records += _valid_length(path)[1]
        if segments:
            path = segments[-1]
            valid, count = _valid_length(path)
            self.records += count
            if valid < path.stat().st_size:  # a torn tail from a kill mid-write: cut it so appends stay readable
                with open(path, "r+b") as handle:
                    handle.truncate(valid)
                    os.fsync(handle.fileno())
            self._open(path)
        else:
            self._open(self.directory / f"{0:08d}{SEGMENT_SUFFIX}")
        self._last_sync = time.monotonic()

    def _open(self, path: Path) -> None:
        self._path = path
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self._size = os.fstat(self._fd).st_size
        fsync_path(self.directory)

    def append(self, payload: bytes) -> None:
        record = HEADER.pack(len(payload), zlib.crc32(payload)) + payload
        if self._size > 0 and self._size + len(record) > self.segment_bytes:
            self._roll()
        written = os.write(self._fd, record)  # one write: a kill leaves the record whole or torn, never interleaved
        if written != len(record):
            raise JournalError(f"{self._path}: short write ({written} of {len(record)} bytes); is the disk full?")
        self._size += written
        self.records += 1
        if time.monotonic() - self._last_sync >= self.fsync_period_s:
            self.sync()

    def _roll(self) -> None:
        self.sync()
        os.close(self._fd)
        number = int(self._path.stem) + 1
        self._open(self.directory / f"{number:08d}{SEGMENT_SUFFIX}")

    def sync(self) -> None:
        os.fsync(self._fd)
        self._last_sync = time.monotonic()

    def close(self) -> None:
        if self._fd >= 0:
            self.sync()
            os.close(self._fd)
            self._fd = -1
