import os
import struct
import subprocess
import sys
import textwrap
import zlib

import pytest

from so101_hilserl_learner.journal import (
    HEADER,
    MAGIC,
    Quarantine,
    TransitionJournal,
    read_journal,
    repair_journal,
    scan_journal,
)


def records(n, size=100):
    return [bytes([i % 256]) * (size + i) for i in range(n)]


def test_append_and_read_back_across_segments(tmp_path):
    journal = TransitionJournal(tmp_path, segment_bytes=1000)
    data = records(30)
    for payload in data:
        journal.append(payload)
    journal.close()
    assert len(list(tmp_path.glob("*.journal"))) > 3  # rolled over
    assert list(read_journal(tmp_path)) == data
    assert TransitionJournal(tmp_path).records == 30


def test_torn_tail_is_ignored_then_truncated_and_appends_continue(tmp_path):
    journal = TransitionJournal(tmp_path)
    for payload in records(5):
        journal.append(payload)
    journal.close()
    segment = sorted(tmp_path.glob("*.journal"))[-1]
    whole = segment.stat().st_size
    with open(segment, "ab") as handle:  # what a kill in the middle of a write leaves
        handle.write(HEADER.pack(MAGIC, 500, 0) + b"partial")
    assert len(list(read_journal(tmp_path))) == 5
    reopened = TransitionJournal(tmp_path)
    assert reopened.records == 5 and segment.stat().st_size == whole
    reopened.append(b"after the crash")
    reopened.close()
    assert list(read_journal(tmp_path))[-1] == b"after the crash"


def test_corrupt_record_in_an_old_segment_is_skipped_not_an_error(tmp_path):
    journal = TransitionJournal(tmp_path, segment_bytes=500)
    data = records(12)
    for payload in data:
        journal.append(payload)
    journal.close()
    first = sorted(tmp_path.glob("*.journal"))[0]
    raw = bytearray(first.read_bytes())
    raw[HEADER.size + 3] ^= 0xFF  # flip a payload byte of its first record: CRC mismatch
    first.write_bytes(bytes(raw))
    damage = []
    assert list(read_journal(tmp_path, damage)) == data[1:]
    assert [(d.path, d.offset, d.length, d.kind) for d in damage] == [(first, 0, HEADER.size + 100, "skipped")]


def one_segment(tmp_path, n=75, size=22_000):
    journal = TransitionJournal(tmp_path)
    data = [bytes([i]) * size for i in range(n)]
    for payload in data:
        journal.append(payload)
    journal.close()
    (segment,) = tmp_path.glob("*.journal")
    return data, segment


def test_a_flipped_byte_at_40_percent_costs_one_record_and_truncates_nothing(tmp_path):
    data, segment = one_segment(tmp_path)
    size = segment.stat().st_size
    raw = bytearray(segment.read_bytes())
    at = int(size * 0.4)
    raw[at] ^= 0x01
    segment.write_bytes(bytes(raw))
    hit = at // (HEADER.size + 22_000)  # the record holding that byte
    damage = []
    assert list(read_journal(tmp_path, damage)) == data[:hit] + data[hit + 1 :]
    assert len(damage) == 1 and damage[0].kind == "skipped" and damage[0].length == HEADER.size + 22_000
    assert f"{HEADER.size + 22_000} bytes at byte" in str(damage[0])
    reopened = TransitionJournal(tmp_path)  # what the learner does at start
    assert segment.stat().st_size == size and reopened.cut is None and reopened.records == 74
    reopened.append(b"after")
    reopened.close()
    assert list(read_journal(tmp_path)) == data[:hit] + data[hit + 1 :] + [b"after"]


@pytest.mark.parametrize("field", [0, 5, 9])  # the magic, the length, the CRC of the first header
def test_a_flipped_first_header_costs_only_the_first_record(tmp_path, field):
    data, segment = one_segment(tmp_path, n=20, size=1000)
    size = segment.stat().st_size
    raw = bytearray(segment.read_bytes())
    raw[field] ^= 0x40
    segment.write_bytes(bytes(raw))
    damage = []
    assert list(read_journal(tmp_path, damage)) == data[1:]
    assert [(d.offset, d.length, d.kind) for d in damage] == [(0, HEADER.size + 1000, "skipped")]
    assert TransitionJournal(tmp_path).records == 19 and segment.stat().st_size == size


