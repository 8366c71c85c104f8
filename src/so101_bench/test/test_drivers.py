"""bench-drivers: one short run of the follower node against the emulated bus gives a state rate and latencies."""

from so101_bench import drivers as bench


def test_one_short_run_measures_the_state_rate_and_the_command_latency(tmp_path):
    result = bench.measure(1.0, 100.0, 0.0, 5, tmp_path)
    assert 10.0 < result["rate_hz"] < 150.0  # the node publishes at 100 Hz; a loaded machine may deliver fewer
    assert result["errors_injected"] == 0
    latency = result["latency_ms"]
    assert 1 <= latency["n"] <= 5
    assert 0.0 < latency["p50"] <= latency["p99"]
