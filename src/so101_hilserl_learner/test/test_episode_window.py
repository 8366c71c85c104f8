"""The learner's episode window: training and evaluation apart, success split autonomous/assisted, NaN when empty."""

import math

import pytest

from so101_contract.outcomes import Outcome
from so101_hilserl_learner.episode_window import EpisodeWindow


def test_training_rates_split_success_and_ignore_evaluation_episodes():
    window = EpisodeWindow()
    window.add(Outcome(True, 0, 20, episode_return=2.0))  # autonomous
    window.add(Outcome(True, 10, 40, episode_return=1.0))  # assisted
    window.add(Outcome(False, 30, 60, episode_return=-3.0))
    window.add(Outcome(False, 0, 50, evaluation=True))  # must not move the training numbers
    fields = window.stats_fields()
    assert fields["success_rate"] == pytest.approx(2 / 3)
    assert fields["autonomous_success_rate"] == pytest.approx(1 / 3)
    assert fields["assisted_success_rate"] == pytest.approx(1 / 3)
    assert fields["intervention_fraction"] == pytest.approx(40 / 120)  # steps-weighted
    assert fields["evaluation_success_rate"] == 0.0 and fields["evaluation_episodes"] == 1
    scalars = window.training_scalars()
    assert scalars["episodes/intervention_rate"] == pytest.approx(40 / 120)
    assert scalars["episodes/return"] == pytest.approx(0.0)
    assert scalars["episodes/autonomous_success_rate"] == pytest.approx(1 / 3)


def test_no_episode_is_nan_not_zero_and_logs_no_training_point():
    window = EpisodeWindow()
    fields = window.stats_fields()
    assert math.isnan(fields["success_rate"]) and math.isnan(fields["evaluation_success_rate"])
    assert fields["evaluation_episodes"] == 0 and window.training_scalars() == {}
    window.add(Outcome(True, 0, 10, evaluation=True))
    assert window.training_scalars() == {} and math.isnan(window.stats_fields()["success_rate"])


def test_windows_keep_the_last_50_training_and_20_evaluation_episodes():
    window = EpisodeWindow()
    for _ in range(50):
        window.add(Outcome(False, 5, 10))
    for _ in range(50):
        window.add(Outcome(True, 0, 10))  # the 50 failures have left the window
    assert window.training_rates().success == 1.0 and window.training_rates().intervention_fraction == 0.0
    for i in range(30):
        newest = Outcome(i >= 20, 0, 10, evaluation=True)  # 20 failures, then 10 successes
        window.add(newest)
    assert window.evaluation_episodes == 30  # counted since start, not the window
    scalars = window.evaluation_scalars(newest)
    assert scalars["evaluation/success_rate"] == pytest.approx(10 / 20) and scalars["evaluation/success"] == 1.0
