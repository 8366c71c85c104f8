"""Calibration files and the ticks <-> LeRobot values <-> URDF radians conversion, checked against LeRobot's formulas
(written out here, independently of the module) and the worked examples of the reference (ecosystem report §3.4)."""

import json
import math
import os
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from so101_contract.joints import JOINT_NAMES
from so101_driver.hardware.calibration import (
    MIN_RANGE_DEGREES,
    MIN_RANGE_TICKS,
    CalibrationError,
    JointConversion,
    MotorCalibration,
    NarrowRangeWarning,
    check_ranges,
    find_lerobot_calibration,
    lerobot_calibration_root,
    load_calibration,
    narrow_ranges,
    save_calibration,
)
from so101_driver.model.kinematics import Kinematics

# A real follower file (nimiCurtis/so101_ros2 config/calibration/Tzili.json, as quoted by the reference), written the
# way draccus writes it: indent 4.
TZILI_FOLLOWER = """{
    "shoulder_pan": {"id": 1, "drive_mode": 0, "homing_offset": 1946, "range_min": 774, "range_max": 3482},
    "shoulder_lift": {"id": 2, "drive_mode": 0, "homing_offset": 268, "range_min": 889, "range_max": 3239},
    "elbow_flex": {"id": 3, "drive_mode": 0, "homing_offset": 336, "range_min": 913, "range_max": 3125},
    "wrist_flex": {"id": 4, "drive_mode": 0, "homing_offset": 986, "range_min": 846, "range_max": 3175},
    "wrist_roll": {"id": 5, "drive_mode": 0, "homing_offset": 1195, "range_min": 114, "range_max": 3971},
    "gripper": {"id": 6, "drive_mode": 0, "homing_offset": -209, "range_min": 1515, "range_max": 3009}
}"""

# A leader calibrated by LeRobot >= v0.4.3 (wrist_roll forced to 0..4095), indented like draccus writes it.
LEADER_V043 = {
    "shoulder_pan": {"id": 1, "drive_mode": 0, "homing_offset": -1023, "range_min": 702, "range_max": 3397},
    "shoulder_lift": {"id": 2, "drive_mode": 0, "homing_offset": 1100, "range_min": 810, "range_max": 3190},
    "elbow_flex": {"id": 3, "drive_mode": 0, "homing_offset": -40, "range_min": 870, "range_max": 3090},
    "wrist_flex": {"id": 4, "drive_mode": 0, "homing_offset": 512, "range_min": 901, "range_max": 3220},
    "wrist_roll": {"id": 5, "drive_mode": 0, "homing_offset": 2047, "range_min": 0, "range_max": 4095},
    "gripper": {"id": 6, "drive_mode": 0, "homing_offset": -2047, "range_min": 2001, "range_max": 3405},
}
MAX_RES = 4095  # LeRobot: model resolution 4096 - 1


def tzili(tmp_path: Path) -> Path:
    path = tmp_path / "Tzili.json"
    path.write_text(TZILI_FOLLOWER)
    return path


def with_motor(calibration: dict, name: str, **changes) -> dict:
    out = dict(calibration)
    out[name] = replace(out[name], **changes)
    return out


def ticks_vector(**by_name) -> np.ndarray:
    """Six ticks, 2048 unless named."""
    return np.array([by_name.get(name, 2048) for name in JOINT_NAMES])


# --- LeRobot's formulas, written here independently of the module ----------------------------------------------------


def lerobot_degrees(ticks, low, high):
    return (ticks - (low + high) / 2) * 360 / MAX_RES


def lerobot_m100(ticks, low, high, drive_mode=0):
    norm = ((min(high, max(low, ticks)) - low) / (high - low)) * 200 - 100
    return -norm if drive_mode else norm


def lerobot_0_100(ticks, low, high, drive_mode=0):
    norm = (min(high, max(low, ticks)) - low) / (high - low) * 100
    return 100 - norm if drive_mode else norm


