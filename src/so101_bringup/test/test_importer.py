"""Bag -> learner buffers: a bag of real Transition messages is imported into a run directory, and the learner node
started on it reports (hilserl/learner_stats) exactly the transitions and intervention steps the bag held."""

from __future__ import annotations

import shutil
import subprocess
import sys

import numpy as np
import pytest
from rclpy.serialization import deserialize_message, serialize_message
from rosbags.rosbag2 import StoragePlugin, Writer
from sensor_msgs.msg import JointState

from so101_bringup.records.bag_types import project_typestore
from so101_bringup.records.importer import BagImportError, import_bag
from so101_contract import qos
from so101_hilserl_core.messages import observation_to_msg
from so101_hilserl_interfaces.msg import EpisodeSummary, LearnerStats, Transition
from so101_hilserl_learner.ingest import TransitionIngest
from so101_hilserl_learner.journal import read_journal
from so101_hilserl_learner.replay import ReplayBuffer
from so101_testing.graph import wait_until

PROJECT = "so101_hilserl_interfaces/msg"
TINY = '{"encoder_channels": 4, "hidden": [16, 16], "bottleneck": 8}'
# (episode id, length, intervention steps, terminated)
EPISODES = [(0, 6, (), False), (1, 8, (2, 3, 4), True), (2, 5, (4,), False)]
TRANSITIONS = sum(length for _, length, _, _ in EPISODES)
INTERVENTION_STEPS = sum(len(steps) for _, _, steps, _ in EPISODES)


def episode_messages(episode_id: int, length: int, interventions, terminated: bool):
    rng = np.random.default_rng(episode_id)
    for step in range(length):
        msg = Transition(actor_id="bag", episode_id=episode_id, step=step, intervention=step in interventions)
        msg.observation = observation_to_msg(rng.integers(0, 256, (84, 84, 3), np.uint8), rng.normal(size=18))
        msg.action = [float(v) for v in rng.uniform(-1, 1, 4)]
        msg.policy_action = msg.action
        msg.reward = 1.0 if terminated and step == length - 1 else 0.0
        if step == length - 1:
            msg.terminated, msg.truncated = terminated, not terminated
            msg.next_observation = [observation_to_msg(rng.integers(0, 256, (84, 84, 3), np.uint8), np.zeros(18))]
        yield msg


