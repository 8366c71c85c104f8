"""The learner node over real DDS: it trains on what it receives, publishes valid weights, and survives SIGKILL."""

import os
import signal
import time

import numpy as np
import pytest

from so101_driver import qos
from so101_hilserl_actor.messages import observation_to_msg
from so101_hilserl_actor.policy import PolicyConfig
from so101_hilserl_actor.policy_io import policy_from_bytes, sha256_hex
from so101_hilserl_interfaces.msg import LearnerStats, PolicyWeights, Transition
from so101_testing.graph import wait_until

TINY = '{"encoder_channels": 4, "hidden": [16, 16], "bottleneck": 8}'


def learner_args(run_dir, **extra):
    params = {
        "run_dir": str(run_dir), "network": TINY, "batch_size": 8, "warmup_transitions": 20, "utd_ratio": 1.0,
        "publish_every_updates": 5, "stats_period_s": 0.2, "online_capacity": 1000, "demo_capacity": 500, **extra,
    }  # fmt: skip
    args = ["--ros-args"]
    for key, value in params.items():
        # strings as YAML single-quoted scalars, so JSON and paths stay strings
        text = "'" + value.replace("'", "''") + "'" if isinstance(value, str) else value
        args += ["-p", f"{key}:={text}"]
    return args


def episode_messages(episode_id, length=15, interventions=(3, 4, 5)):
    rng = np.random.default_rng(episode_id)
    for step in range(length):
        msg = Transition(actor_id="test", episode_id=episode_id, step=step, intervention=step in interventions)
        msg.observation = observation_to_msg(rng.integers(0, 256, (84, 84, 3), np.uint8), rng.normal(size=18))
        msg.action = [float(v) for v in rng.uniform(-1, 1, 4)]
        msg.policy_action = msg.action
        msg.reward = -0.05
        if step == length - 1:
            msg.truncated = True
            msg.next_observation = [observation_to_msg(rng.integers(0, 256, (84, 84, 3), np.uint8), np.zeros(18))]
        yield msg


def send_episodes(probe, episodes):
    publisher = probe.publisher(Transition, "hilserl/transitions", qos.TRANSITIONS)
    probe.wait_for_subscribers(publisher, timeout_s=60)
    for episode_id in episodes:
        for msg in episode_messages(episode_id):
            publisher.publish(msg)
    return publisher


def latest(recorder):
    return recorder.messages[-1] if len(recorder) else None


def test_trains_publishes_valid_weights_and_stats(processes, probe, tmp_path):
    processes.start_module("so101_hilserl_learner.learner_node", *learner_args(tmp_path / "run"), name="learner")
    stats = probe.subscribe(LearnerStats, "hilserl/learner_stats", qos.EVENTS)
    weights = probe.subscribe(PolicyWeights, "hilserl/policy_weights", qos.LATCHED)
    send_episodes(probe, [1, 2, 3])
    wait_until(lambda: latest(stats) and latest(stats).transitions_received == 45, 60, "45 transitions received")
    wait_until(lambda: latest(stats).updates >= 10, 120, "10 updates")
    s = latest(stats)
    assert s.online_buffer_size == 45 and s.demo_buffer_size == 9 and s.transitions_dropped == 0
    weights.wait_for(1, 60, "policy weights")
    w = weights.messages[-1]
    assert w.format == "safetensors" and sha256_hex(bytes(w.data)) == w.sha256 and w.version >= 1
    tensors, config = policy_from_bytes(bytes(w.data), PolicyConfig.from_json(w.network_config))
    assert config.encoder_channels == 4 and "encoder.convs_per_cam.0.0.weight" in tensors
    assert np.isfinite(s.critic_loss)


def test_sigkill_during_training_and_during_checkpoints_loses_nothing(processes, probe, tmp_path):
    run_dir = tmp_path / "run"
    args = learner_args(run_dir, checkpoint_period_s=0.05)  # checkpoints back to back: kills land inside writes
    learner = processes.start_module("so101_hilserl_learner.learner_node", *args, name="learner1")
    stats = probe.subscribe(LearnerStats, "hilserl/learner_stats", qos.EVENTS)
    publisher = send_episodes(probe, [1, 2])
    wait_until(lambda: latest(stats) and latest(stats).updates >= 5, 120, "training under way")
    checkpoints = run_dir / "checkpoints"
    wait_until(lambda: list(checkpoints.glob(".tmp-*")), 30, "a checkpoint being written", period_s=0.001)
    os.kill(learner.pid, signal.SIGKILL)  # in the middle of a checkpoint write
    learner.popen.wait(timeout=10)
    updates_before = latest(stats).updates

    for round_ in range(2):
        learner = processes.start_module("so101_hilserl_learner.learner_node", *args, name=f"learner{round_ + 2}")
        probe.wait_for_subscribers(publisher, timeout_s=60)
        seen = len(stats)
        wait_until(lambda seen=seen: len(stats) > seen + 2, 60, "stats of the restarted learner")
        s = latest(stats)
        assert s.transitions_received == 30 and s.online_buffer_size == 30 and s.demo_buffer_size == 6
        assert s.updates >= updates_before - 25  # at most what happened since the newest complete checkpoint
        time.sleep(0.5)
        os.kill(learner.pid, signal.SIGKILL)  # during training this time
        learner.popen.wait(timeout=10)
        updates_before = s.updates


@pytest.mark.parametrize("bad_network", ['{"hidden": [8]', '{"no_such_field": 1}'])
def test_bad_network_parameter_is_a_clear_error(processes, tmp_path, bad_network):
    learner = processes.start_module(
        "so101_hilserl_learner.learner_node", *learner_args(tmp_path, network=bad_network), name="bad"
    )
    wait_until(lambda: not learner.alive(), 60, "the learner to refuse the parameter")
    assert "parameter network=" in learner.output()


def test_inspect_a_run_directory(processes, probe, tmp_path):
    """The CLI describes what a learner left behind: journaled transitions and its checkpoint."""
    import subprocess
    import sys

    run_dir = tmp_path / "run"
    learner = processes.start_module("so101_hilserl_learner.learner_node", *learner_args(run_dir), name="learner")
    stats = probe.subscribe(LearnerStats, "hilserl/learner_stats", qos.EVENTS)
    send_episodes(probe, [1, 2])
    wait_until(lambda: latest(stats) and latest(stats).transitions_received == 30, 60, "30 transitions")
    learner.stop()  # SIGINT: a clean shutdown writes a checkpoint
    out = subprocess.run(
        [sys.executable, "-m", "so101_hilserl_learner.checkpoint_tool", "inspect", str(run_dir)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "30 transitions in 2 episodes" in out.stdout and "intervention steps 6" in out.stdout
    assert "newest:" in out.stdout and "weights_version" in out.stdout