# --- the reference's worked examples ----------------------------------------------------------------------------------


def test_worked_examples_of_the_reference(tmp_path):
    calibration = load_calibration(tzili(tmp_path))
    conv = JointConversion(calibration)
    pan = calibration["shoulder_pan"]
    mid = (pan.range_min + pan.range_max) / 2
    assert mid == 2128

    values = conv.ticks_to_lerobot(ticks_vector(shoulder_pan=2500))
    expected_deg = (2500 - mid) * 360 / MAX_RES
    assert values["shoulder_pan.pos"] == expected_deg
    assert values["shoulder_pan.pos"] == pytest.approx(32.703, abs=5e-4)  # the reference's rounded figure
    radians = conv.ticks_to_radians(ticks_vector(shoulder_pan=2500))
    assert radians[0] == pytest.approx(math.radians(expected_deg), abs=1e-15)
    assert radians[0] == pytest.approx(0.5708, abs=5e-5)

    m100 = conv.ticks_to_lerobot(ticks_vector(shoulder_pan=2500), use_degrees=False)["shoulder_pan.pos"]
    assert m100 == ((2500 - pan.range_min) / (pan.range_max - pan.range_min)) * 200 - 100
    assert m100 == pytest.approx(27.47, abs=5e-3)

    goal = conv.lerobot_to_ticks({f"{n}.pos": 0.0 for n in JOINT_NAMES} | {"shoulder_pan.pos": 32.7})
    assert goal[0] == math.floor(32.7 * MAX_RES / 360 + mid) == 2499  # truncation, not rounding (2499.6 -> 2499)

    homing_pose = conv.ticks_to_lerobot(ticks_vector(shoulder_pan=2047))["shoulder_pan.pos"]
    assert homing_pose == pytest.approx((2047 - mid) * 360 / MAX_RES) == pytest.approx(-7.12, abs=5e-3)

    grip = calibration["gripper"]
    gripper_value = conv.ticks_to_lerobot(ticks_vector(gripper=2262))["gripper.pos"]
    assert gripper_value == (2262 - grip.range_min) / (grip.range_max - grip.range_min) * 100 == 50.0
    assert conv.ticks_to_radians(ticks_vector(gripper=2262))[5] == pytest.approx(math.radians(50.0))

    roll = JointConversion(with_motor(calibration, "wrist_roll", range_min=0, range_max=4095))
    assert roll.ticks_to_lerobot(ticks_vector(wrist_roll=0))["wrist_roll.pos"] == -180.0
    assert roll.ticks_to_lerobot(ticks_vector(wrist_roll=4095))["wrist_roll.pos"] == 180.0
    assert roll.ticks_to_radians(ticks_vector(wrist_roll=4095))[4] == pytest.approx(math.pi)


def test_lerobot_values_follow_the_formulas_for_every_tick_and_both_drive_modes(tmp_path):
    base = load_calibration(tzili(tmp_path))
    for drive in (0, 1):
        calibration = {name: replace(m, drive_mode=drive) for name, m in base.items()}
        conv = JointConversion(calibration)
        for k in range(0, 4096, 7):
            ticks = np.full(6, k)
            degrees = conv.ticks_to_lerobot(ticks)
            m100 = conv.ticks_to_lerobot(ticks, use_degrees=False)
            for name in JOINT_NAMES[:5]:
                low, high = calibration[name].range_min, calibration[name].range_max
                # DEGREES: no clamping and drive_mode ignored (reference §3.4)
                assert degrees[f"{name}.pos"] == lerobot_degrees(k, low, high)
                assert m100[f"{name}.pos"] == lerobot_m100(k, low, high, drive)
            low, high = calibration["gripper"].range_min, calibration["gripper"].range_max
            assert degrees["gripper.pos"] == m100["gripper.pos"] == lerobot_0_100(k, low, high, drive)


