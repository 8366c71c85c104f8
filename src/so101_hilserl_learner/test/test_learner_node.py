"""The learner node over real DDS: it trains on what it receives at the requested UTD, publishes valid weights that
carry the run's exploration schedule and its learner epoch, and survives SIGKILL."""

import json
import os
import signal
import time
from dataclasses import replace

import numpy as np
import pytest

from so101_contract import qos
from so101_hilserl_core import exploration
from so101_hilserl_core.messages import observation_to_msg
from so101_hilserl_core.policy import PolicyConfig
from so101_hilserl_core.policy_io import policy_from_bytes, sha256_hex
from so101_hilserl_core.semantics import PICK101_SEMANTICS, PROJECT_SEMANTICS
from so101_hilserl_core.weights_gate import accept
from so101_hilserl_interfaces.msg import LearnerStats, PolicyWeights, Transition
from so101_hilserl_learner.checkpoint import load_newest_good
from so101_hilserl_learner.weight_files.agent_file import AGENT_FORMAT
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


def episode_messages(episode_id, length=15, interventions=(3, 4, 5), evaluation=False, terminated=False):
    rng = np.random.default_rng(episode_id)
    for step in range(length):
        msg = Transition(actor_id="test", episode_id=episode_id, step=step, intervention=step in interventions)
        msg.evaluation = evaluation
        msg.observation = observation_to_msg(rng.integers(0, 256, (84, 84, 3), np.uint8), rng.normal(size=18))
        msg.action = [float(v) for v in rng.uniform(-1, 1, 4)]
        msg.policy_action = msg.action
        msg.reward = -0.05
        if step == length - 1:
            msg.terminated, msg.truncated = terminated, not terminated
            msg.next_observation = [observation_to_msg(rng.integers(0, 256, (84, 84, 3), np.uint8), np.zeros(18))]
        yield msg


def send_episodes(probe, episodes, evaluation=(), terminated=False):
    publisher = probe.publisher(Transition, "hilserl/transitions", qos.TRANSITIONS)
    probe.wait_for_subscribers(publisher, timeout_s=60)
    for episode_id in episodes:
        for msg in episode_messages(episode_id, evaluation=episode_id in evaluation, terminated=terminated):
            publisher.publish(msg)
    return publisher


def latest(recorder):
    return recorder.messages[-1] if len(recorder) else None


def test_trains_publishes_valid_weights_and_stats(processes, probe, tmp_path):
    stats = probe.subscribe(LearnerStats, "hilserl/learner_stats", qos.EVENTS)
    weights = probe.subscribe(PolicyWeights, "hilserl/policy_weights", qos.LATCHED)
    args = learner_args(tmp_path / "run", utd_ratio=2.0)
    processes.start_module("so101_hilserl_learner.learner_node", *args, name="learner")
    # Weights go out once at start, before any data: a running actor learns the epoch and the schedule at once.
    first = weights.wait_for(1, 60, "the weights published at start")[0]
    assert first.version == 1 and first.learner_updates == 0 and first.environment_steps == 0
    assert first.stddev_schedule == exploration.DEFAULT_SCRATCH_SCHEDULE  # no initial_weights: from scratch
    assert first.learner_epoch.count(":") == 1
    send_episodes(probe, [1, 2, 3, 4], evaluation={4})
    wait_until(lambda: latest(stats) and latest(stats).transitions_received == 60, 60, "60 transitions received")
    # UTD 2 per committed training transition: episode 1 fills the warm-up (20), episodes 2 and 3 owe 2 x 30;
    # the evaluation episode owes nothing and is not the schedule's data.
    wait_until(lambda: latest(stats).updates >= 60 and latest(stats).update_backlog == 0, 120, "60 updates")
    seen = len(stats)
    wait_until(lambda: len(stats) >= seen + 3, 30, "three more stats periods")  # no update beyond what is owed
    s = latest(stats)
    assert s.updates == 60 and s.training_transitions == 45 and not s.utd_behind
    assert s.requested_utd == pytest.approx(2.0) and s.update_to_data_ratio == pytest.approx(2.0, abs=0.1)
    assert s.actor_stddev == pytest.approx(exploration.stddev(exploration.DEFAULT_SCRATCH_SCHEDULE, 45))
    assert s.online_buffer_size == 45 and s.demo_buffer_size == 9 and s.transitions_dropped == 0
    assert s.learner_epoch == first.learner_epoch
    wait_until(lambda: weights.messages[-1].learner_updates == 60, 60, "the weights of the 60th update")
    w = weights.messages[-1]
    assert w.format == "safetensors" and sha256_hex(bytes(w.data)) == w.sha256 and w.version > 1
    assert w.learner_epoch == first.learner_epoch and w.stddev_schedule == first.stddev_schedule
    assert w.environment_steps == 45 and s.weights_version == w.version
    versions = [m.version for m in weights.messages]
    assert versions == sorted(set(versions))  # strictly increasing within the epoch
    tensors, config = policy_from_bytes(bytes(w.data), PolicyConfig.from_json(w.network_config))
    assert config.encoder_channels == 4 and "encoder.convs_per_cam.0.0.weight" in tensors
    assert np.isfinite(s.critic_loss)


