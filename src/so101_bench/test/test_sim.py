"""bench-sim: the simulated operator's demo grasps and the real-time factor, at a small size; the rate goal gates."""

from so101_bench import sim


def test_operator_driven_demos_succeed():
    """The CI version of the bench: 6 randomised episodes from the robot's reset, through the action channel."""
    successes, results = sim.demo_grasp_rate(6, seed=100, progress=False)
    assert successes >= 5, [(r.success, r.steps) for r in results]
    assert all(10 <= r.steps <= 100 for r in results if r.success)  # not before the episode rules allow


def test_real_time_factor_is_a_positive_rate_and_a_render_time():
    rtf, render_ms = sim.real_time_factor(0.3, seed=1)
    assert rtf > 0.0 and render_ms > 0.0


def test_bench_cli_prints_both_measurements_and_gates_on_min_rate(capsys):
    assert sim.main(["--episodes", "1", "--seconds", "0.3", "--no-progress", "--seed", "5"]) == 0
    out = capsys.readouterr().out
    assert "demo grasp success: 1/1 = 100.0%" in out
    assert "real-time factor:" in out
    # Three steps cannot grasp: the goal check reports the miss and the exit status says so.
    assert sim.main(["--episodes", "1", "--max-steps", "3", "--seconds", "0", "--no-progress"]) == 1
    out = capsys.readouterr().out
    assert "demo grasp success: 0/1" in out and "FAIL: below --min-rate" in out
