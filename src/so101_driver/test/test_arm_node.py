"""The real follower and leader nodes against the servo bus emulator on a pseudo-terminal (the hardware is replaced
at its wire only): state rate, safety under corrupted replies, recovery from a disconnect, the command watchdog,
the leader's limp and tracking modes, and the refusals at start-up.

The emulator runs in this process (a thread serving the pty); the node is a real process over real DDS.
"""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from sensor_msgs.msg import JointState
from std_srvs.srv import SetBool

from so101_contract import qos
from so101_contract.joints import JOINT_NAMES
from so101_driver.hardware.calibration import JointConversion, load_calibration
from so101_driver.hardware.feetech.emulator import ServoBusEmulator
from so101_driver.model.kinematics import Kinematics
from so101_testing.graph import wait_until

STARTUP_S = 60.0
# A real follower's calibration (reference: ros2-so101-ecosystem.md 3.2), written into the emulated servos.
CALIBRATION = {
    "shoulder_pan": {"id": 1, "drive_mode": 0, "homing_offset": 1946, "range_min": 774, "range_max": 3482},
    "shoulder_lift": {"id": 2, "drive_mode": 0, "homing_offset": 268, "range_min": 889, "range_max": 3239},
    "elbow_flex": {"id": 3, "drive_mode": 0, "homing_offset": 336, "range_min": 913, "range_max": 3125},
    "wrist_flex": {"id": 4, "drive_mode": 0, "homing_offset": 986, "range_min": 846, "range_max": 3175},
    "wrist_roll": {"id": 5, "drive_mode": 0, "homing_offset": 1195, "range_min": 114, "range_max": 3971},
    "gripper": {"id": 6, "drive_mode": 0, "homing_offset": -209, "range_min": 1515, "range_max": 3009},
}


def calibrate_emulator(emulator: ServoBusEmulator, calibration: dict) -> None:
    for motor in calibration.values():
        emulator.set_register(motor["id"], "Homing_Offset", motor["homing_offset"])
        emulator.set_register(motor["id"], "Min_Position_Limit", motor["range_min"])
        emulator.set_register(motor["id"], "Max_Position_Limit", motor["range_max"])
        mid = (motor["range_min"] + motor["range_max"]) // 2
        emulator.set_external_position(motor["id"], mid)


@pytest.fixture
def rig(tmp_path):
    """An emulated six-servo bus behind a stable link name, calibrated like a real follower, and its file."""
    calibration_file = tmp_path / "follower.json"
    calibration_file.write_text(json.dumps(CALIBRATION, indent=4))
    with ServoBusEmulator(link_path=tmp_path / "so101_follower") as emulator:
        calibrate_emulator(emulator, CALIBRATION)
        yield emulator, calibration_file


def start_arm(processes, role: str, emulator, calibration_file, *params: str):
    args = ["-p", f"port:={emulator.port}", "-p", f"calibration_file:={calibration_file}"]
    for param in params:
        args += ["-p", param]
    return processes.start_module(f"so101_driver.hardware.{role}_node", "--ros-args", *args, name=role)


def positions(msg: JointState) -> np.ndarray:
    index = {name: i for i, name in enumerate(msg.name)}
    return np.array([msg.position[index[name]] for name in JOINT_NAMES])


def command(names, values) -> JointState:
    return JointState(name=list(names), position=[float(v) for v in values])


def goal_ticks_within_limits(emulator, conversion: JointConversion) -> None:
    kinematics = Kinematics()
    low = conversion.radians_to_ticks(kinematics.lower)
    high = conversion.radians_to_ticks(kinematics.upper)
    lo, hi = np.minimum(low, high), np.maximum(low, high)
    for _, goals in emulator.goal_writes:
        for motor_id, ticks in goals.items():
            joint = motor_id - 1
            assert lo[joint] - 1 <= ticks <= hi[joint] + 1, (JOINT_NAMES[joint], ticks, lo[joint], hi[joint])