def test_inverse_truncates_clamps_and_honours_drive_mode(tmp_path):
    base = load_calibration(tzili(tmp_path))
    conv0 = JointConversion(base)
    conv1 = JointConversion({name: replace(m, drive_mode=1) for name, m in base.items()})
    pan, grip = base["shoulder_pan"], base["gripper"]
    span, gspan = pan.range_max - pan.range_min, grip.range_max - grip.range_min
    values = {f"{n}.pos": 0.0 for n in JOINT_NAMES}

    ticks = conv0.lerobot_to_ticks(values | {"shoulder_pan.pos": 27.47, "gripper.pos": 33.3}, use_degrees=False)
    assert ticks[0] == math.floor((27.47 + 100) / 200 * span + pan.range_min)
    assert ticks[5] == math.floor(33.3 / 100 * gspan + grip.range_min)
    # drive_mode 1: RANGE_M100_100 negates, RANGE_0_100 takes 100 - v, DEGREES ignores drive_mode
    ticks = conv1.lerobot_to_ticks(values | {"shoulder_pan.pos": 27.47, "gripper.pos": 33.3}, use_degrees=False)
    assert ticks[0] == math.floor((-27.47 + 100) / 200 * span + pan.range_min)
    assert ticks[5] == math.floor((100 - 33.3) / 100 * gspan + grip.range_min)
    assert conv1.lerobot_to_ticks(values | {"shoulder_pan.pos": 32.7})[0] == 2499
    # clamping of the range modes, none for DEGREES
    ticks = conv0.lerobot_to_ticks(values | {"shoulder_pan.pos": 250.0, "gripper.pos": -20.0}, use_degrees=False)
    assert ticks[0] == pan.range_max and ticks[5] == grip.range_min
    assert conv0.lerobot_to_ticks(values | {"shoulder_pan.pos": 150.0})[0] == math.floor(150 * MAX_RES / 360 + 2128)
    assert conv0.lerobot_to_ticks(values | {"shoulder_pan.pos": 150.0})[0] > pan.range_max
    with pytest.raises(ValueError, match=r"wrist_roll\.pos"):
        conv0.lerobot_to_ticks({k: v for k, v in values.items() if k != "wrist_roll.pos"})


def test_lerobot_values_round_trip_through_ticks(tmp_path):
    conv = JointConversion(load_calibration(tzili(tmp_path)))
    rng = np.random.default_rng(3)
    one_tick_deg = 360 / MAX_RES
    for use_degrees in (True, False):
        for _ in range(300):
            ticks = np.array([rng.integers(c.range_min, c.range_max + 1) for c in conv.calibration.values()])
            values = conv.ticks_to_lerobot(ticks, use_degrees)
            back = conv.lerobot_to_ticks(values, use_degrees)
            assert np.all(np.abs(back - ticks) <= 1)  # LeRobot's truncation may lose the last tick
            again = conv.ticks_to_lerobot(back, use_degrees)
            for i, name in enumerate(JOINT_NAMES):
                c = conv.calibration[name]
                unit = one_tick_deg if use_degrees and i < 5 else (200 if i < 5 else 100) / (c.range_max - c.range_min)
                assert abs(again[f"{name}.pos"] - values[f"{name}.pos"]) <= unit + 1e-9


