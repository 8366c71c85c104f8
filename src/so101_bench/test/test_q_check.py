"""The end-of-run Q check reads a learner directory as a restart would: the final checkpoint's critic on the rows the
journal rebuilds, next to their exact returns; episodes cut by the time limit count in no group."""

import math

import numpy as np
import pytest
from rclpy.serialization import serialize_message

from so101_bench.q_check import end_of_run_q
from so101_contract import settings
from so101_hilserl_core.messages import observation_to_msg
from so101_hilserl_interfaces.msg import Transition
from so101_hilserl_learner.learner import Learner, LearnerConfig

TINY = '{"encoder_channels": 4, "hidden": [16, 16], "bottleneck": 8}'
LENGTH, HELPED = 15, (3, 4, 5)  # steps per episode, the person's steps


class Log:
    def info(self, text): ...
    def warning(self, text): ...
    def error(self, text): ...


def episode(episode_id: int, terminated: bool):
    rng = np.random.default_rng(episode_id)
    for step in range(LENGTH):
        msg = Transition(actor_id="test", episode_id=episode_id, step=step, intervention=step in HELPED)
        msg.observation = observation_to_msg(rng.integers(0, 256, (84, 84, 3), np.uint8), rng.normal(size=18))
        msg.action = msg.policy_action = [float(v) for v in rng.uniform(-1, 1, 4)]
        msg.reward = 1.0 if terminated and step == LENGTH - 1 else -0.05
        if step == LENGTH - 1:
            msg.terminated, msg.truncated = terminated, not terminated
            msg.next_observation = [observation_to_msg(rng.integers(0, 256, (84, 84, 3), np.uint8), np.zeros(18))]
        yield msg


def test_the_final_critic_against_the_exact_returns_of_its_own_rows(tmp_path):
    values = {"run_dir": str(tmp_path), "network": TINY, "device": "cpu", "batch_size": 8, "warmup_transitions": 20}
    learner = Learner(settings.build(LearnerConfig, values), Log(), None)
    try:
        ends = {1: True, 2: False, 3: True}  # episode 2 hits the time limit
        for episode_id, terminated in ends.items():
            for msg in episode(episode_id, terminated):
                learner.receive(serialize_message(msg))
        while learner.update() is not None:
            pass
        assert learner.checkpoint() is None
        # what the learner's own critic says on the rows of the episodes that terminated
        gamma = learner.config.replay.discount
        rows = learner.online.rows(0, len(learner.online))
        exact = np.isfinite(rows.mc_return)
        q = learner.agent.q_values(rows)
    finally:
        learner.close()
    rewards = [-0.05] * (LENGTH - 1) + [1.0]
    to_go = [sum(gamma**k * rewards[t + k] for k in range(LENGTH - t)) for t in range(LENGTH)]
    policy = [t for t in range(LENGTH) if t not in HELPED]

    got = end_of_run_q(tmp_path)
    assert exact.sum() == 2 * LENGTH  # episodes 1 and 3; episode 2's rows have no exact return
    assert got["rows_online_policy"] == 2 * len(policy) and got["rows_online_intervention"] == 2 * len(HELPED)
    assert got["rows_demo"] == 2 * len(HELPED)
    assert got["mc_return_online_policy"] == pytest.approx(np.mean([to_go[t] for t in policy]), rel=1e-5)
    assert got["mc_return_demo"] == pytest.approx(np.mean([to_go[t] for t in HELPED]), rel=1e-5)
    assert got["q_online_policy"] == pytest.approx(q[exact & ~rows.intervention].mean(), rel=1e-4)


def test_a_directory_without_a_checkpoint_has_no_figures(tmp_path):
    got = end_of_run_q(tmp_path)
    assert all(math.isnan(v) for v in got.values())
