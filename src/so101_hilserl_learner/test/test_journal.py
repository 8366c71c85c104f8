import os
import subprocess
import sys
import textwrap

import pytest

from so101_hilserl_learner.journal import HEADER, JournalError, TransitionJournal, read_journal


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
        handle.write(HEADER.pack(500, 0) + b"partial")
    assert len(list(read_journal(tmp_path))) == 5
    reopened = TransitionJournal(tmp_path)
    assert reopened.records == 5 and segment.stat().st_size == whole
    reopened.append(b"after the crash")
    reopened.close()
    assert list(read_journal(tmp_path))[-1] == b"after the crash"


def test_corrupt_record_in_an_old_segment_is_an_error_naming_the_file(tmp_path):
    journal = TransitionJournal(tmp_path, segment_bytes=500)
    for payload in records(12):
        journal.append(payload)
    journal.close()
    first = sorted(tmp_path.glob("*.journal"))[0]
    raw = bytearray(first.read_bytes())
    raw[HEADER.size + 3] ^= 0xFF  # flip a payload byte: CRC mismatch
    first.write_bytes(bytes(raw))
    with pytest.raises(JournalError, match=first.name):
        list(read_journal(tmp_path))


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
