"""bench-actor: the step timings at a few steps, the jitter arithmetic, and the goal check flagging a miss."""

import pytest

from so101_bench import actor as bench


def test_period_jitter_is_the_distance_of_each_interval_from_the_period():
    jitter = bench.period_jitter([0.0, 0.1, 0.21, 0.3, 0.4], 0.1)  # intervals 0.1, 0.11, 0.09, 0.1
    assert jitter["max_ms"] == pytest.approx(10.0)
    assert jitter["p50_ms"] == pytest.approx(5.0)
    assert jitter["p50_ms"] <= jitter["p99_ms"] <= jitter["max_ms"]
    with pytest.raises(ValueError, match="at least two"):
        bench.period_jitter([0.0], 0.1)


def test_actor_step_reports_every_stage_and_the_total_bounds_them():
    result = bench.bench_actor_step(steps=4, threads=1, warmup=1)
    assert set(result) == {*bench.STAGES, bench.CPU_TOTAL}
    for name, figures in result.items():
        assert 0.0 < figures[50] <= figures[99], name
    assert result["total"][99] >= max(result[s][50] for s in bench.STAGES if s != "total")


def test_control_step_timing_is_positive():
    figures = bench.bench_control_step(steps=3, threads=1, warmup=1)
    assert 0.0 < figures[50] <= figures[99]


def test_cli_flags_a_step_over_budget_and_passes_a_generous_one(capsys):
    common = ["--steps", "2", "--warmup", "1", "--threads", "1", "--sim-seconds", "0"]
    assert bench.main([*common, "--budget-ms", "0.000001"]) == 1
    assert "MISSES the 0 ms goal" in capsys.readouterr().out
    assert bench.main([*common, "--budget-ms", "100000"]) == 0
    assert "meets the" in capsys.readouterr().out


def test_loop_jitter_of_a_short_sim_run():
    """The actor node against the sim node process: a control step every period, jitter and step figures back."""
    figures = bench.measure_loop_jitter(1.5)
    assert figures["steps"] >= 10
    assert 0.0 <= figures["jitter_p50_ms"] <= figures["jitter_p99_ms"] < 100.0  # never a whole period late
    assert figures["step_p99_ms"] > 0.0
