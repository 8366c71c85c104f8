"""Append-only journal of received transitions: what makes the replay buffers survive a crash.

Every accepted transition is appended, as its serialized (CDR) message, to the current segment file before the
learner handles the next message; on restart the learner replays the journal through the same ingest path, so the
buffers come back exactly as they were. A killed learner process loses nothing (each record is one write() the OS
keeps); a power loss costs at most ``fsync_period_s`` seconds of transitions. Damage never costs more than the damaged
bytes (``TransitionJournal`` has the record layout and the rules), and ``repair_journal`` rewrites a journal from
its valid records.
"""

from __future__ import annotations

import mmap
import os
import shutil
import struct
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from so101_contract.files import fsync_path

MAGIC = b"SOJ1"
HEADER = struct.Struct("<4sII")  # magic, payload length, CRC-32 of the payload
LEGACY_HEADER = struct.Struct("<II")  # segments written before the magic: payload length, CRC-32
SEGMENT_SUFFIX = ".journal"


class JournalError(RuntimeError):
    pass


@dataclass(frozen=True)
class Damage:
    """Bytes of a segment that hold no valid record: ``skipped`` (kept on disk, read past) or ``torn`` (the end of
    the newest segment, where a kill interrupted a write; cut when the journal is next opened for appending)."""

    path: Path
    offset: int
    length: int
    kind: str

    def __str__(self) -> str:
        what = "a torn tail (an interrupted write)" if self.kind == "torn" else "no valid record: skipped"
        return f"{self.path}: {self.length} bytes at byte {self.offset}: {what}"


@dataclass
class SegmentScan:
    path: Path
    records: list[tuple[int, int]]  # (payload offset, payload length) of each valid record, in order
    damage: list[Damage]
    legacy: bool = False

    @property
    def torn(self) -> Damage | None:
        return self.damage[-1] if self.damage and self.damage[-1].kind == "torn" else None


def _segments(directory: Path) -> list[Path]:
    return sorted(directory.glob(f"*{SEGMENT_SUFFIX}"))


def _valid_at(data, offset: int, size: int) -> int | None:
    """Payload length of a whole valid record at ``offset``, else None."""
    if offset + HEADER.size > size:
        return None
    magic, length, crc = HEADER.unpack_from(data, offset)
    if magic != MAGIC or offset + HEADER.size + length > size:
        return None
    start = offset + HEADER.size
    return length if zlib.crc32(data[start : start + length]) == crc else None


def _is_torn(data, offset: int, size: int) -> bool:
    """The bytes from ``offset`` to the end are an interrupted write of one record: a prefix of a header, or a
    header claiming more bytes than there are."""
    tail = bytes(data[offset : offset + HEADER.size])
    if len(tail) < HEADER.size:
        return MAGIC.startswith(tail[: len(MAGIC)])
    magic, length, _ = HEADER.unpack(tail)
    return magic == MAGIC and offset + HEADER.size + length > size


