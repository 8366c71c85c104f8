"""Datasets written by LeRobot itself (fixtures/lerobot: LeRobot 0.6.1's SO-101 recording path, both unit conventions)
import with the joint angles LeRobot's unit formulas give for the recorded servo ticks, to 1e-4 rad, and the same
tool poses to 1 mm; without the lerobot package."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from rclpy.serialization import deserialize_message

from so101_bringup.lerobot_datasets.import_dataset import import_dataset
from so101_bringup.lerobot_datasets.reader import DatasetReader
from so101_bringup.lerobot_datasets.transitions import ImportOptions
from so101_contract.joints import GRIPPER, JOINT_NAMES
from so101_contract.run_dir import LearnerDir
from so101_driver.hardware.calibration import JointConversion
from so101_driver.model.kinematics import Kinematics
from so101_hilserl_core.messages import observation_from_msg
from so101_hilserl_interfaces.msg import Transition
from so101_hilserl_learner.journal import read_journal

FIXTURES = Path(__file__).parent / "fixtures" / "lerobot"
TRUTH = np.load(FIXTURES / "truth.npz")
CALIBRATION = FIXTURES / "calibration_follower.json"


def lerobot_formula_radians(ticks: np.ndarray) -> np.ndarray:
    """The angle each recorded tick stands for under LeRobot's conventions, written out from the calibration file:
    body (ticks - (min + max) / 2) * 360 / 4095 degrees, gripper (ticks - min) / (max - min) * 100 'degrees'."""
    calibration = json.loads(CALIBRATION.read_text())
    low = np.array([calibration[name]["range_min"] for name in JOINT_NAMES], dtype=float)
    high = np.array([calibration[name]["range_max"] for name in JOINT_NAMES], dtype=float)
    degrees = (ticks - (low + high) / 2) * 360 / 4095
    degrees[:, GRIPPER] = (
        (np.clip(ticks[:, GRIPPER], low[GRIPPER], high[GRIPPER]) - low[GRIPPER]) / (high[GRIPPER] - low[GRIPPER]) * 100
    )
    return np.deg2rad(degrees)


@pytest.mark.parametrize(
    ("folder", "options"),
    [
        ("so101_degrees", ImportOptions(units="degrees")),
        ("so101_range_m100", ImportOptions(units="range_m100", calibration=JointConversion.from_file(CALIBRATION))),
    ],
)
def test_lerobot_written_recordings_import_at_the_angles_of_their_ticks(folder, options, tmp_path):
    dataset = FIXTURES / folder
    assert DatasetReader(dataset).info["robot_type"] == "so_follower"
    _, result = import_dataset(dataset, tmp_path / "learner", options)
    messages = [deserialize_message(r, Transition) for r in read_journal(LearnerDir(tmp_path / "learner").journal)]
    expected = lerobot_formula_radians(TRUTH["ticks"].astype(float))
    starts = np.concatenate([[0], np.cumsum(TRUTH["lengths"])[:-1]])
    kinematics = Kinematics()
    compared = 0
    for episode, (start, length) in enumerate(zip(starts, TRUTH["lengths"], strict=True)):
        frames = start + np.arange(0, length, 3)  # the 10 Hz control steps of a 30 fps recording
        steps = [m for m in messages if m.episode_id == episode]
        assert len(steps) == len(frames) - 1 and steps[-1].terminated
        states = [observation_from_msg(m.observation)[1] for m in steps]
        states.append(observation_from_msg(steps[-1].next_observation[0])[1])
        for frame, state in zip(frames, states, strict=True):
            np.testing.assert_allclose(state[:6], expected[frame], atol=1e-4)
            tool, _ = kinematics.fk(expected[frame])
            assert np.linalg.norm(state[12:15] - tool) < 1e-3
            # and the simulated arm's true pose, to within the servo's resolution (half a tick: 0.8 mrad)
            np.testing.assert_allclose(state[:6], TRUTH["radians"][frame], atol=2e-3)
            compared += 1
    assert compared == sum(len(range(0, n, 3)) for n in TRUTH["lengths"]) and result.demo_size == len(messages)
