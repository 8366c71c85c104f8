"""The learner's journal over real DDS: bad bytes never reach it, copies are not journaled again, and one run dir
has one writer. (Record-level damage, resynchronisation and repair: test_journal.py.)"""

import signal

import numpy as np
import pytest
from rclpy.serialization import deserialize_message, serialize_message
from test_learner_node import episode_messages, latest, learner_args, send_episodes

from so101_contract import qos
from so101_hilserl_core.messages import observation_to_msg
from so101_hilserl_interfaces.msg import LearnerStats, Transition
from so101_hilserl_learner.ingest import TransitionIngest
from so101_hilserl_learner.journal import HEADER, TransitionJournal, read_journal, scan_journal
from so101_hilserl_learner.replay import ReplayBuffer
from so101_hilserl_learner.run_lock import RunDirBusy, RunDirLock
from so101_testing.graph import wait_until

LEARNER = "so101_hilserl_learner.learner_node"


def journal_of(run_dir):
    segments = sorted((run_dir / "journal").glob("*.journal"))
    return list(read_journal(run_dir / "journal")), sum(p.stat().st_size for p in segments)


def test_bad_bytes_and_an_absurd_episode_id_leave_the_learner_running_and_the_journal_clean(processes, probe, tmp_path):
    """A truncated CDR message, a 12.6 MB image and one transition of episode 2**63 between two good episodes:
    the learner keeps running, the journal holds exactly the good ones, and a restart replays cleanly."""
    run_dir = tmp_path / "run"
    stats = probe.subscribe(LearnerStats, "hilserl/learner_stats", qos.EVENTS)
    learner = processes.start_module(LEARNER, *learner_args(run_dir), name="learner1")
    publisher = send_episodes(probe, [1])
    good = serialize_message(next(episode_messages(2)))
    publisher.publish(good[: len(good) // 2])  # truncated CDR: RMWError when deserialized
    huge = next(episode_messages(2))
    huge.observation = observation_to_msg(np.zeros((2000, 2100, 3), np.uint8), np.zeros(18))  # 12.6 MB
    publisher.publish(huge)
    absurd = next(episode_messages(2))
    absurd.episode_id = 2**63  # valid, but no actor runs that many episodes
    publisher.publish(absurd)
    for msg in episode_messages(2):  # the actor's next episode: must not be stale
        publisher.publish(msg)
    wait_until(lambda: latest(stats) and latest(stats).transitions_received == 30, 90, "both good episodes")
    wait_until(lambda: latest(stats).transitions_dropped == 3, 30, "the three bad messages counted")
    s = latest(stats)
    assert learner.alive() and s.online_buffer_size == 30 and s.demo_buffer_size == 6
    records, _ = journal_of(run_dir)
    assert len(records) == 31  # 30 good + the absurd one (valid, replayed to the same verdict)
    journaled = [deserialize_message(r, Transition) for r in records]  # every record a whole Transition
    assert [m.episode_id for m in journaled] == [1] * 15 + [2**63] + [2] * 15
    assert all(len(r) < 100_000 for r in records)  # no 12.6 MB image
    quarantined = list(read_journal(run_dir / "quarantine"))
    assert len(quarantined) == 2 and (run_dir / "quarantine" / "reasons.log").read_text().count("\n") == 2
    assert "not a Transition" in learner.output()  # the first refusal's warning (they are throttled)

    learner.stop(grace_s=20)
    probe.node.destroy_publisher(publisher)  # nothing re-delivered: the restart sees only its journal
    seen = len(stats)
    restarted = processes.start_module(LEARNER, *learner_args(run_dir), name="learner2")
    wait_until(lambda: len(stats) > seen + 2, 90, "stats of the restarted learner")
    s = latest(stats)
    assert restarted.alive() and s.transitions_received == 30 and s.online_buffer_size == 30
    assert s.transitions_dropped == 1  # the absurd episode id again; nothing refused, nothing skipped
    assert "skipped" not in restarted.output() and "refused" not in restarted.output()


def test_a_restart_under_a_redelivered_backlog_does_not_grow_the_journal(processes, probe, tmp_path):
    """The actor's transient-local backlog reaches every restarted learner again: those copies are recognised and
    not journaled (it grew 30 -> 60 -> 90). While a learner runs, its run dir is locked: a second learner and the
    importer (test_importer) are refused."""
    run_dir = tmp_path / "run"
    stats = probe.subscribe(LearnerStats, "hilserl/learner_stats", qos.EVENTS)
    learner = processes.start_module(LEARNER, *learner_args(run_dir), name="learner1")
    publisher = send_episodes(probe, [1, 2])  # kept alive: its history is re-delivered to each new learner
    wait_until(lambda: latest(stats) and latest(stats).transitions_received == 30, 90, "30 transitions")
    learner.stop(grace_s=20)
    records, size = journal_of(run_dir)
    assert len(records) == 30

    for round_ in range(2):
        seen = len(stats)
        learner = processes.start_module(LEARNER, *learner_args(run_dir), name=f"learner{round_ + 2}")
        probe.wait_for_subscribers(publisher, timeout_s=60)
        # the backlog arrives again: 30 copies, counted as dropped, none journaled
        wait_until(
            lambda seen=seen: len(stats) > seen and latest(stats).transitions_dropped == 30, 90, "the backlog again"
        )
        s = latest(stats)
        assert s.transitions_received == 30 and s.online_buffer_size == 30 and s.demo_buffer_size == 6
        try:
            RunDirLock(run_dir, "a test").release()
            raise AssertionError("the run dir of a running learner could be locked")
        except RunDirBusy as err:
            assert "in use by a learner" in str(err)
        if round_ == 0:
            second = processes.start_module(LEARNER, *learner_args(run_dir), name="second")
            wait_until(lambda second=second: not second.alive(), 90, "the second learner to refuse the run dir")
            assert second.popen.returncode == 2 and "parameter run_dir=" in second.output()
            assert "in use by a learner" in second.output()
        if round_ == 0:
            learner.stop(grace_s=20)
        else:
            learner.send_signal(signal.SIGKILL)  # a crash: the OS frees the lock
            learner.wait_exit(10)
        assert journal_of(run_dir) == (records, size)
    RunDirLock(run_dir, "a test").release()  # free again after the SIGKILL


def journal_with_a_flipped_byte(run_dir, where):
    """75 journaled transitions (5 episodes) with one byte flipped: at 40 % of the segment, or in the first
    header. Returns the records that are still whole, the damaged record's size, the segment and its size."""
    journal = TransitionJournal(run_dir / "journal")
    records = [serialize_message(m) for episode in range(1, 6) for m in episode_messages(episode)]
    for raw in records:
        journal.append(raw)
    journal.close()
    (segment,) = (run_dir / "journal").glob("*.journal")
    data = bytearray(segment.read_bytes())
    at = int(len(data) * 0.4) if where == "40%" else 2  # a byte of the first record's magic
    data[at] ^= 0x10
    segment.write_bytes(bytes(data))
    starts = np.cumsum([0] + [HEADER.size + len(r) for r in records])
    hit = int(np.searchsorted(starts, at, side="right")) - 1
    return records[:hit] + records[hit + 1 :], HEADER.size + len(records[hit]), segment, len(data)


@pytest.mark.parametrize("where", ["40%", "first header"])
def test_a_learner_on_a_journal_with_a_flipped_byte_replays_every_other_record(processes, probe, tmp_path, where):
    """The damaged record is skipped and logged with its byte count; nothing is truncated; every other record is
    replayed (the counts equal an ingest of exactly those records)."""
    run_dir = tmp_path / "run"
    whole, damaged, segment, size = journal_with_a_flipped_byte(run_dir, where)
    expected = TransitionIngest(*(ReplayBuffer(200, frame_shape=(84, 84, 3)) for _ in "od"))
    for raw in whole:
        expected.receive(raw)
    stats = probe.subscribe(LearnerStats, "hilserl/learner_stats", qos.EVENTS)
    learner = processes.start_module(LEARNER, *learner_args(run_dir), name="learner")
    s = wait_until(lambda: latest(stats), 90, "stats of the learner")
    assert s.transitions_received == expected.counters.accepted > 50
    assert s.transitions_dropped == expected.dropped
    assert segment.stat().st_size == size  # nothing cut: the damage was no torn tail
    wait_until(lambda: "skipped" in learner.output(), 30, "the skip logged")
    assert f"{damaged} bytes at byte" in learner.output()  # exactly the damaged record's bytes
    assert "replayed 74 journaled transitions" in learner.output()


def test_a_journal_shorter_than_the_checkpoint_stops_the_start_unless_accepted(processes, probe, tmp_path):
    """A run of 60 training transitions with a checkpoint; its journal cut to the first episode (15). A restart
    refuses (exit 2, one line naming the journal, both counts and the fix) instead of training on with 15 and no
    word; with accept_short_journal it starts with the 15, warned."""
    run_dir = tmp_path / "run"
    stats = probe.subscribe(LearnerStats, "hilserl/learner_stats", qos.EVENTS)
    learner = processes.start_module(LEARNER, *learner_args(run_dir), name="learner1")
    publisher = send_episodes(probe, [1, 2, 3, 4])
    wait_until(lambda: latest(stats) and latest(stats).training_transitions == 60, 90, "60 training transitions")
    learner.send_signal(signal.SIGINT)  # a clean stop writes the checkpoint that counts them
    assert learner.wait_exit(60) == 0, learner.output()
    # The transitions are transient local: a restarted learner would be sent all 60 again and take the 45 its cut
    # journal lacks, while the test reads its count. Gone with their publisher, the journal is all it has.
    probe.node.destroy_publisher(publisher)
    (scan,) = scan_journal(run_dir / "journal")
    offset, _ = scan.records[15]  # the payload of record 15: its header starts HEADER.size before
    with open(scan.path, "r+b") as handle:
        handle.truncate(offset - HEADER.size)  # whole records of the first episode only: no damage to report
    assert len(list(read_journal(run_dir / "journal"))) == 15

    refused = processes.start_module(LEARNER, *learner_args(run_dir), name="learner2")
    code = refused.wait_exit(120)
    output = refused.output()
    assert code == 2 and "Traceback" not in output, f"exit code {code}\n{output}"
    (line,) = [text for text in output.splitlines() if "training transitions" in text]
    assert f"the journal {run_dir / 'journal'} yields 15 training transitions, fewer than the 60" in line, line
    assert "restore the journal" in line and "accept_short_journal:=true" in line, line
    assert len(list(read_journal(run_dir / "journal"))) == 15  # the refusal changed nothing

    seen = len(stats)
    accepted = processes.start_module(LEARNER, *learner_args(run_dir, accept_short_journal=True), name="learner3")
    wait_until(lambda: len(stats) > seen and accepted.alive(), 120, "stats of the learner that accepted it")
    assert latest(stats).training_transitions == 15 and latest(stats).online_buffer_size == 15
    wait_until(lambda: "starting with the 15 it holds" in accepted.output(), 30, "the warning")
