"""Evaluation episodes without a graph: which episodes evaluate, and what an evaluation episode's steps are."""

import numpy as np
import pytest
import torch
from so101_hilserl_core.episode import EpisodeConfig
from so101_hilserl_core.exploration import ExplorationConfig
from so101_hilserl_core.policy import Policy
from test_control_step import TINY, Feed, make_step, run_steps, transitions

from so101_hilserl_actor.control_step import ControlConfig, ControlStep
from so101_hilserl_actor.evaluation import EvaluationSchedule


def _kinds(schedule: EvaluationSchedule, episodes: int) -> str:
    kinds = ""
    for _ in range(episodes):
        evaluation = schedule.next_is_evaluation()
        assert schedule.next_is_evaluation() == evaluation  # asking again (a failed reset) does not change it
        kinds += "E" if evaluation else "T"
        schedule.record(evaluation)
    return kinds


def test_one_evaluation_episode_after_every_n_training_episodes():
    assert _kinds(EvaluationSchedule(3), 9) == "TTTETTTET"
    assert _kinds(EvaluationSchedule(1), 6) == "TETETE"
    assert _kinds(EvaluationSchedule(0), 5) == "TTTTT"  # 0 = never
    assert _kinds(EvaluationSchedule(0, always=True), 3) == "EEE"  # the run-wide evaluation parameter
    schedule = EvaluationSchedule(2)
    _kinds(schedule, 7)
    assert (schedule.training_episodes, schedule.evaluation_episodes) == (5, 2)
    with pytest.raises(ValueError, match="evaluation_every_episodes"):
        EvaluationSchedule(-1)


def _mean(control, result) -> np.ndarray:
    pixels, state = result.policy_inputs
    with torch.no_grad():
        return control.policy(torch.from_numpy(pixels)[None], torch.from_numpy(state)[None])[0].numpy()


def test_an_evaluation_episode_acts_with_the_policy_mean_and_is_flagged_the_next_training_one_explores():
    control, feed = make_step(seed=3), Feed()  # pretrained: Gaussian noise of linear(0.2,0.1,10000)
    control.begin_episode(feed.t, evaluation=True)
    results = run_steps(control, feed, 20)
    steps = transitions(results)
    assert results[-1].episode is not None and results[-1].episode.evaluation
    assert all(t.evaluation for t in steps)
    for result, transition in zip(results, steps, strict=False):
        assert np.array_equal(transition.policy_action, transition.action)
        assert np.allclose(transition.policy_action, _mean(control, result), atol=1e-6)  # the mean, no noise
    assert control.exploration_step == 0  # evaluation steps are not exploration steps

    control.begin_episode(feed.t)  # the next episode trains again
    results = run_steps(control, feed, 4)
    steps = transitions(results)
    assert not any(t.evaluation for t in steps)
    assert not np.allclose(steps[0].policy_action, _mean(control, results[0]), atol=1e-3)  # noise again
    assert control.exploration_step == 4


def test_an_evaluation_episode_of_an_actor_without_weights_takes_no_random_actions():
    config = ControlConfig(exploration=ExplorationConfig(num_explore_steps=100), episode=EpisodeConfig(max_steps=5))
    fresh = ControlStep(config, Policy(TINY),
                        make_step().kinematics, make_step().preprocessing, pretrained=False)  # fmt: skip
    feed = Feed()
    fresh.begin_episode(feed.t, evaluation=True)
    results = run_steps(fresh, feed, 6)
    for result, transition in zip(results, transitions(results), strict=False):
        assert np.allclose(transition.action, _mean(fresh, result), atol=1e-6)


def test_the_run_wide_evaluation_makes_every_episode_an_evaluation_episode():
    control, feed = make_step(evaluation=True), Feed()
    for _ in range(2):
        control.begin_episode(feed.t)  # evaluation=False is overridden by the run-wide setting
        results = run_steps(control, feed, 20)
        assert results[-1].episode.evaluation and all(t.evaluation for t in transitions(results))
