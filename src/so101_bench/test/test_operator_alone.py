"""The simulated operator, driving alone through the policy's action channel, finishes the grasp from the reset of
every curriculum stage and from the states a random policy leaves."""

import pytest

from so101_bench.operator_alone import FAST, RANDOM_STEPS, operator_episode, success_rates
from so101_hilserl_learner.envs.pick import PickEnv


@pytest.mark.timeout(300)
def test_the_operator_alone_succeeds_at_least_90_percent_from_every_start():
    rates = success_rates(episodes=20, seed=100)
    assert set(rates) == {"stage 0", "stage 1", "stage 2", "stage 3", "random"}
    assert all(rate >= 0.9 for rate in rates.values()), rates


def test_a_takeover_after_random_actions_counts_only_the_operators_steps():
    env = PickEnv(stage=0, preprocessing=FAST)
    result = operator_episode(env, seed=5, random_steps=RANDOM_STEPS)
    env.close()
    assert result["steps"] > RANDOM_STEPS and result["operator_steps"] == result["steps"] - RANDOM_STEPS