def test_sigkill_during_training_and_during_checkpoints_loses_nothing(processes, probe, tmp_path):
    run_dir = tmp_path / "run"
    args = learner_args(run_dir, checkpoint_period_s=0.05)  # checkpoints back to back: kills land inside writes
    stats = probe.subscribe(LearnerStats, "hilserl/learner_stats", qos.EVENTS)
    weights = probe.subscribe(PolicyWeights, "hilserl/policy_weights", qos.LATCHED)
    learner = processes.start_module("so101_hilserl_learner.learner_node", *args, name="learner1")
    publisher = send_episodes(probe, [1, 2])
    wait_until(lambda: latest(stats) and latest(stats).updates >= 5, 120, "training under way")
    checkpoints = run_dir / "checkpoints"
    wait_until(lambda: list(checkpoints.glob(".tmp-*")), 30, "a checkpoint being written", period_s=0.001)
    os.kill(learner.pid, signal.SIGKILL)  # in the middle of a checkpoint write
    learner.popen.wait(timeout=10)
    updates_before = latest(stats).updates
    before = weights.messages[-1]

    for round_ in range(2):
        resumed_version = load_newest_good(checkpoints).state["counters"]["weights_version"]
        learner = processes.start_module("so101_hilserl_learner.learner_node", *args, name=f"learner{round_ + 2}")
        probe.wait_for_subscribers(publisher, timeout_s=60)
        seen = len(stats)
        wait_until(lambda seen=seen: len(stats) > seen + 2, 60, "stats of the restarted learner")
        s = latest(stats)
        assert s.transitions_received == 30 and s.online_buffer_size == 30 and s.demo_buffer_size == 6
        assert s.training_transitions == 30  # the schedule's step is rebuilt from the journal
        assert s.updates >= updates_before - 25  # at most what happened since the newest complete checkpoint
        # A new epoch whose versions go on from its checkpoint's; a running actor takes it although its version is
        # lower than the killed learner's last.
        new = next(m for m in weights.messages if m.learner_epoch == s.learner_epoch)
        assert new.version == resumed_version + 1 and new.learner_epoch != before.learner_epoch
        assert new.learner_epoch.split(":")[0] == before.learner_epoch.split(":")[0]  # the same run dir
        assert accept(before.learner_epoch, before.version, new.learner_epoch, new.version, time.time_ns())
        assert new.stddev_schedule == before.stddev_schedule and new.environment_steps == 30
        time.sleep(0.5)
        os.kill(learner.pid, signal.SIGKILL)  # during training this time
        learner.popen.wait(timeout=10)
        updates_before = s.updates
        before = weights.messages[-1]


