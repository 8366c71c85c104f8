"""checkpoint_tool inspect/repair RUN_DIR on damaged journals: every kind of damage reported, nothing crashes, the
repair keeps exactly the valid transitions and a backup, and is refused while the run dir is in use."""

import subprocess
import sys

import numpy as np
from rclpy.serialization import deserialize_message, serialize_message

from so101_hilserl_core.messages import observation_to_msg
from so101_hilserl_interfaces.msg import Transition
from so101_hilserl_learner.journal import HEADER, MAGIC, TransitionJournal, read_journal
from so101_hilserl_learner.run_lock import RunDirLock


def transitions(n):
    for step in range(n):
        msg = Transition(actor_id="a", episode_id=1, step=step)
        msg.observation = observation_to_msg(np.full((84, 84, 3), step, np.uint8), np.zeros(18))
        msg.action = [0.0, 0.0, 0.0, 0.0]
        if step == n - 1:
            msg.truncated = True
            msg.next_observation = [observation_to_msg(np.zeros((84, 84, 3), np.uint8), np.zeros(18))]
        yield serialize_message(msg)


def tool(*args):
    return subprocess.run(
        [sys.executable, "-m", "so101_hilserl_learner.weight_files.checkpoint_tool", *args],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def damaged_run_dir(tmp_path):
    """10 transitions; record 3 is not a Transition (an older learner journaled a truncated one), record 6 has a
    flipped byte, a 12.6 MB image follows (an older learner journaled it before refusing it), and a torn write ends
    the newest segment."""
    run_dir = tmp_path / "run"
    journal = TransitionJournal(run_dir / "journal")
    good = list(transitions(10))
    for index, raw in enumerate(good):
        journal.append(raw[:100] if index == 3 else raw)
    huge = deserialize_message(good[0], Transition)
    huge.observation = observation_to_msg(np.zeros((2000, 2100, 3), np.uint8), np.zeros(18))
    journal.append(serialize_message(huge))
    journal.close()
    (segment,) = (run_dir / "journal").glob("*.journal")
    data = bytearray(segment.read_bytes())
    record = HEADER.size + len(good[0])
    sixth = 3 * record + HEADER.size + 100 + 2 * record  # records 0-2, the short record 3, records 4-5
    data[sixth + HEADER.size + 500] ^= 0xFF
    segment.write_bytes(bytes(data) + HEADER.pack(MAGIC, 9999, 0)[:7])  # a torn header
    return run_dir, good


def test_inspect_reports_each_kind_of_damage_and_repair_keeps_the_valid_transitions(tmp_path):
    run_dir, good = damaged_run_dir(tmp_path)
    out = tool("inspect", str(run_dir))
    assert out.returncode == 0, out.stderr
    assert "10 valid records (2 refused by the learner's checks), 1 skipped stretches" in out.stdout, out.stdout
    assert f"({HEADER.size + len(good[0])} bytes), torn tail 7 bytes" in out.stdout
    assert "refused record" in out.stdout and "repair" in out.stdout

    with RunDirLock(run_dir, "a learner"):  # refused while in use: one line, exit 2, nothing touched
        refused = tool("repair", str(run_dir))
    assert refused.returncode == 2 and "in use by a learner" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1

    done = tool("repair", str(run_dir))
    assert done.returncode == 0, done.stderr
    assert "with 8 valid records" in done.stdout and "journal.bak-" in done.stdout
    kept = list(read_journal(run_dir / "journal"))
    assert kept == [raw for index, raw in enumerate(good) if index not in (3, 6)]
    assert all(deserialize_message(raw, Transition).step not in (3, 6) for raw in kept)
    (backup,) = run_dir.glob("journal.bak-*")
    assert len(list(read_journal(backup))) == 10  # the old bytes, as they were
    again = tool("inspect", str(run_dir))
    assert (
        "8 valid records (0 refused by the learner's checks), 0 skipped stretches (0 bytes), torn tail 0 bytes"
        in again.stdout
    )
    assert "nothing to repair" in tool("repair", str(run_dir)).stdout