def scan_segment(path: Path, newest: bool) -> SegmentScan:
    """Every valid record of a segment, and every stretch of bytes between them that holds none."""
    path = Path(path)
    size = path.stat().st_size
    if size == 0:
        return SegmentScan(path, [], [])
    with open(path, "rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
        if data[: len(MAGIC)] != MAGIC and _legacy_valid_at(data, 0, size) is not None:
            return _scan_legacy(path, data, size, newest)
        records: list[tuple[int, int]] = []
        damage: list[Damage] = []
        offset = 0
        while offset < size:
            length = _valid_at(data, offset, size)
            if length is not None:
                records.append((offset + HEADER.size, length))
                offset += HEADER.size + length
                continue
            # resynchronise: the next offset holding a valid record
            found = data.find(MAGIC, offset + 1)
            while found != -1 and _valid_at(data, found, size) is None:
                found = data.find(MAGIC, found + 1)
            end = size if found == -1 else found
            if found == -1 and newest:  # the end of the newest segment: is its last record start a torn write?
                last = data.rfind(MAGIC, offset)
                torn_at = last if last != -1 and _is_torn(data, last, size) else offset
                if _is_torn(data, torn_at, size):
                    if torn_at > offset:
                        damage.append(Damage(path, offset, torn_at - offset, "skipped"))
                    damage.append(Damage(path, torn_at, size - torn_at, "torn"))
                    break
            damage.append(Damage(path, offset, end - offset, "skipped"))
            offset = end
        return SegmentScan(path, records, damage)


def _legacy_valid_at(data, offset: int, size: int) -> int | None:
    if offset + LEGACY_HEADER.size > size:
        return None
    length, crc = LEGACY_HEADER.unpack_from(data, offset)
    start = offset + LEGACY_HEADER.size
    if start + length > size or zlib.crc32(data[start : start + length]) != crc:
        return None
    return length


def _scan_legacy(path: Path, data, size: int, newest: bool) -> SegmentScan:
    """A segment of the format without magic: records until the first bad one (no way to resynchronise)."""
    records: list[tuple[int, int]] = []
    offset = 0
    while (length := _legacy_valid_at(data, offset, size)) is not None:
        records.append((offset + LEGACY_HEADER.size, length))
        offset += LEGACY_HEADER.size + length
    damage = []
    if offset < size:
        claims = LEGACY_HEADER.unpack_from(data, offset)[0] if size - offset >= LEGACY_HEADER.size else size
        torn = newest and offset + LEGACY_HEADER.size + claims > size
        damage.append(Damage(path, offset, size - offset, "torn" if torn else "skipped"))
    return SegmentScan(path, records, damage, legacy=True)


def scan_journal(directory: Path) -> list[SegmentScan]:
    segments = _segments(Path(directory))
    return [scan_segment(path, index == len(segments) - 1) for index, path in enumerate(segments)]


def read_journal(directory: Path, damage: list[Damage] | None = None) -> Iterator[bytes]:
    """Every valid record, oldest first; damaged stretches are read past and appended to ``damage`` (when given)
    as each segment is reached, so a caller can log them with their byte counts."""
    for scan in scan_journal(Path(directory)):
        if damage is not None:
            damage.extend(scan.damage)
        if not scan.records:
            continue
        with open(scan.path, "rb") as handle:
            for offset, length in scan.records:
                handle.seek(offset)
                yield handle.read(length)


def repair_journal(
    directory: Path, keep: Callable[[bytes], bool] | None = None
) -> tuple[int, list[Damage], Path | None]:
    """Rewrite a journal from its valid records (those ``keep`` accepts, when given), in the current format:
    (records kept, damage dropped, backup directory).

    Written by ``rewrite_journal`` (a backup of the old one is kept). Nothing to repair: nothing written, backup
    None.
    """
    directory = Path(directory)
    scans = scan_journal(directory)
    damage = [d for scan in scans for d in scan.damage]
    payloads = (p for p in read_journal(directory) if keep is None or keep(p))
    total = sum(len(scan.records) for scan in scans)
    kept = sum(1 for _ in payloads) if keep is not None else total
    if not damage and kept == total and not any(scan.legacy for scan in scans):
        return kept, [], None
    backup = rewrite_journal(directory, (p for p in read_journal(directory) if keep is None or keep(p)))
    return kept, damage, backup


def rewrite_journal(directory: Path, payloads: Iterable[bytes]) -> Path:
    """Replace the journal in ``directory`` by ``payloads`` (read lazily: they may come from the old journal itself),
    in the current format; returns the backup of the old one (``journal.bak-<time>``).

    The new journal is written and fsync'ed beside the old one, then the old directory is renamed to the backup and
    the new one into place; a crash in between leaves both directories, never a half journal under its name."""
    directory = Path(directory)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    fresh = directory.with_name(f"{directory.name}.repair-{stamp}")
    backup = directory.with_name(f"{directory.name}.bak-{stamp}")
    if fresh.exists() or backup.exists():
        raise JournalError(f"{fresh} or {backup} exists already; move it away and try again")
    writer = TransitionJournal(fresh, fsync_period_s=3600)
    try:
        for payload in payloads:
            writer.append(payload)
    except BaseException:
        writer.close()
        shutil.rmtree(fresh, ignore_errors=True)
        raise
    writer.close()
    os.replace(directory, backup)
    os.replace(fresh, directory)
    fsync_path(directory.parent)
    return backup


FSYNC_PERIOD_S = 1.0  # the learner's default: at most this much wall-clock time of records lost on power failure


class TransitionJournal:
    """The journal of one run directory, open for appending.

    Record layout: 4-byte magic ``SOJ1``, 4-byte little-endian payload length, 4-byte CRC-32 of the payload, payload.
    A record that fails its check is skipped, and reading resumes at the next valid record (magic, a length that
    fits, a matching CRC). Only a true torn tail (a record whose write a kill interrupted: a partial header, or a
    header claiming more bytes than the newest segment holds, with no valid record after it) is cut on the next
    open. Every skip and cut is reported with its byte counts (``Damage``). Segments without the magic (length + CRC
    only) are still read; damage there ends the segment, which is then skipped to its end, never truncated; appends
    go to a new segment. Segment files roll over at ``segment_bytes`` so old data can be archived or removed by whole
    files. Records are fsync'ed every ``fsync_period_s``.
    """

    def __init__(self, directory: Path, fsync_period_s: float = FSYNC_PERIOD_S, segment_bytes: int = 256 * 1024 * 1024):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.fsync_period_s = float(fsync_period_s)
        self.segment_bytes = int(segment_bytes)
        self.records = 0
        self.cut: Damage | None = None  # the torn tail cut at this open, if any
        scans = scan_journal(self.directory)
        self.damage = [d for scan in scans for d in scan.damage]  # skipped stretches stay on disk, read past
        self.records = sum(len(scan.records) for scan in scans)
        if scans and not scans[-1].legacy:
            newest = scans[-1]
            if newest.torn is not None:  # a kill mid-write: cut it so appends follow the last whole record
                self.cut = newest.torn
                with open(newest.path, "r+b") as handle:
                    handle.truncate(self.cut.offset)
                    os.fsync(handle.fileno())
            self._open(newest.path)
        else:  # no segment yet, or the newest is of the old format: appends go to a new one
            number = int(scans[-1].path.stem) + 1 if scans else 0
            self._open(self.directory / f"{number:08d}{SEGMENT_SUFFIX}")
        self._last_sync = time.monotonic()

    def _open(self, path: Path) -> None:
        self._path = path
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self._size = os.fstat(self._fd).st_size
        fsync_path(self.directory)

    def append(self, payload: bytes) -> None:
        record = HEADER.pack(MAGIC, len(payload), zlib.crc32(payload)) + payload
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


class Quarantine:
    """Messages refused before the journal, kept for inspection only (never replayed): ``DIR/*.journal`` (the raw
    bytes, same record format) and ``DIR/reasons.log`` (one line per record). Created on first use; once
    ``max_bytes`` are held, later ones are counted and not stored, so a flood of bad messages cannot fill the disk.
    """

    def __init__(self, directory: Path, max_bytes: int = 64 * 1024 * 1024):
        self.directory = Path(directory)
        self.max_bytes = int(max_bytes)
        self.stored = self.not_stored = 0
        self._used = 0
        self._journal: TransitionJournal | None = None

    def add(self, raw: bytes, reason: str) -> bool:
        """Keep ``raw`` with its reason; False when the cap is reached (then it is only counted)."""
        if self._journal is None:
            self._journal = TransitionJournal(self.directory, fsync_period_s=60.0)
            self._used = sum(p.stat().st_size for p in _segments(self.directory))
        if self._used + HEADER.size + len(raw) > self.max_bytes:
            self.not_stored += 1
            return False
        self._journal.append(raw)
        self._used += HEADER.size + len(raw)
        self.stored += 1
        with open(self.directory / "reasons.log", "a") as log:
            log.write(
                f"{time.strftime('%Y-%m-%dT%H:%M:%S')} record {self._journal.records - 1} "
                f"({len(raw)} bytes): {' '.join(reason.split())}\n"
            )
        return True

    def close(self) -> None:
        if self._journal is not None:
            self._journal.close()
