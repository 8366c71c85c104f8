"""The arm drivers' core (so101_driver.hardware.arm) without ROS, against the servo bus emulator on a pseudo-terminal
(the hardware is replaced at its wire only): command clamping, a limp arm, the shutdown behaviours, the refusals and
the leader's defaults. test_arm_node covers the same logic through the ROS nodes (rates, reconnects, the watchdog).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from test_arm_node import CALIBRATION, calibrate_emulator

from so101_contract import settings
from so101_contract.joints import JOINT_NAMES
from so101_driver.hardware.arm import Arm, ArmConfig, ArmRefused, LeaderConfig
from so101_driver.hardware.calibration import JointConversion, load_calibration
from so101_driver.hardware.feetech.emulator import ServoBusEmulator
from so101_testing.graph import wait_until

TIMEOUT_S = 30.0


class Lines:
    """A logger that keeps its lines: (level, message)."""

    def __init__(self):
        self.lines: list[tuple[str, str]] = []

    def __getattr__(self, level: str):
        return lambda message, **throttle: self.lines.append((level, message))


@pytest.fixture
def rig(tmp_path):
    calibration_file = tmp_path / "follower.json"
    calibration_file.write_text(json.dumps(CALIBRATION, indent=4))
    with ServoBusEmulator(link_path=tmp_path / "so101_follower") as emulator:
        calibrate_emulator(emulator, CALIBRATION)
        yield emulator, calibration_file


@pytest.fixture
def arms():
    """Arms made here are stopped at the end, failed or not; each records its states and log lines."""
    made: list[Arm] = []

    def make(emulator, calibration_file, role: str = "follower", **values) -> Arm:
        config_class = LeaderConfig if role == "leader" else ArmConfig
        given = {"port": emulator.port, "calibration_file": str(calibration_file), "retries": 5, **values}
        config = settings.build(config_class, given)  # retries: the emulator answers late on a loaded machine
        arm = Arm(role, config, lambda q, v, effort: arm.states.append(q), Lines())
        arm.states = []
        made.append(arm)
        arm.open()
        arm.start()
        wait_until(lambda: len(arm.states) >= 5, TIMEOUT_S, "joint states")
        return arm

    yield make
    for arm in made:
        arm.stop()


def goal_radians(emulator, conversion: JointConversion, index: int = -1) -> np.ndarray:
    goals = emulator.goal_writes[index][1]
    return conversion.ticks_to_radians(np.array([goals[motor_id] for motor_id in range(1, 7)]))


def test_a_command_is_clamped_to_max_joint_step_from_the_measured_position(rig, arms):
    emulator, calibration_file = rig
    conversion = JointConversion(load_calibration(calibration_file))
    arm = arms(emulator, calibration_file, max_joint_step=0.1, on_shutdown="limp")
    measured = arm.states[-1]
    writes = len(emulator.goal_writes)
    arm.command(JOINT_NAMES, measured + 1.0)
    wait_until(lambda: len(emulator.goal_writes) > writes, TIMEOUT_S, "the command's goal write")
    goal = goal_radians(emulator, conversion, writes)
    step = goal - measured
    report = f"goal {goal}, measured {measured}, now {arm.states[-1]}, log {arm.log.lines}"
    assert np.all(np.abs(step) <= 0.1 + 0.02), report  # 0.02 rad: servo ticks and the arm's drift meanwhile
    assert np.all(step > 0.05), report  # moved toward the command, as far as allowed
    assert arm.guard.clamped == 1


def test_a_limp_arm_takes_commands_but_writes_no_goal(rig, arms):
    emulator, calibration_file = rig
    arm = arms(emulator, calibration_file, role="leader")  # the leader starts limp
    assert emulator.register(1, "Torque_Enable") == 0
    writes = len(emulator.goal_writes)
    arm.command(["shoulder_pan"], [arm.states[-1][0] + 0.05])
    read = len(arm.states)  # the bus is in order: a read answered after the command means the servos have it
    wait_until(lambda: len(arm.states) > read + 2, TIMEOUT_S, "reads after the command")
    assert arm.guard.accepted == 1 and len(emulator.goal_writes) == writes
    assert arm.set_torque(True) == (True, "leader torque on")
    assert emulator.register(1, "Torque_Enable") == 1


@pytest.mark.parametrize("mode, torque_after", [("limp", 0), ("hold", 1), ("rest", 0)])
def test_shutdown_does_what_on_shutdown_says(rig, arms, mode, torque_after):
    emulator, calibration_file = rig
    conversion = JointConversion(load_calibration(calibration_file))
    rest = np.array([0.2, -0.5, 0.5, 0.3, 0.0, 0.2])
    arm = arms(emulator, calibration_file, on_shutdown=mode, rest_pose=tuple(rest), rest_duration_s=0.2)
    writes = len(emulator.goal_writes)
    arm.stop()
    assert [emulator.register(i, "Torque_Enable") for i in range(1, 7)] == [torque_after] * 6
    if mode == "rest":
        assert len(emulator.goal_writes) - writes >= 10  # a motion over rest_duration_s, not one jump
        np.testing.assert_allclose(goal_radians(emulator, conversion), rest, atol=0.01)
    else:
        assert len(emulator.goal_writes) == writes


def test_refusals_name_the_fix(rig, tmp_path):
    emulator, calibration_file = rig
    with pytest.raises(ArmRefused, match="port is empty"):
        Arm("follower", ArmConfig(calibration_file=str(calibration_file)), print, Lines())
    with pytest.raises(ArmRefused, match="rest_pose needs 6 values"):
        Arm("follower", ArmConfig(port=emulator.port, rest_pose=(0.0, 1.0)), print, Lines())
    other = json.loads(calibration_file.read_text())
    other["elbow_flex"]["homing_offset"] += 100
    (tmp_path / "other.json").write_text(json.dumps(other))
    arm = Arm("follower", ArmConfig(port=emulator.port, calibration_file=str(tmp_path / "other.json")), print, Lines())
    with pytest.raises(ArmRefused, match=r"elbow_flex \(id 3\) homing_offset.*--write-only"):
        arm.open()


def test_the_leader_differs_from_the_follower_in_torque_gains_and_shutdown_only():
    follower, leader = settings.defaults(ArmConfig), settings.defaults(LeaderConfig)
    differ = {name for name in follower if follower[name] != leader[name]}
    assert differ == {"torque_on_start", "pid", "on_shutdown"}
    assert (leader["torque_on_start"], leader["on_shutdown"]) == (False, "limp")
    assert (follower["torque_on_start"], follower["on_shutdown"]) == (True, "rest")
