"""The report and the summary from the runner's episodes.csv (written here by the runner's own EpisodeLog): training
success split autonomous/assisted, the intervention fraction, evaluation success apart, first and last blocks."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest
from test_report import assert_png, write_episode_bag

from so101_bringup.records.episode_log import EpisodeLog, EpisodeRow
from so101_bringup.records.report import ReportError, load_run, rolling_ratio, summarize, summarize_run
from so101_hilserl_interfaces.msg import EpisodeSummary, LearnerStats

TRAINING = 60
EVALUATION_EVERY = 2  # an evaluation episode after every second training episode: 30 of them


def training_episode(i: int) -> tuple[bool, int]:
    """(success, intervention steps of 100) of training episode i: the operator's share falls, the policy takes over."""
    intervention = max(0, 50 - i)  # 50 steps at first, none from episode 50 on
    return i % 4 != 3, intervention


def evaluation_success(k: int) -> bool:
    return k >= 15 and k % 3 != 0  # none in the first half, 2 of 3 later


def write_run(run_dir):
    log = EpisodeLog(run_dir / "episodes.csv")
    stats = LearnerStats(updates=0, update_to_data_ratio=1.0, requested_utd=1.0)
    episode_id, evaluations, wall = 0, 0, 0.0
    for i in range(TRAINING):
        episode_id, wall = episode_id + 1, wall + 10.0
        success, intervention = training_episode(i)
        msg = EpisodeSummary(actor_id="sim", episode_id=episode_id, steps=100, intervention_steps=intervention)
        msg.success, msg.episode_return = success, float(i)
        stats.updates += 100
        log.append(EpisodeRow.from_messages(msg, stats, wall))
        if i % EVALUATION_EVERY == 1:
            episode_id, wall = episode_id + 1, wall + 10.0
            msg = EpisodeSummary(actor_id="sim", episode_id=episode_id, steps=80, evaluation=True)
            msg.success = evaluation_success(evaluations)
            evaluations += 1
            log.append(EpisodeRow.from_messages(msg, stats, wall))
    log.close()


def test_curves_and_summary_come_from_the_episode_log(tmp_path):
    run = tmp_path / "run"
    write_run(run)
    write_episode_bag(run / "bags" / "session")  # a bag too: the episode log is the source that wins
    data = load_run(run)
    assert data.sources == [str(run / "episodes.csv")]
    training = [training_episode(i) for i in range(TRAINING)]
    assert len(data.episodes) == TRAINING and len(data.evaluation) == TRAINING // EVALUATION_EVERY
    assert data.episodes.autonomous.tolist() == [float(s and n == 0) for s, n in training]
    assert data.episodes.assisted.tolist() == [float(s and n > 0) for s, n in training]
    assert data.evaluation.number.tolist() == [3 * k + 3 for k in range(30)]  # positions among all episodes

    s = summarize(data.rows)
    assert (s.training_episodes, s.evaluation_episodes) == (60, 30)
    assert s.evaluation_first.success == pytest.approx(np.mean([evaluation_success(k) for k in range(20)]))
    assert s.evaluation_last.success == pytest.approx(np.mean([evaluation_success(k) for k in range(10, 30)]))
    assert s.training_first.intervention_fraction == pytest.approx(sum(50 - i for i in range(20)) / 2000)
    assert s.training_last.intervention_fraction == pytest.approx(sum(max(0, 50 - i) for i in range(40, 60)) / 2000)
    assert s.intervention_ratio == pytest.approx(s.training_last.intervention_fraction / (810 / 2000))
    assert s.evaluation_gain_points == pytest.approx(100 * (s.evaluation_last.success - s.evaluation_first.success))
    assert s.environment_steps == 60 * 100 + 30 * 80 and s.training_steps == 6000
    assert s.wall_time_s == 900.0 and s.learner_updates == 6000 and s.achieved_utd == 1.0
    assert summarize_run(run) == s

    done = subprocess.run(
        [sys.executable, "-m", "so101_bringup.records.report", str(run), "--window", "10"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "(60 training, 30 evaluation episodes)" in done.stdout
    assert s.text() in done.stdout
    assert "evaluation success (policy alone), first 20 -> last 20: 15% -> 50% (+35 points; first 20 / last 20 of " \
        "30 (only 30: the blocks overlap))" in done.stdout  # fmt: skip
    for name in ("success_rate", "intervention_rate", "episode_return", "evaluation_success"):
        assert_png(run / "report" / f"{name}.png")


def test_summary_of_a_run_without_evaluations_says_so(tmp_path):
    log = EpisodeLog(tmp_path / "episodes.csv")
    msg = EpisodeSummary(actor_id="sim", episode_id=1, steps=50, intervention_steps=10, success=True)
    log.append(EpisodeRow.from_messages(msg, None, 3.0))
    log.close()
    s = summarize_run(tmp_path)
    assert math.isnan(s.evaluation_gain_points) and s.learner_updates is None
    assert s.training_last.assisted_success == 1.0
    text = s.text()
    assert "n/a -> n/a" in text and "intervention fraction, first 20 -> last 20: 20% -> 20%" in text
    assert "learner updates n/a, UTD n/a/n/a, wall time 0.1 min" in text  # no learner stats yet


def test_without_an_episode_log_the_summary_is_a_clear_error(tmp_path):
    with pytest.raises(ReportError, match="has no episodes.csv"):
        summarize_run(tmp_path)
    EpisodeLog(tmp_path / "episodes.csv").close()  # a run that ended before its first episode
    with pytest.raises(ReportError, match="no row yet"):
        summarize_run(tmp_path)


def test_rolling_intervention_is_weighted_by_steps():
    interventions, steps = np.array([10.0, 0.0, 30.0, 0.0]), np.array([20.0, 80.0, 60.0, 0.0])
    np.testing.assert_allclose(rolling_ratio(interventions, steps, 2), [0.5, 0.1, 30 / 140, 0.5])
    np.testing.assert_allclose(rolling_ratio(np.zeros(2), np.zeros(2), 3), [0.0, 0.0])