def test_follower_rate_safety_and_error_rate_with_corrupted_replies(rig, processes, probe):
    emulator, calibration_file = rig
    conversion = JointConversion(load_calibration(calibration_file))
    emulator.corrupt_probability = 0.05
    node = start_arm(processes, "follower", emulator, calibration_file, "state_rate_hz:=125.0", "on_shutdown:=limp")
    states = probe.subscribe(JointState, "follower/joint_states", qos.SENSOR_DATA)
    diagnostics = probe.subscribe(DiagnosticArray, "/diagnostics", 10)
    states.wait_for(50, STARTUP_S, "follower states")
    count, start = len(states), time.monotonic()
    time.sleep(3.0)
    rate = (len(states) - count) / (time.monotonic() - start)
    assert rate >= 100.0, f"{rate:.1f} Hz with 5 % corrupted replies"
    assert len(states.messages[-1].name) == 6

    # Commands far outside the limits and a degrees-for-radians mistake: clamped, never sent out of range.
    publisher = probe.publisher(JointState, "follower/joint_commands", qos.COMMAND)
    probe.wait_for_subscribers(publisher, timeout_s=STARTUP_S)
    for value in (5.0, -5.0, 90.0, 1.0):
        for _ in range(10):
            publisher.publish(command(JOINT_NAMES, [value] * 6))
            time.sleep(0.02)
    wait_until(lambda: len(emulator.goal_writes) > 20, 10.0, "goal writes")
    goal_ticks_within_limits(emulator, conversion)
    assert node.alive()

    def reported_error_rate() -> float | None:
        for array in reversed(diagnostics.messages):
            for status in array.status:
                if status.name == "so101 follower bus":
                    return float({kv.key: kv.value for kv in status.values}["error_rate"])
        return None

    wait_until(lambda: (reported_error_rate() or 0) > 0.005, 10.0, "a non-zero error rate in the diagnostics")
    assert reported_error_rate() < 0.4  # per packet 5 %: ~26 % of six-servo reads need a retry


def test_follower_recovers_from_a_disconnect_within_two_seconds(rig, processes, probe):
    emulator, calibration_file = rig
    start_arm(processes, "follower", emulator, calibration_file, "on_shutdown:=limp")
    states = probe.subscribe(JointState, "follower/joint_states", qos.SENSOR_DATA)
    states.wait_for(20, STARTUP_S, "follower states")
    emulator.disconnect()
    time.sleep(0.5)
    silent_from = len(states)
    time.sleep(0.3)
    assert len(states) - silent_from <= 1, "states kept coming from a disconnected bus"
    emulator.reconnect()
    back = time.monotonic()
    wait_until(lambda: len(states) > silent_from + 10, 2.0, "states again within 2 s of the reconnect")
    assert time.monotonic() - back < 2.0


def test_follower_holds_when_commands_stop(rig, processes, probe):
    emulator, calibration_file = rig
    start_arm(processes, "follower", emulator, calibration_file, "command_timeout_s:=0.3", "on_shutdown:=limp")
    states = probe.subscribe(JointState, "follower/joint_states", qos.SENSOR_DATA)
    states.wait_for(20, STARTUP_S, "follower states")
    publisher = probe.publisher(JointState, "follower/joint_commands", qos.COMMAND)
    probe.wait_for_subscribers(publisher, timeout_s=STARTUP_S)
    start = positions(states.messages[-1])
    # A stream of commands walking shoulder_pan; then silence: the arm must stop where it is, not at the last goal.
    for i in range(1, 6):
        publisher.publish(command(["shoulder_pan"], [start[0] + 0.25 * i]))
        time.sleep(0.1)
    time.sleep(0.6)
    wait_until(lambda: abs(states.messages[-1].velocity[0]) < 1e-3, 5.0, "the arm at rest")
    held = positions(states.messages[-1])
    time.sleep(0.5)
    np.testing.assert_allclose(positions(states.messages[-1]), held, atol=0.01)
    last_goal = emulator.goal_writes[-1][1][1]
    present = emulator.register(1, "Present_Position")
    assert abs(last_goal - present) <= 30, "the last goal written is the hold position"