# --- URDF radians ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("variant", ["tzili", "leader_v043", "drive_mode_1"])
def test_ticks_radians_ticks_is_exact_over_every_joints_whole_range(tmp_path, variant):
    calibration = load_calibration(tzili(tmp_path))
    if variant == "leader_v043":
        calibration = {n: MotorCalibration(**v) for n, v in LEADER_V043.items()}
    elif variant == "drive_mode_1":
        calibration = {name: replace(m, drive_mode=1) for name, m in calibration.items()}
    conv = JointConversion(calibration)
    low = np.array([calibration[n].range_min for n in JOINT_NAMES])
    high = np.array([calibration[n].range_max for n in JOINT_NAMES])
    for k in range(4096):
        ticks = np.minimum(low + k, high)
        radians = conv.ticks_to_radians(ticks)
        np.testing.assert_array_equal(conv.radians_to_ticks(radians), ticks)
    # body joints: rad = deg2rad(LeRobot degrees); gripper: rad = deg2rad(LeRobot 0..100)
    ticks = (low + high) // 2 + 100
    radians = conv.ticks_to_radians(ticks)
    for i in range(5):
        assert radians[i] == pytest.approx(math.radians(lerobot_degrees(ticks[i], low[i], high[i])), abs=1e-14)
    drive = calibration["gripper"].drive_mode
    assert radians[5] == pytest.approx(math.radians(lerobot_0_100(ticks[5], low[5], high[5], drive)), abs=1e-14)


def test_gripper_spans_the_urdf_jaw_and_body_zero_is_mid_range(tmp_path):
    calibration = load_calibration(tzili(tmp_path))
    conv = JointConversion(calibration)
    low = np.array([calibration[n].range_min for n in JOINT_NAMES])
    high = np.array([calibration[n].range_max for n in JOINT_NAMES])
    urdf_gripper_upper = Kinematics().upper[5]
    assert conv.ticks_to_radians(high)[5] == pytest.approx(urdf_gripper_upper, abs=1e-5)  # 100 -> 100 deg
    assert conv.ticks_to_radians(low)[5] == 0.0
    # out of range gripper ticks clamp like LeRobot's RANGE_0_100
    assert conv.ticks_to_radians(high + 50)[5] == pytest.approx(urdf_gripper_upper, abs=1e-5)
    np.testing.assert_allclose(conv.ticks_to_radians((low + high) / 2)[:5], 0.0, atol=1e-15)
    # radians_to_ticks clamps to the calibrated range, also for the URDF's -10 deg gripper lower limit
    np.testing.assert_array_equal(conv.radians_to_ticks(np.full(6, 10.0)), high)
    np.testing.assert_array_equal(conv.radians_to_ticks(np.full(6, -10.0)), low)
    assert conv.radians_to_ticks(Kinematics().lower)[5] == low[5]
    lower, upper = conv.radian_limits()
    np.testing.assert_allclose(lower[:5], (low[:5] - (low[:5] + high[:5]) / 2) * 2 * np.pi / MAX_RES)
    np.testing.assert_allclose(upper[:5], (high[:5] - (low[:5] + high[:5]) / 2) * 2 * np.pi / MAX_RES)
    assert (lower[5], upper[5]) == (0.0, pytest.approx(math.radians(100)))
    flipped = JointConversion(with_motor(calibration, "gripper", drive_mode=1))
    assert flipped.ticks_to_radians(low)[5] == pytest.approx(math.radians(100))
    assert flipped.radian_limits()[1][5] == pytest.approx(math.radians(100))


def test_radians_to_ticks_rounds_to_the_nearest_tick(tmp_path):
    conv = JointConversion(load_calibration(tzili(tmp_path)))
    step = 2 * math.pi / MAX_RES
    radians = conv.ticks_to_radians(ticks_vector(shoulder_pan=2500))
    np.testing.assert_array_equal(conv.radians_to_ticks(radians + 0.4 * step)[:5], ticks_vector(shoulder_pan=2500)[:5])
    np.testing.assert_array_equal(
        conv.radians_to_ticks(radians + 0.6 * step)[:5], ticks_vector(shoulder_pan=2501)[:5] + np.array([0, 1, 1, 1, 1])
    )
    with pytest.raises(ValueError, match="shape"):
        conv.radians_to_ticks(np.zeros(5))
    with pytest.raises(ValueError, match="elbow_flex"):
        conv.radians_to_ticks([0, 0, float("nan"), 0, 0, 0])


