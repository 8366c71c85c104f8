"""bench-hil's pure parts: the parameter file it gives the graph, the figures and the verdict from episode rows."""

import json
import math

import pytest
import yaml

from so101_bench.hil import (
    CONFIGS,
    figures,
    fresh_dir,
    goal_misses,
    steps_to_evaluation_success,
    verdict,
    write_params,
)
from so101_bringup.records.episode_log import EpisodeRow
from so101_bringup.records.report import summarize
from so101_driver.vision.preprocessing import ImagePreprocessing


def row(evaluation: bool, success: bool, intervention_steps: int, steps: int = 50) -> EpisodeRow:
    return EpisodeRow(
        wall_time_s=0.0, sim_time_s=0.0, actor_id="a", episode_id=0, evaluation=evaluation, success=success,
        steps=steps, intervention_steps=intervention_steps, episode_return=1.0, end_reason="timeout",
        policy_version=1, learner_updates=10, achieved_utd=0.99, requested_utd=1.0, training_transitions=100,
    )  # fmt: skip


def rows(n_train, n_eval, train_success, eval_success, intervention_steps, steps=50):
    """episodes.csv rows: training episodes with ``intervention_steps(i)``, an evaluation episode after every one."""
    out = []
    for i in range(max(n_train, n_eval)):
        if i < n_train:
            out.append(row(False, train_success(i), intervention_steps(i), steps))
        if i < n_eval:
            out.append(row(True, eval_success(i), 0, steps))
    return out


def test_a_run_that_learns_meets_the_goal_and_the_figures_are_the_blocks():
    learning = rows(60, 60, lambda i: True, lambda i: i >= 30, lambda i: 20 if i < 20 else 5)
    s = summarize(learning)
    f = figures(s, wall_s=600.0)
    assert f["evaluation_success_first"] == 0.0 and f["evaluation_success_last"] == 1.0
    assert f["intervention_first"] == pytest.approx(20 / 50) and f["intervention_last"] == pytest.approx(5 / 50)
    assert f["environment_steps"] == 60 * 50  # training steps only: evaluation episodes are not trained on
    assert f["autonomous_success_first"] == 0.0 and f["autonomous_success_last"] == 0.0  # all assisted
    assert f["assisted_success_last"] == 1.0 and f["achieved_utd"] == pytest.approx(0.99)
    assert verdict(s) == []


@pytest.mark.parametrize(
    "eval_success, intervention, missed",
    [
        (lambda i: i >= 55, lambda i: 20 if i < 20 else 5, "evaluation success gained +25 points"),
        (lambda i: i >= 30, lambda i: 20 if i < 20 else 11, "intervention 0.40 -> 0.22"),
    ],
)
def test_a_run_short_of_either_goal_is_a_miss(eval_success, intervention, missed):
    assert any(missed in m for m in verdict(summarize(rows(60, 60, lambda i: True, eval_success, intervention))))


def test_too_few_episodes_are_a_miss_not_a_pass():
    few = summarize(rows(30, 30, lambda i: True, lambda i: i >= 10, lambda i: 0 if i else 10))
    assert any("fewer than 40" in m for m in verdict(few))
    no_evaluation = summarize(rows(60, 0, lambda i: True, lambda i: True, lambda i: 20 if i < 20 else 5))
    assert math.isnan(figures(no_evaluation, 1.0)["evaluation_success_first"])
    assert any("evaluation success gained" in m for m in verdict(no_evaluation))


