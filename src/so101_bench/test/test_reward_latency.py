"""bench-reward latency: the node-latency measurement end to end, short, and its goal check."""

import os
from pathlib import Path

from so101_bench.reward_latency import format_latency, measure_node_latency
from so101_reward.classifier import RewardClassifier
from so101_reward.model_config import RewardModelConfig


def test_latency_benchmark_measures_every_frame_and_flags_a_missed_goal(tmp_path):
    """The same node process, images over DDS, figures back; the goal check says MISSES below the measured p99."""
    model = RewardClassifier(RewardModelConfig()).save(tmp_path / "model")
    domain = os.environ["ROS_DOMAIN_ID"]
    result = measure_node_latency(model, frames=20, rate_hz=20.0, log_dir=tmp_path / "bench_logs", warmup_frames=2)
    assert os.environ["ROS_DOMAIN_ID"] == domain  # the environment is restored
    assert result["frames_sent"] == 20 and result["frames_received"] >= 18
    latency, processing = result["latency_ms"], result["node_processing_ms"]
    assert 0.0 < latency["p50"] <= latency["p99"] <= latency["max"]
    assert processing is not None and processing["frames"] >= 20  # the node's shutdown summary was read
    # Every image the node saw was stamped when sent (the probe images too): ages of seconds at most, not decades.
    assert 0.0 <= processing["arrival_age_p50"] <= processing["arrival_age_p99"] < 10_000.0
    assert latency["p50"] > processing["p50"] * 0.5  # a signal cannot come back before the frame was processed
    assert 0.0 < result["compute_ms"]["p50"] <= result["compute_ms"]["p99"]
    assert Path(result["log_path"]).is_file()

    text, ok = format_latency(result, budget_ms=latency["p99"] / 2)
    assert not ok and "MISSES" in text
    text, ok = format_latency(result, budget_ms=latency["p99"])
    assert ok and "meets" in text and f"{result['frames_received']}/20 frames" in text