def test_velocities_use_the_position_scale(tmp_path):
    for drive in (0, 1):
        calibration = with_motor(load_calibration(tzili(tmp_path)), "gripper", drive_mode=drive)
        conv = JointConversion(calibration)
        ticks = ticks_vector(gripper=2200)
        velocity = np.array([100, -250, 3000, -7, 0, 40])
        dt = 0.01
        finite_difference = (conv.ticks_to_radians(ticks + velocity * dt) - conv.ticks_to_radians(ticks)) / dt
        np.testing.assert_allclose(conv.velocity_ticks_to_rad_s(velocity), finite_difference, rtol=1e-9, atol=1e-9)


# --- files -----------------------------------------------------------------------------------------------------------


def test_load_real_follower_file(tmp_path):
    calibration = load_calibration(tzili(tmp_path))
    assert list(calibration) == list(JOINT_NAMES)
    assert calibration["gripper"] == MotorCalibration(id=6, drive_mode=0, homing_offset=-209, range_min=1515,
                                                      range_max=3009)  # fmt: skip
    assert [m.id for m in calibration.values()] == [1, 2, 3, 4, 5, 6]


def test_save_writes_lerobots_format_atomically(tmp_path):
    calibration = {n: MotorCalibration(**v) for n, v in LEADER_V043.items()}
    path = tmp_path / "teleoperators" / "so_leader" / "blue.json"
    save_calibration(path, calibration)
    text = path.read_text()
    assert text == json.dumps(LEADER_V043, indent=4)
    assert list(json.loads(text)["gripper"]) == ["id", "drive_mode", "homing_offset", "range_min", "range_max"]
    assert load_calibration(path) == calibration
    # an invalid table never replaces a good file, and no temporary file is left behind
    with pytest.raises(CalibrationError, match="range_min"):
        save_calibration(path, with_motor(calibration, "elbow_flex", range_min=3090))
    assert path.read_text() == text
    assert sorted(p.name for p in path.parent.iterdir()) == ["blue.json"]
    save_calibration(path, with_motor(calibration, "elbow_flex", range_min=100))
    assert load_calibration(path)["elbow_flex"].range_min == 100
    assert sorted(p.name for p in path.parent.iterdir()) == ["blue.json"]


def test_find_resolves_both_directory_generations(tmp_path):
    old = tmp_path / "robots" / "so101_follower" / "arm.json"  # LeRobot <= v0.4.2
    new = tmp_path / "robots" / "so_follower" / "arm.json"  # LeRobot >= v0.4.3
    with pytest.raises(CalibrationError) as missing:
        find_lerobot_calibration("follower", "arm", root=tmp_path)
    assert str(old) in str(missing.value) and str(new) in str(missing.value)
    assert find_lerobot_calibration("follower", "arm", root=tmp_path, must_exist=False) == new

    old.parent.mkdir(parents=True)
    old.write_text(TZILI_FOLLOWER)
    assert find_lerobot_calibration("follower", "arm", root=tmp_path) == old
    assert load_calibration(find_lerobot_calibration("follower", "arm", root=tmp_path))["wrist_roll"].range_min == 114
    new.parent.mkdir(parents=True)
    new.write_text(TZILI_FOLLOWER)
    os.utime(old, ns=(1_000_000_000, 1_000_000_000))
    assert find_lerobot_calibration("follower", "arm", root=tmp_path) == new  # the newest file matches the motors
    os.utime(new, ns=(500_000_000, 500_000_000))
    assert find_lerobot_calibration("follower", "arm", root=tmp_path) == old

    leader_old = tmp_path / "teleoperators" / "so101_leader" / "arm.json"
    leader_old.parent.mkdir(parents=True)
    leader_old.write_text(json.dumps(LEADER_V043, indent=4))
    assert find_lerobot_calibration("leader", "arm", root=tmp_path) == leader_old
    assert find_lerobot_calibration("leader", "other", root=tmp_path, must_exist=False) == (
        tmp_path / "teleoperators" / "so_leader" / "other.json"
    )
    with pytest.raises(ValueError, match="kind"):
        find_lerobot_calibration("wrist", "arm", root=tmp_path)
    with pytest.raises(ValueError, match="plain file name"):
        find_lerobot_calibration("leader", "../arm", root=tmp_path)