def write_bag(path, extra_joint_state=False, truncate_message=None, content=EPISODES):
    """A bag as the recorder writes it: serialized messages with the project typestore's definitions (optionally
    one more joint state, for other bytes with the same transitions, or the Nth transition cut in half)."""
    typestore = project_typestore()
    with Writer(path, version=9, storage_plugin=StoragePlugin.MCAP) as writer:
        transitions = writer.add_connection("/hilserl/transitions", f"{PROJECT}/Transition", typestore=typestore)
        episodes = writer.add_connection("/hilserl/episodes", f"{PROJECT}/EpisodeSummary", typestore=typestore)
        joints = writer.add_connection("/follower/joint_states", "sensor_msgs/msg/JointState", typestore=typestore)
        t = 1_000_000_000
        if extra_joint_state:
            writer.write(joints, t, serialize_message(JointState(name=["gripper"], position=[0.2])))
        index = 0
        for episode in content:
            for msg in episode_messages(*episode):
                t += 100_000_000
                raw = serialize_message(msg)
                writer.write(transitions, t, raw[: len(raw) // 2] if index == truncate_message else raw)
                index += 1
                writer.write(joints, t + 1, serialize_message(JointState(name=["gripper"], position=[0.1])))
            summary = EpisodeSummary(actor_id="bag", episode_id=episode[0], steps=episode[1])
            writer.write(episodes, t + 2, serialize_message(summary))


def run_importer(*args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "so101_bringup.records.importer", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60)


def test_imported_bag_fills_the_learner_buffers(processes, probe, tmp_path):
    bag, run_dir = tmp_path / "bag", tmp_path / "run"
    write_bag(bag)
    done = run_importer(str(bag), "--run-dir", str(run_dir), "--network", TINY)
    assert done.returncode == 0, done.stderr
    assert f"the learner will hold {TRANSITIONS} online and {INTERVENTION_STEPS} demonstration" in done.stdout

    stats = probe.subscribe(LearnerStats, "hilserl/learner_stats", qos.EVENTS)
    params = {"run_dir": f"'{run_dir}'", "network": f"'{TINY}'", "warmup_transitions": 1_000_000}
    args = [item for key, value in params.items() for item in ("-p", f"{key}:={value}")]
    processes.start_module("so101_hilserl_learner.learner_node", "--ros-args", *args, "-p", "stats_period_s:=0.2")
    last = wait_until(lambda: stats.messages[-1] if len(stats) else None, 40.0, "learner stats")
    assert last.online_buffer_size == TRANSITIONS
    assert last.demo_buffer_size == INTERVENTION_STEPS  # interventions routed to the demonstration buffer
    assert last.transitions_received == TRANSITIONS and last.transitions_dropped == 0


def test_importing_the_same_bag_twice_is_refused(tmp_path):
    bag, run_dir = tmp_path / "bag", tmp_path / "run"
    write_bag(bag)
    first = import_bag([bag], run_dir)
    assert (first.bag_transitions, first.online_size, first.demo_size) == (TRANSITIONS, TRANSITIONS, INTERVENTION_STEPS)
    assert (first.episodes, first.intervention_steps, first.journal_records_before) == (3, INTERVENTION_STEPS, 0)
    assert first.appended == TRANSITIONS
    size = journal_bytes(run_dir)
    copy = tmp_path / "elsewhere" / "renamed"
    shutil.copytree(bag, copy)  # the same recording under another name
    for again in (bag, copy):
        done = run_importer(str(again), "--run-dir", str(run_dir))
        assert done.returncode == 2 and "already imported" in done.stderr, done.stderr
        assert len(done.stderr.strip().splitlines()) == 1 and str(again) in done.stderr
    assert journal_bytes(run_dir) == size


def journal_bytes(run_dir):
    return sum(f.stat().st_size for f in (run_dir / "journal").glob("*.journal"))


def test_steps_already_journaled_are_not_journaled_again(tmp_path):
    """Another bag holding the same (actor, episode, step)s (say, recorded twice) adds no record."""
    run_dir = tmp_path / "run"
    write_bag(tmp_path / "bag")
    import_bag([tmp_path / "bag"], run_dir)
    size = journal_bytes(run_dir)
    write_bag(tmp_path / "again", extra_joint_state=True)  # other bytes, the same transitions
    second = import_bag([tmp_path / "again"], run_dir)
    assert second.bag_transitions == TRANSITIONS and second.appended == 0
    assert (second.online_size, second.demo_size) == (TRANSITIONS, INTERVENTION_STEPS)
    assert journal_bytes(run_dir) == size


def test_a_truncated_transition_in_a_bag_stays_out_of_the_journal(tmp_path):
    """One truncated Transition in a bag: counted and left out; the rest imported and the run dir replays cleanly."""
    bag, run_dir = tmp_path / "bag", tmp_path / "run"
    write_bag(bag, truncate_message=4)
    result = import_bag([bag], run_dir)
    assert result.bag_transitions == TRANSITIONS and result.invalid == 1 and result.appended == TRANSITIONS - 1
    replay = subprocess.run(
        [sys.executable, "-m", "so101_hilserl_learner.weight_files.checkpoint_tool", "inspect", str(run_dir)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert replay.returncode == 0, replay.stderr
    assert f"{TRANSITIONS - 1} valid records" in replay.stdout and "0 skipped" in replay.stdout, replay.stdout


# a long episode, so that what follows a broken message is more than what needs it (the frame stack is 3)
LONG = [(0, 20, (12, 13), False), (1, 8, (2, 3, 4), True)]
LONG_TRANSITIONS = 28


def journal_keys(run_dir):
    return [
        (m.episode_id, m.step) for m in (deserialize_message(r, Transition) for r in read_journal(run_dir / "journal"))
    ]


def replayed(run_dir):
    """The learner's start: its journal replayed through the ingest (as learner_node does)."""
    online, demo = (ReplayBuffer(100, frame_shape=(84, 84, 3)) for _ in "od")
    ingest = TransitionIngest(online, demo)
    for raw in read_journal(run_dir / "journal"):
        ingest.receive(raw)
    return ingest, len(online), len(demo)


def test_a_broken_message_costs_only_what_needs_it_and_a_clean_import_refills_it(tmp_path, capsys):
    """Message 6 (episode 0, step 6) truncated: reported with one line naming the bag, the topic and the index; lost
    are steps 5 (its next observation), 6, and 7-8 (their stacks hold frame 6), not the rest of the episode. A clean
    copy of the recording then inserts step 6 where it belongs; no step is stored twice."""
    from so101_bringup.records.importer import main

    broken, clean, again, run_dir = tmp_path / "broken", tmp_path / "clean", tmp_path / "again", tmp_path / "run"
    write_bag(broken, truncate_message=6, content=LONG)
    assert main([str(broken), "--run-dir", str(run_dir)]) == 0
    err = capsys.readouterr().err
    (line,) = [text for text in err.splitlines() if text.startswith("import_bag:")]  # the rest: tqdm's bar
    assert line.startswith(f"import_bag: {broken}: /hilserl/transitions message 6: ") and "not a Transition" in line
    assert "Traceback" not in err
    ingest, online, demo = replayed(run_dir)
    assert online == LONG_TRANSITIONS - 4 and demo == 2 + 3  # the intervention at 12-13 is kept
    assert ingest.sequencer.broken_segments == 1 and ingest.counters.episodes == 2
    assert len(journal_keys(run_dir)) == LONG_TRANSITIONS - 1

    write_bag(clean, content=LONG)
    result = import_bag([clean], run_dir)
    assert (result.refilled, result.appended, result.damage) == (1, 0, [])
    assert (result.online_size, result.demo_size) == (LONG_TRANSITIONS, 2 + 3)
    keys = journal_keys(run_dir)
    assert keys == [(0, step) for step in range(20)] + [(1, step) for step in range(8)]  # in order, once each
    ingest, online, demo = replayed(run_dir)
    assert (online, demo, ingest.sequencer.broken_segments, ingest.dropped) == (LONG_TRANSITIONS, 5, 0, 0)
    assert len(list(run_dir.glob("journal.bak-*"))) == 1  # the journal before the refill, kept

    write_bag(again, extra_joint_state=True, content=LONG)  # other bytes, the same steps: nothing to add
    result = import_bag([again], run_dir)
    assert (result.refilled, result.appended, result.online_size) == (0, 0, LONG_TRANSITIONS)
    assert journal_keys(run_dir) == keys


def test_a_dry_run_counts_the_refill_without_writing(tmp_path):
    run_dir = tmp_path / "run"
    write_bag(tmp_path / "broken", truncate_message=6, content=LONG)
    import_bag([tmp_path / "broken"], run_dir)
    size = journal_bytes(run_dir)
    write_bag(tmp_path / "clean", content=LONG)
    result = import_bag([tmp_path / "clean"], run_dir, dry_run=True)
    assert (result.refilled, result.appended, result.online_size) == (1, 0, LONG_TRANSITIONS)
    assert journal_bytes(run_dir) == size and not list(run_dir.glob("journal.bak-*"))


def test_the_importer_refuses_a_run_dir_in_use(tmp_path):
    """While another process holds the run dir (a learner does while it runs): one line, exit 2, journal untouched."""
    bag, run_dir = tmp_path / "bag", tmp_path / "run"
    write_bag(bag)
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys; from so101_hilserl_learner.run_lock import RunDirLock; "
         f"lock = RunDirLock({str(run_dir)!r}, 'a learner'); print('held', flush=True); sys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "held"
        done = run_importer(str(bag), "--run-dir", str(run_dir))
        assert done.returncode == 2, done.stderr
        assert "in use by a learner" in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
        assert not (run_dir / "journal").exists()
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    assert run_importer(str(bag), "--run-dir", str(run_dir)).returncode == 0  # the holder's exit freed it


def test_dry_run_and_a_bag_without_transitions(tmp_path):
    bag = tmp_path / "bag"
    write_bag(bag)
    dry = run_importer(str(bag), "--run-dir", str(tmp_path / "run"), "--dry-run")
    assert dry.returncode == 0 and f"{TRANSITIONS} transitions read" in dry.stdout, dry.stderr
    assert not (tmp_path / "run").exists()

    typestore = project_typestore()
    with Writer(tmp_path / "joints", version=9, storage_plugin=StoragePlugin.MCAP) as writer:
        joints = writer.add_connection("/follower/joint_states", "sensor_msgs/msg/JointState", typestore=typestore)
        writer.write(joints, 1, serialize_message(JointState()))
    refused = run_importer(str(tmp_path / "joints"), "--run-dir", str(tmp_path / "run"))
    assert refused.returncode == 2
    assert "no so101_hilserl_interfaces/msg/Transition topic" in refused.stderr and "/follower/joint_states" in (
        refused.stderr
    )


# ---- bags the importer cannot read: one line naming the bag, the cause and the fix; exit 2, no traceback -------
SET_BOOL_EVENT = "std_srvs/srv/SetBool_Event"
# What Jazzy's `ros2 bag record --all` stores for a service event topic: the .srv text under an "SRV:" delimiter,
# which the pinned rosbags cannot parse as a message definition.
SET_BOOL_EVENT_DEFINITION = (
    "=" * 80 + "\nSRV: std_srvs/srv/SetBool\n"
    "bool data # e.g. for hardware enabling / disabling\n---\n"
    "bool success   # indicate successful run of triggered service\n"
    "string message # informational, e.g. for error messages\n"
)


def write_service_event_bag(path):
    """The project's transitions plus a service's events, as `ros2 bag record --all` writes them in Jazzy."""
    typestore = project_typestore()
    with Writer(path, version=9, storage_plugin=StoragePlugin.MCAP) as writer:
        transitions = writer.add_connection("/hilserl/transitions", f"{PROJECT}/Transition", typestore=typestore)
        writer.add_connection(
            "/follower/set_torque/_service_event",
            SET_BOOL_EVENT,
            msgdef=SET_BOOL_EVENT_DEFINITION,
            rihs01="RIHS01_" + "5" * 64,
        )
        for msg in episode_messages(*EPISODES[0]):
            writer.write(transitions, 1, serialize_message(msg))


def write_bag_without_definitions(path, episodes=EPISODES):
    """A sqlite3 bag that stores no message definitions (as Humble's rosbag2 wrote them)."""
    import sqlite3

    typestore = project_typestore()
    with Writer(path, version=9, storage_plugin=StoragePlugin.SQLITE3) as writer:
        transitions = writer.add_connection("/hilserl/transitions", f"{PROJECT}/Transition", typestore=typestore)
        t = 0
        for episode in episodes:
            for msg in episode_messages(*episode):
                t += 1
                writer.write(transitions, t, serialize_message(msg))
    database = sqlite3.connect(path / f"{path.name}.db3")
    with database:
        database.execute("DELETE FROM message_definitions")
    database.close()


def test_a_bag_without_stored_definitions_imports_with_the_project_types(tmp_path):
    write_bag_without_definitions(tmp_path / "humble")
    result = import_bag([tmp_path / "humble"], tmp_path / "run")
    assert (result.bag_transitions, result.online_size, result.demo_size) == (
        TRANSITIONS,
        TRANSITIONS,
        INTERVENTION_STEPS,
    )


def _not_a_bag(tmp_path):
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "readme.txt").write_text("session notes\n")
    return tmp_path / "notes"


def _text_mcap(tmp_path):
    (tmp_path / "session.mcap").write_text("this is text, not MCAP\n")
    return tmp_path / "session.mcap"


def _empty_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    return tmp_path / "empty"


def _broken_metadata(tmp_path):
    write_bag(tmp_path / "bag")
    (tmp_path / "bag" / "metadata.yaml").write_text("rosbag2_bagfile_information: [\n")
    return tmp_path / "bag"


def _empty_bag(tmp_path):
    write_bag_without_definitions(tmp_path / "empty_bag", episodes=[])
    return tmp_path / "empty_bag"


def _service_events(tmp_path):
    write_service_event_bag(tmp_path / "services")
    return tmp_path / "services"


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (_empty_bag, ["/hilserl/transitions", "no messages"]),
        (_not_a_bag, ["is not a rosbag2 bag", "no metadata.yaml"]),
        (_empty_folder, ["is an empty folder"]),
        (_text_mcap, ["session.mcap", "not a readable MCAP or sqlite3 file"]),
        (_broken_metadata, ["metadata.yaml is broken", "ros2 bag reindex"]),
        (_service_events, ["service events", "/follower/set_torque/_service_event", "--all-topics", "--exclude-ser"]),
    ],
)
def test_unreadable_bags_end_with_one_line_and_exit_2(tmp_path, capsys, make, expected):
    from so101_bringup.records.importer import main

    bag = make(tmp_path)
    status = main([str(bag), "--run-dir", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert status == 2, err
    assert err.startswith("import_bag: ") and str(bag) in err, err
    assert err.count("\n") == 1 and "Traceback" not in err and len(err) < 500, err
    for text in expected:
        assert text in err, (text, err)
    assert not (tmp_path / "run" / "journal").exists()  # nothing written


def test_service_event_bag_from_the_command_line(tmp_path):
    """The process itself: exit 2, one line, no schema dump (the .srv text) on stderr."""
    write_service_event_bag(tmp_path / "services")
    done = run_importer(str(tmp_path / "services"), "--run-dir", str(tmp_path / "run"))
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert "--exclude-services" in done.stderr and "bool data" not in done.stderr and "Traceback" not in done.stderr


def test_of_several_bags_the_unreadable_one_is_named(tmp_path):
    write_bag(tmp_path / "good")
    write_service_event_bag(tmp_path / "services")
    with pytest.raises(BagImportError) as error:
        import_bag([tmp_path / "good", tmp_path / "services"], tmp_path / "run")
    assert str(error.value).startswith(f"bag {tmp_path / 'services'} holds service events"), error.value
    assert not (tmp_path / "run" / "journal").exists()
