"""Bag -> learner buffers: a bag of real Transition messages is imported into a run directory, and the learner node
started on it reports (hilserl/learner_stats) exactly the transitions and intervention steps the bag held."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
from rclpy.serialization import serialize_message
from rosbags.rosbag2 import StoragePlugin, Writer
from sensor_msgs.msg import JointState

from so101_bringup.importer import import_bag
from so101_bringup.recorder import project_typestore
from so101_driver import qos
from so101_hilserl_actor.messages import observation_to_msg
from so101_hilserl_interfaces.msg import EpisodeSummary, LearnerStats, Transition
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


def write_bag(path):
    """A bag as the recorder writes it: serialized messages with the project typestore's definitions."""
    typestore = project_typestore()
    with Writer(path, version=9, storage_plugin=StoragePlugin.MCAP) as writer:
        transitions = writer.add_connection("/hilserl/transitions", f"{PROJECT}/Transition", typestore=typestore)
        episodes = writer.add_connection("/hilserl/episodes", f"{PROJECT}/EpisodeSummary", typestore=typestore)
        joints = writer.add_connection("/follower/joint_states", "sensor_msgs/msg/JointState", typestore=typestore)
        t = 1_000_000_000
        for episode in EPISODES:
            for msg in episode_messages(*episode):
                t += 100_000_000
                writer.write(transitions, t, serialize_message(msg))
                writer.write(joints, t + 1, serialize_message(JointState(name=["gripper"], position=[0.1])))
            summary = EpisodeSummary(actor_id="bag", episode_id=episode[0], steps=episode[1])
            writer.write(episodes, t + 2, serialize_message(summary))


def run_importer(*args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "so101_bringup.importer", *args]
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


def test_importing_the_same_bag_twice_adds_nothing(tmp_path):
    bag, run_dir = tmp_path / "bag", tmp_path / "run"
    write_bag(bag)
    first = import_bag([bag], run_dir)
    assert (first.bag_transitions, first.online_size, first.demo_size) == (TRANSITIONS, TRANSITIONS, INTERVENTION_STEPS)
    assert (first.episodes, first.intervention_steps, first.journal_records_before) == (3, INTERVENTION_STEPS, 0)
    second = import_bag([bag], run_dir)  # the learner's sequencer rejects the repeated (actor, episode, step)s
    assert second.journal_records_before == TRANSITIONS
    assert (second.online_size, second.demo_size, second.dropped) == (TRANSITIONS, INTERVENTION_STEPS, TRANSITIONS)


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