def test_calibration_root_honours_the_huggingface_variables(tmp_path, monkeypatch):
    for name in ("HF_LEROBOT_CALIBRATION", "HF_LEROBOT_HOME", "HF_HOME", "XDG_CACHE_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert lerobot_calibration_root() == tmp_path / "home/.cache/huggingface/lerobot/calibration"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert lerobot_calibration_root() == tmp_path / "xdg/huggingface/lerobot/calibration"
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    assert lerobot_calibration_root() == tmp_path / "hf/lerobot/calibration"
    monkeypatch.setenv("HF_LEROBOT_HOME", str(tmp_path / "lr"))
    assert lerobot_calibration_root() == tmp_path / "lr/calibration"
    monkeypatch.setenv("HF_LEROBOT_CALIBRATION", str(tmp_path / "cal"))
    assert lerobot_calibration_root() == tmp_path / "cal"
    target = tmp_path / "cal" / "robots" / "so_follower" / "x.json"
    target.parent.mkdir(parents=True)
    target.write_text(TZILI_FOLLOWER)
    assert find_lerobot_calibration("follower", "x") == target


def test_old_array_format_is_refused_with_the_fix(tmp_path):
    path = tmp_path / "main_follower.json"
    path.write_text(
        json.dumps(
            {
                "homing_offset": [2048, 3072, 3072, -1024, -1024, -2048],
                "drive_mode": [0, 0, 0, 0, 0, 0],
                "start_pos": [2029, 3057, 3061, 1010, 1040, 2048],
                "end_pos": [-1033, -21, -15, 2052, -2029, 3429],
                "calib_mode": ["DEGREE", "DEGREE", "DEGREE", "DEGREE", "DEGREE", "LINEAR"],
                "motor_names": list(JOINT_NAMES),
            }
        )
    )
    with pytest.raises(CalibrationError) as error:
        load_calibration(path)
    message = str(error.value)
    assert str(path) in message and "mid-2025" in message and "calib_mode" in message
    assert "Recalibrate" in message and "so101_driver.hardware.calibrate" in message


def entry_with(name: str, **changes) -> dict:
    data = json.loads(TZILI_FOLLOWER)
    data[name] = data[name] | changes
    return data


@pytest.mark.parametrize(
    ("data", "pattern"),
    [
        ({k: v for k, v in json.loads(TZILI_FOLLOWER).items() if k != "wrist_roll"}, "missing motors wrist_roll"),
        (json.loads(TZILI_FOLLOWER) | {"elbow": json.loads(TZILI_FOLLOWER)["gripper"]}, "unknown motors elbow"),
        (entry_with("elbow_flex", range_min="913"), r"'elbow_flex'.*'range_min' must be an integer"),
        (entry_with("elbow_flex", homing_offset=336.5), r"'elbow_flex'.*'homing_offset' must be an integer"),
        (entry_with("elbow_flex", drive_mode=True), r"'elbow_flex'.*'drive_mode' must be an integer"),
        (entry_with("wrist_flex", range_min=3175), r"'wrist_flex'.*range_min \(3175\) must be below range_max"),
        (entry_with("wrist_flex", range_min=3200), r"'wrist_flex'.*range_min \(3200\) must be below range_max"),
        (entry_with("wrist_roll", homing_offset=2048), r"'wrist_roll'.*'homing_offset' = 2048 has magnitude > 2047"),
        (entry_with("wrist_roll", homing_offset=-2100), r"'wrist_roll'.*magnitude > 2047"),
        (entry_with("gripper", range_max=4096), r"'gripper'.*'range_max' = 4096 is outside 0..4095"),
        (entry_with("gripper", drive_mode=2), r"'gripper'.*'drive_mode' = 2 is outside 0..1"),
        (entry_with("gripper", id=5), r"ids \[1, 2, 3, 4, 5, 5\] are not unique"),
        (entry_with("gripper", offset=3), r"'gripper'.*unknown field\(s\) offset"),
        ({**json.loads(TZILI_FOLLOWER), "gripper": {"id": 6, "drive_mode": 0}}, r"'gripper'.*missing field"),
        ([1, 2, 3], "expected a JSON object"),
    ],
)
def test_bad_files_name_file_motor_and_field(tmp_path, data, pattern):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data, indent=4))
    with pytest.raises(CalibrationError, match=pattern) as error:
        load_calibration(path)
    assert str(path) in str(error.value)


