"""The report command on run directories written here the way a run writes them: the learner's TensorBoard events
(torch's SummaryWriter, as learner_node) and a bag with hilserl/episodes."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
from matplotlib.image import imread
from rclpy.serialization import serialize_message
from rosbags.rosbag2 import StoragePlugin, Writer

from so101_bringup.records.recorder import project_typestore
from so101_bringup.records.report import load_run, rolling_mean
from so101_hilserl_interfaces.msg import EpisodeSummary

EPISODES = 30
EVALUATION = {10, 20}  # episode ids of deterministic evaluation episodes


def success_of(i: int) -> bool:
    return i % 3 == 0 or i > 20


def write_tensorboard(directory, steps, offset=0.0):
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(str(directory))
    for step in steps:
        writer.add_scalar("loss/critic_loss", 1.0 / (1 + step) + offset, step)
        writer.add_scalar("loss/actor_loss", -0.01 * step, step)
        writer.add_scalar("episodes/success_rate", min(step / 100, 1.0), step)
    writer.close()


def write_episode_bag(path):
    typestore = project_typestore()
    with Writer(path, version=9, storage_plugin=StoragePlugin.MCAP) as writer:
        topic = writer.add_connection(
            "/hilserl/episodes", "so101_hilserl_interfaces/msg/EpisodeSummary", typestore=typestore
        )
        for i in range(EPISODES):
            msg = EpisodeSummary(actor_id="sim", episode_id=i, steps=100, intervention_steps=max(0, 40 - 2 * i))
            msg.success, msg.episode_return, msg.evaluation = success_of(i), float(i) - 5.0, i in EVALUATION
            writer.write(topic, (i + 1) * 10**9, serialize_message(msg))
            if i == 5:  # a repeated record (e.g. a second recorder) must not count twice
                writer.write(topic, (i + 1) * 10**9 + 1, serialize_message(msg))


def run_report(*args) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "so101_bringup.records.report", *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60)


def assert_png(path):
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", path
    pixels = imread(path)
    assert pixels.ndim == 3 and pixels.shape[0] > 100 and pixels.shape[1] > 100
    assert pixels.std() > 0.01, f"{path} is blank"


def test_report_from_tensorboard_and_a_bag(tmp_path):
    run = tmp_path / "run"
    write_tensorboard(run / "learner" / "tensorboard", range(0, 50, 5))
    write_tensorboard(run / "learner" / "tensorboard", range(50, 120, 5), offset=0.5)  # a resumed learner
    write_episode_bag(run / "bags" / "session")

    data = load_run(run)
    steps, critic = data.scalars["loss/critic_loss"]
    assert steps.tolist() == list(range(0, 120, 5))
    np.testing.assert_allclose(critic, [1 / (1 + s) + (0.5 if s >= 50 else 0) for s in steps], rtol=1e-6)
    training = [i for i in range(EPISODES) if i not in EVALUATION]
    assert data.episodes.success.tolist() == [float(success_of(i)) for i in training]
    assert data.episodes.number.tolist() == [i + 1 for i in training]
    np.testing.assert_allclose(data.episodes.intervention_rate, [max(0, 40 - 2 * i) / 100 for i in training])
    assert data.evaluation.success.tolist() == [float(success_of(i)) for i in sorted(EVALUATION)]

    done = run_report(run, "--window", 5)
    assert done.returncode == 0, done.stderr
    for name in ("success_rate", "intervention_rate", "episode_return", "losses"):
        assert_png(run / "report" / f"{name}.png")


def test_tensorboard_only_plots_over_updates(tmp_path):
    write_tensorboard(tmp_path / "tensorboard", range(0, 30, 3))
    done = run_report(tmp_path, "--out", tmp_path / "plots")
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == ["losses.png", "success_rate.png"]
    assert_png(tmp_path / "plots" / "success_rate.png")


def test_empty_run_dir_is_a_clear_error(tmp_path):
    (tmp_path / "logs").mkdir()
    done = run_report(tmp_path)
    assert done.returncode == 2
    assert "nothing to plot" in done.stderr and "tfevents" in done.stderr
    assert not (tmp_path / "report").exists()


def test_rolling_mean_is_the_mean_of_the_last_window():
    values = np.random.default_rng(0).random(40)
    expected = [values[max(0, i - 6) : i + 1].mean() for i in range(40)]
    np.testing.assert_allclose(rolling_mean(values, 7), expected)
