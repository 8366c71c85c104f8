"""Evaluation episodes without a graph: which episodes evaluate, and what an evaluation episode's steps are."""

import numpy as np
import pytest
import torch
from test_control_step import TINY, Feed, make_step, run_steps, transitions

from so101_contract import settings
from so101_hilserl_actor.actor_config import ActorConfig
from so101_hilserl_actor.actor_run import RunTally, waiting_for
from so101_hilserl_actor.control_step import ControlConfig, ControlStep, EpisodeRecord
from so101_hilserl_actor.evaluation import EvaluationSchedule
from so101_hilserl_core.episode import EpisodeConfig
from so101_hilserl_core.exploration import ExplorationConfig
from so101_hilserl_core.policy import Policy


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


def _episode(episode_id: int, evaluation: bool, success: bool, steps: int = 10) -> EpisodeRecord:
    return EpisodeRecord(episode_id=episode_id, steps=steps, episode_return=1.5, success=success, intervention_steps=2,
                         interventions=1, stale_frames=0, end_reason="success" if success else "timeout",
                         policy_version=3, evaluation=evaluation, duration_s=1.0)  # fmt: skip


def test_the_run_tally_drives_the_schedule_and_ends_the_run_after_max_episodes():
    run = RunTally(settings.replace(ActorConfig(), evaluation_every_episodes=2, max_episodes=4,
                                    training_since_evaluation=1))  # fmt: skip
    assert run.mode() == "training, an evaluation episode after every 2" and not run.over
    kinds = ""
    for i, success in enumerate((True, False, True, False)):
        evaluation = run.next_is_evaluation()
        kinds += "E" if evaluation else "T"
        line = run.record(_episode(i + 1, evaluation, success, steps=10 + i))
        assert line.startswith(f"{'evaluation episode' if evaluation else 'episode'} {i + 1}: ")
    assert kinds == "TETT" and run.over  # a resumed run: one training episode since its last evaluation
    assert "failed" in run.reset_failed("sim/reset is not available", 2.0) and run.reset_failures == 1
    assert run.summary() == ("run finished: 4 episodes, success rate 50%, mean steps 11.5, 1 failed resets, of which "
                             "1 evaluation episodes with success rate 0%")  # fmt: skip
    assert not RunTally(ActorConfig()).over  # max_episodes 0: never over
    evaluation_run = RunTally(settings.replace(ActorConfig(), evaluation=True))
    assert evaluation_run.mode() == "evaluation" and evaluation_run.next_is_evaluation()


def test_the_actor_waits_for_its_inputs_its_takers_and_when_resumed_the_learners_weights():
    config = settings.replace(ActorConfig(), wait_for_subscribers=2)
    assert waiting_for([], 2, config, holds_learner_weights=False) == ""
    assert waiting_for(["leader/joint_states"], 1, config, False) == (
        "leader/joint_states, 1 more taker(s) of hilserl/transitions (the learner)"
    )
    resumed = settings.replace(config, wait_for_learner_weights=True)
    assert "the learner's weights" in waiting_for([], 2, resumed, holds_learner_weights=False)
    assert waiting_for([], 2, resumed, holds_learner_weights=True) == ""


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