def test_leader_is_limp_by_default_and_tracks_with_torque_on(rig, processes, probe):
    emulator, calibration_file = rig
    start_arm(processes, "leader", emulator, calibration_file)
    states = probe.subscribe(JointState, "leader/joint_states", qos.SENSOR_DATA)
    states.wait_for(20, STARTUP_S, "leader states")
    assert emulator.register(1, "Torque_Enable") == 0
    before = positions(states.messages[-1])[0]
    emulator.set_external_position(1, emulator.register(1, "Present_Position") + 300)  # a hand turns the base
    wait_until(lambda: positions(states.messages[-1])[0] > before + 0.3, 5.0, "the hand's motion in the states")

    response = probe.call(SetBool, "leader/enable_torque", SetBool.Request(data=True))
    assert response.success, response.message
    assert emulator.register(1, "Torque_Enable") == 1
    publisher = probe.publisher(JointState, "leader/joint_commands", qos.COMMAND)
    probe.wait_for_subscribers(publisher, timeout_s=STARTUP_S)
    goal = positions(states.messages[-1])[0] - 0.2
    for _ in range(30):
        publisher.publish(command(["shoulder_pan"], [goal]))
        time.sleep(0.05)
    wait_until(lambda: abs(positions(states.messages[-1])[0] - goal) < 0.02, 5.0, "the leader at the commanded pose")
    assert probe.call(SetBool, "leader/enable_torque", SetBool.Request(data=False)).success
    assert emulator.register(1, "Torque_Enable") == 0


def test_refuses_a_calibration_the_servos_do_not_hold_and_a_missing_port(rig, processes, tmp_path):
    emulator, calibration_file = rig
    other = json.loads(calibration_file.read_text())
    other["elbow_flex"]["homing_offset"] += 100
    (tmp_path / "other.json").write_text(json.dumps(other))
    node = start_arm(processes, "follower", emulator, tmp_path / "other.json")
    wait_until(lambda: not node.alive(), STARTUP_S, "the node to refuse")
    assert node.popen.returncode == 2
    assert "elbow_flex (id 3) homing_offset" in node.output() and "--write-only" in node.output()

    missing = processes.start_module(
        "so101_driver.hardware.follower_node", "--ros-args", "-p", "port:=/dev/serial/by-id/nothing-here",
        "-p", f"calibration_file:={calibration_file}", name="missing",
    )  # fmt: skip
    wait_until(lambda: not missing.alive(), STARTUP_S, "the node to refuse")
    assert missing.popen.returncode == 2 and "nothing-here" in missing.output()


def test_rest_service_moves_slowly_to_the_rest_pose(rig, processes, probe):
    from std_srvs.srv import Trigger

    emulator, calibration_file = rig
    rest = [0.2, -0.5, 0.5, 0.3, 0.0, 0.2]
    start_arm(processes, "follower", emulator, calibration_file, "rest_duration_s:=1.5", "on_shutdown:=limp",
              f"rest_pose:={rest}")  # fmt: skip
    states = probe.subscribe(JointState, "follower/joint_states", qos.SENSOR_DATA)
    states.wait_for(20, STARTUP_S, "follower states")
    response = probe.call(Trigger, "follower/rest", Trigger.Request())
    assert response.success, response.message
    halfway = time.monotonic() + 0.6
    wait_until(lambda: time.monotonic() > halfway, 2.0, "half the motion")
    assert not np.allclose(positions(states.messages[-1]), rest, atol=0.02)  # interpolated, not one jump
    wait_until(lambda: np.allclose(positions(states.messages[-1]), rest, atol=0.02), 6.0, "the rest pose")
