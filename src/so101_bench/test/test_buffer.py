"""bench-buffer: the fill and sampling measurements at a small size, and the printed report."""

import pytest

from so101_bench import buffer as bench
from so101_hilserl_learner.replay import ReplayBuffer

SIDE = 16


def small_buffer() -> ReplayBuffer:
    return ReplayBuffer(400, frame_shape=(SIDE, SIDE, 3), frame_stack=3, nstep=3, seed=0)


def test_fill_stores_every_transition_with_each_frame_once():
    buf = small_buffer()
    assert bench.fill(buf, 300, 50, seed=0) > 0.0
    assert len(buf) == 300
    raw = SIDE * SIDE * 3 + buf.state_dim * 4 + buf.action_dim * 4
    # Frames stored once, not as stacks (3x) for observation and next observation (6x): near one raw frame each.
    assert raw <= buf.nbytes / len(buf) < 2 * raw


@pytest.mark.parametrize("reuse", [False, True])
def test_batches_per_second_is_a_positive_rate(reuse):
    buf = small_buffer()
    bench.fill(buf, 200, 50, seed=1)
    assert bench.batches_per_second(buf, 8, 5, reuse=reuse) > 0.0


def test_cli_reports_memory_speed_and_the_lerobot_comparison(capsys):
    bench.main(["--capacity", "200", "--frame-size", str(SIDE), "--batch-size", "8", "--batches", "3"])
    out = capsys.readouterr().out
    assert "stored transitions       200 (capacity 200" in out
    for line in ("bytes per transition", "batches of 8/s (fresh)", "batches of 8/s (reused)", "vs LeRobot buffer"):
        assert line in out
