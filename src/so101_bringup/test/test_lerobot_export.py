"""A run out as a LeRobot dataset and back in: the simulated operator's demonstrations (a learner journal the sim
graph wrote, fixtures/sim_demos) exported and imported again give the transitions the graph recorded: the same states
and actions, the images within the codec's loss (PSNR >= 35 dB). The export is all or nothing."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from rclpy.serialization import deserialize_message, serialize_message

from so101_bringup.lerobot_datasets.export_run import export_run
from so101_bringup.lerobot_datasets.import_dataset import import_dataset
from so101_bringup.lerobot_datasets.layout import JOINT_FEATURE_NAMES, DatasetError
from so101_bringup.lerobot_datasets.reader import DatasetReader
from so101_bringup.lerobot_datasets.transitions import ImportOptions
from so101_bringup.profiles import PROFILES
from so101_contract.run_dir import LearnerDir
from so101_hilserl_core.messages import observation_from_msg
from so101_hilserl_core.policy import PolicyConfig
from so101_hilserl_interfaces.msg import Transition
from so101_hilserl_learner.journal import TransitionJournal, read_journal

RUN = Path(__file__).parent / "fixtures" / "sim_demos"  # 4 operator demonstrations, make sim's CPU size (64 px)
PROFILE = PROFILES["cpu"]


def messages(learner_dir: Path) -> list[Transition]:
    return [deserialize_message(raw, Transition) for raw in read_journal(LearnerDir(learner_dir).journal)]


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("export") / "sim_demos"
    tally = export_run(RUN, out)
    assert tally["episodes"] == 4
    return out


def test_exported_demonstrations_import_back_as_the_graph_recorded_them(exported, tmp_path):
    options = ImportOptions(policy=PolicyConfig(**PROFILE.network), preprocessing=PROFILE.preprocessing())
    import_dataset(exported, tmp_path / "learner", options)
    direct, back = messages(RUN), messages(tmp_path / "learner")
    assert len(back) == len(direct) == 41
    ends = 0
    for a, b in zip(direct, back, strict=True):
        assert b.step == a.step and b.intervention == a.intervention and not b.evaluation
        assert (b.terminated, b.truncated) == (a.terminated, a.truncated) and b.reward == pytest.approx(a.reward)
        np.testing.assert_allclose(b.action, a.action, atol=1e-6)
        image_a, state_a = observation_from_msg(a.observation, 64)
        image_b, state_b = observation_from_msg(b.observation, 64)
        np.testing.assert_allclose(state_b, state_a, atol=1e-5)  # joints, velocities, TCP pose and orientation
        assert psnr(image_a, image_b) >= 35.0
        if a.terminated or a.truncated:  # LeRobot keeps no observation after the last action: the last frame's
            ends += 1
            np.testing.assert_array_equal(observation_from_msg(b.next_observation[0])[1], state_b)
    assert ends == 4


def test_the_export_is_what_lerobot_reads(exported):
    reader = DatasetReader(exported)
    assert reader.fps == 10 and reader.info["robot_type"] == "so_follower" and len(reader.episodes) == 4
    assert reader.features["observation.state"]["names"] == list(JOINT_FEATURE_NAMES)
    assert reader.features["action"]["names"] == ["delta_x", "delta_y", "delta_z", "gripper"]
    stats = json.loads((exported / "meta/stats.json").read_text())
    assert {"observation.state", "action", "next.reward", "observation.images.wrist"} <= set(stats)
    direct = messages(RUN)
    first = reader.episodes[0]
    values = reader.columns(first, ["observation.state", "action", "next.done", "complementary_info.is_intervention"])
    joints = np.array([observation_from_msg(m.observation)[1][:6] for m in direct[: first.length]])
    np.testing.assert_allclose(np.stack(values["observation.state"]), np.rad2deg(joints), atol=1e-4)  # LeRobot degrees
    gripper = np.stack(values["action"])[:, 3]
    np.testing.assert_allclose(gripper, [m.action[3] + 1.0 for m in direct[: first.length]], atol=1e-6)  # classes 0..2
    assert values["next.done"].tolist() == [False] * (first.length - 1) + [True]
    assert set(values["complementary_info.is_intervention"].tolist()) == {1.0}


def test_a_failing_export_leaves_no_dataset(tmp_path):
    run = tmp_path / "run"
    shutil.copytree(RUN, run)
    records = list(read_journal(LearnerDir(run).journal))
    broken = deserialize_message(records[30], Transition)  # in the third episode
    broken.observation.image.data = bytes(broken.observation.image.data[:100])
    shutil.rmtree(LearnerDir(run).journal)
    journal = TransitionJournal(LearnerDir(run).journal)
    for index, raw in enumerate(records):
        journal.append(serialize_message(broken) if index == 30 else raw)
    journal.close()
    out = tmp_path / "dataset"
    with pytest.raises(DatasetError, match="record 30"):
        export_run(run, out)
    assert not out.exists() and not list(tmp_path.glob(".dataset*"))  # no dataset, no staging left


def test_an_existing_dataset_is_kept_unless_overwrite(exported, tmp_path):
    cmd = [sys.executable, "-m", "so101_bringup.lerobot_datasets.export_run", str(RUN), str(exported)]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "exists already" in result.stderr and "--overwrite" in result.stderr
    assert DatasetReader(exported).info["total_episodes"] == 4