def test_unreadable_files(tmp_path):
    with pytest.raises(CalibrationError, match=r"does not exist.*so101_driver\.hardware\.calibrate"):
        load_calibration(tmp_path / "nope.json")
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(CalibrationError, match=r"broken\.json is not valid JSON"):
        load_calibration(tmp_path / "broken.json")


# --- a joint that was not moved during calibration --------------------------------------------------------------------
def test_a_joint_never_moved_is_named_with_its_range(tmp_path):
    """The published follower file whose shoulder_pan was left still (1996..2047): the loader warns naming it, the
    strict check refuses it; real calibrations (a follower, a LeRobot >= 0.4.3 leader) pass both."""
    path = tmp_path / "still_pan.json"
    path.write_text(json.dumps(entry_with("shoulder_pan", range_min=1996, range_max=2047), indent=4))
    with pytest.warns(NarrowRangeWarning) as caught:
        calibration = load_calibration(path)  # still usable: the drivers compare it with the servos themselves
    assert len(caught) == 1
    message = str(caught[0].message)
    assert str(path) in message and "shoulder_pan spans only 51 ticks (1996..2047, 4.5 deg" in message
    assert "recalibrate" in message and "elbow_flex" not in message
    with pytest.raises(CalibrationError, match=r"shoulder_pan spans only 51 ticks \(1996\.\.2047"):
        check_ranges(calibration, str(path))

    for name, data in (("tzili", json.loads(TZILI_FOLLOWER)), ("leader", LEADER_V043)):
        good = tmp_path / f"{name}.json"
        good.write_text(json.dumps(data, indent=4))
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no warning at all
            check_ranges(load_calibration(good))


@pytest.mark.parametrize("name", JOINT_NAMES)
def test_minimum_span_is_exact_per_joint(name):
    """One tick under a joint's minimum is named (that joint alone), the minimum itself passes."""
    base = {n: MotorCalibration(i + 1, 0, 0, 0, 4095) for i, n in enumerate(JOINT_NAMES)}
    low = 1000
    at_minimum = with_motor(base, name, range_min=low, range_max=low + MIN_RANGE_TICKS[name])
    assert narrow_ranges(at_minimum) == []
    under = with_motor(base, name, range_min=low, range_max=low + MIN_RANGE_TICKS[name] - 1)
    found = narrow_ranges(under)
    assert len(found) == 1 and found[0].startswith(f"{name} spans only {MIN_RANGE_TICKS[name] - 1} ticks")


def test_minimum_spans_are_a_tenth_of_the_urdf_travel():
    """The thresholds follow the robot model: a tenth of each joint's URDF travel, within a degree."""
    kinematics = Kinematics()
    travel = np.rad2deg(kinematics.upper - kinematics.lower)
    for i, name in enumerate(JOINT_NAMES):
        assert abs(MIN_RANGE_DEGREES[name] - travel[i] / 10) < 1.0, (name, travel[i])
        assert MIN_RANGE_TICKS[name] == math.ceil(MIN_RANGE_DEGREES[name] * MAX_RES / 360)