def write_agent_file(path, metadata, semantics):
    """An initial agent file of the TINY network (what checkpoint_tool import/export writes)."""
    from safetensors.torch import save_file

    from so101_hilserl_learner.agent import DrQV2Agent

    config = replace(PolicyConfig(), **json.loads(TINY), **semantics)
    tensors = {k: v.contiguous() for k, v in DrQV2Agent(config).weights().items()}
    save_file(tensors, str(path), metadata={"format": AGENT_FORMAT, "policy_config": config.to_json(),
                                            "source": "test", **metadata})  # fmt: skip
    return path


@pytest.mark.parametrize(
    ("carried", "parameter", "schedule", "steps"),
    [
        (None, "", exploration.DEFAULT_PRETRAINED_SCHEDULE, 0),  # a pretrained start's default
        (("linear(0.3,0.1,5000)", 700), "", "linear(0.3,0.1,5000)", 700),  # what an exported policy carries
        (("linear(0.3,0.1,5000)", 700), "0.05", "0.05", 700),  # the parameter is the one override
    ],
)
def test_initial_weights_decide_the_schedule_unless_the_parameter_does(
    processes, probe, tmp_path, carried, parameter, schedule, steps
):
    metadata = exploration.to_metadata(*carried) if carried else {}
    semantics = PICK101_SEMANTICS if carried is None else PROJECT_SEMANTICS  # an imported sim policy, an export
    agent = write_agent_file(tmp_path / "agent.safetensors", metadata, semantics)
    weights = probe.subscribe(PolicyWeights, "hilserl/policy_weights", qos.LATCHED)
    args = learner_args(tmp_path / "run", initial_weights=str(agent), stddev_schedule=parameter)
    processes.start_module("so101_hilserl_learner.learner_node", *args, name="learner")
    w = weights.wait_for(1, 60, "the weights published at start")[0]
    assert w.stddev_schedule == schedule and w.environment_steps == steps and w.version == 1
    assert PolicyConfig.from_json(w.network_config).semantics() == semantics  # the file's, not the defaults


def test_bad_schedule_parameter_is_a_clear_error(processes, tmp_path):
    args = learner_args(tmp_path, stddev_schedule="linear(1.0,0.1)")
    learner = processes.start_module("so101_hilserl_learner.learner_node", *args, name="bad")
    wait_until(lambda: not learner.alive(), 60, "the learner to refuse the parameter")
    assert "parameter stddev_schedule='linear(1.0,0.1)'" in learner.output()


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
        [sys.executable, "-m", "so101_hilserl_learner.weight_files.checkpoint_tool", "inspect", str(run_dir)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "30 transitions in 2 episodes" in out.stdout and "intervention steps 6" in out.stdout
    assert "newest:" in out.stdout and "weights_version" in out.stdout


def test_a_resumed_run_keeps_its_schedule_and_step(processes, probe, tmp_path):
    """The schedule set when the run started is in its checkpoints: a restart without the parameter keeps it,
    and the step (committed training transitions) is rebuilt, so the actor's noise continues where it was."""
    run_dir = tmp_path / "run"
    weights = probe.subscribe(PolicyWeights, "hilserl/policy_weights", qos.LATCHED)
    stats = probe.subscribe(LearnerStats, "hilserl/learner_stats", qos.EVENTS)
    args = learner_args(run_dir, stddev_schedule="linear(0.4,0.2,100)")
    learner = processes.start_module("so101_hilserl_learner.learner_node", *args, name="learner1")
    send_episodes(probe, [1, 2])
    wait_until(lambda: latest(stats) and latest(stats).training_transitions == 30, 60, "30 committed transitions")
    first_epoch = latest(stats).learner_epoch
    learner.stop()  # SIGINT: a clean shutdown writes a checkpoint
    last = max(m.version for m in weights.messages)
    seen = len(weights)
    processes.start_module("so101_hilserl_learner.learner_node", *learner_args(run_dir), name="learner2")
    w = weights.wait_for(seen + 1, 60, "the resumed learner's first weights")[-1]
    assert w.learner_epoch != first_epoch and w.version == last + 1  # versions go on: never backwards on resume
    assert w.stddev_schedule == "linear(0.4,0.2,100)" and w.environment_steps == 30