def test_a_torn_tail_after_a_corrupt_record_is_cut_and_the_corrupt_one_kept(tmp_path):
    data, segment = one_segment(tmp_path, n=10, size=100)
    raw = bytearray(segment.read_bytes())
    raw[-5] ^= 0xFF  # the last whole record is corrupt
    segment.write_bytes(bytes(raw) + HEADER.pack(MAGIC, 5000, 0) + b"torn")
    whole = len(raw)
    reopened = TransitionJournal(tmp_path)
    assert reopened.cut is not None and reopened.cut.offset == whole and reopened.cut.length == HEADER.size + 4
    assert segment.stat().st_size == whole  # only the torn write is cut
    reopened.close()
    damage = []
    assert list(read_journal(tmp_path, damage)) == data[:-1]
    assert [d.kind for d in damage] == ["skipped"]


def test_segments_of_the_format_before_the_magic_are_read_and_not_appended_to(tmp_path):
    legacy = tmp_path / "00000000.journal"
    old = [b"one", b"two" * 50]
    legacy.write_bytes(b"".join(struct.pack("<II", len(p), zlib.crc32(p)) + p for p in old))
    journal = TransitionJournal(tmp_path)
    assert journal.records == 2
    journal.append(b"three")
    journal.close()
    assert legacy.read_bytes()[:4] != MAGIC and len(list(tmp_path.glob("*.journal"))) == 2
    assert list(read_journal(tmp_path)) == [*old, b"three"]


def test_repair_rewrites_the_valid_records_and_keeps_a_backup(tmp_path):
    directory = tmp_path / "journal"
    _, segment = one_segment(directory, n=30, size=500)
    raw = bytearray(segment.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    segment.write_bytes(bytes(raw))
    kept, damage, backup = repair_journal(directory)
    assert kept == 29 and len(damage) == 1 and backup is not None
    assert backup.is_dir() and (backup / segment.name).read_bytes() == bytes(raw)  # the old bytes, untouched
    damage_after = []
    assert len(list(read_journal(directory, damage_after))) == 29 and damage_after == []
    assert all(not scan.damage for scan in scan_journal(directory))
    assert repair_journal(directory) == (29, [], None)  # nothing left to repair: nothing written


def test_sigkill_loses_nothing_that_was_appended(tmp_path):
    """A writer killed with SIGKILL mid-stream: every record it reported as appended is read back."""
    script = textwrap.dedent(
        f"""
        import sys
        from so101_hilserl_learner.journal import TransitionJournal
        journal = TransitionJournal({str(tmp_path)!r}, fsync_period_s=3600)
        i = 0
        while True:
            journal.append(i.to_bytes(4, "little") * 2000)
            print(i, flush=True)
            i += 1
        """
    )
    writer = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    last = -1
    for line in writer.stdout:
        last = int(line)
        if last >= 300:
            break
    os.kill(writer.pid, 9)
    writer.wait(timeout=10)
    back = [int.from_bytes(r[:4], "little") for r in read_journal(tmp_path)]
    assert back[: last + 1] == list(range(last + 1))  # all reported records survived, in order
    assert back == list(range(len(back)))  # and nothing after them is garbage


def test_quarantine_keeps_refused_bytes_with_reasons_up_to_its_cap(tmp_path):
    quarantine = Quarantine(tmp_path / "quarantine", max_bytes=3 * (HEADER.size + 1000))
    assert not (tmp_path / "quarantine").exists()  # nothing refused yet: no directory
    stored = [quarantine.add(bytes([i]) * 1000, f"reason {i}") for i in range(5)]
    quarantine.close()
    assert stored == [True, True, True, False, False] and quarantine.not_stored == 2
    assert [r[0] for r in read_journal(tmp_path / "quarantine")] == [0, 1, 2]
    lines = (tmp_path / "quarantine" / "reasons.log").read_text().splitlines()
    assert [line.split(": ", 1)[1] for line in lines] == ["reason 0", "reason 1", "reason 2"]