def test_the_graph_parameters_carry_the_configuration(tmp_path):
    config = CONFIGS["ci"]
    data = yaml.safe_load(write_params(tmp_path / "p.yaml", config, "none").read_text())
    assert data["/**/so101_sim"]["ros__parameters"]["operator_mode"] == "none"
    assert data["/**/so101_sim"]["ros__parameters"]["curriculum_stage"] == config.profile.stage
    learner = data["/**/learner"]["ros__parameters"]
    assert (
        learner["batch_size"] == config.profile.batch_size
        and learner["network"] == data["/**/actor"]["ros__parameters"]["network"]
    )
    actor = data["/**/actor"]["ros__parameters"]
    assert actor["evaluation_every_episodes"] == config.profile.evaluation_every_episodes
    # the actor crops and resizes the sim's frames as the pretraining did
    seen = ImagePreprocessing.from_parameter(actor["preprocessing"])
    assert (
        (seen.source_width, seen.source_height)
        == config.profile.camera
        == (
            data["/**/so101_sim"]["ros__parameters"]["camera_width"],
            data["/**/so101_sim"]["ros__parameters"]["camera_height"],
        )
    )
    assert seen.output_size == json.loads(actor["network"])["image_size"]


def test_only_its_own_run_directories_are_replaced(tmp_path):
    mine = fresh_dir(tmp_path / "hil", overwrite=False)
    (mine / "episodes.csv").write_text("x")
    with pytest.raises(ValueError, match="pass --overwrite"):
        fresh_dir(mine, overwrite=False)
    assert not (fresh_dir(mine, overwrite=True) / "episodes.csv").exists()
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "precious").write_text("keep")
    with pytest.raises(ValueError, match="not made by this benchmark"):
        fresh_dir(theirs, overwrite=True)
    assert (theirs / "precious").read_text() == "keep"


def test_steps_to_fifty_percent_counts_training_steps_until_a_full_window_reaches_it():
    # evaluation fails 10 times, then succeeds: the rolling 20 reaches 50 % at the 20th evaluation episode
    learning = rows(40, 40, lambda i: True, lambda i: i >= 10, lambda i: 0, steps=30)
    assert steps_to_evaluation_success(learning) == 20 * 30  # 20 training episodes of 30 steps before it
    never = rows(40, 40, lambda i: True, lambda i: i % 3 == 0, lambda i: 0)
    assert math.isinf(steps_to_evaluation_success(never))


def _arm(steps_to_50, q=5.0, mc=5.0, rows=100):
    return {"steps_to_50": steps_to_50, "q_online_policy": q, "mc_return_online_policy": mc, "rows_online_policy": rows}


def test_the_goal_compares_the_median_seed_with_the_control_run_and_checks_q():
    good = summarize(rows(60, 60, lambda i: True, lambda i: i >= 30, lambda i: 20 if i < 20 else 5))
    summaries = {seed: {"hil": good} for seed in range(3)}
    fast = {seed: {"hil": _arm(1000), "control": _arm(2000)} for seed in range(3)}
    assert goal_misses(fast, summaries) == []
    slow = {seed: {"hil": _arm(1500), "control": _arm(2000)} for seed in range(3)}
    assert any("<= 0.7x" in m for m in goal_misses(slow, summaries))
    overestimating = {seed: {"hil": _arm(1000, q=9.0, mc=5.0), "control": _arm(2000)} for seed in range(3)}
    assert any("mean Q 9.00 vs Monte-Carlo return 5.00" in m for m in goal_misses(overestimating, summaries))
    # every run is judged where it has exact returns; a run none of whose episodes succeeded has none to compare
    control_off = {seed: {"hil": _arm(1000), "control": _arm(2000, q=9.0, mc=5.0)} for seed in range(3)}
    assert any("control: mean Q 9.00" in m for m in goal_misses(control_off, summaries))
    never_succeeded = {
        seed: {"hil": _arm(1000), "control": _arm(2000, math.nan, math.nan, rows=0)} for seed in range(3)
    }
    assert goal_misses(never_succeeded, summaries) == []
    no_checkpoint = {
        seed: {"hil": _arm(1000, math.nan, math.nan, rows=math.nan), "control": _arm(2000)} for seed in range(3)
    }
    assert any("hil: no Q / Monte-Carlo return" in m for m in goal_misses(no_checkpoint, summaries))
    one_seed = {0: fast[0]}
    assert any("a learning claim takes 3" in m for m in goal_misses(one_seed, {0: summaries[0]}))
    no_control = {seed: {"hil": _arm(1000)} for seed in range(3)}
    assert any("no control run" in m for m in goal_misses(no_control, summaries))
