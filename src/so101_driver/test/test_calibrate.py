"""The calibration CLI end to end against the servo bus emulator: a scripted "human" answers the prompts and moves
the joints (ServoBusEmulator.set_external_position), and the test checks the saved JSON and the servos' EEPROM."""

import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from so101_contract.joints import JOINT_NAMES
from so101_driver.hardware.calibrate import main
from so101_driver.hardware.calibration import JointConversion, load_calibration
from so101_driver.hardware.feetech.bus import FeetechBus
from so101_driver.hardware.feetech.emulator import ServoBusEmulator

IDS = {name: i + 1 for i, name in enumerate(JOINT_NAMES)}
HALF_TURN = 2047
# The arm as the servo horns see it, in ticks with Homing_Offset 0 ("actual" positions): where the person holds
# each joint for "the middle", and the ends of its travel.
MIDDLE = {"shoulder_pan": 2300, "shoulder_lift": 1800, "elbow_flex": 2100, "wrist_flex": 2600, "wrist_roll": 1500,
          "gripper": 2900}  # fmt: skip
LOW = {"shoulder_pan": 950, "shoulder_lift": 700, "elbow_flex": 1000, "wrist_flex": 1400, "wrist_roll": 300,
       "gripper": 2700}  # fmt: skip
HIGH = {"shoulder_pan": 3650, "shoulder_lift": 3000, "elbow_flex": 3200, "wrist_flex": 3700, "wrist_roll": 2900,
        "gripper": 4000}  # fmt: skip


def wait_for_polls(emulator: ServoBusEmulator, n: int = 3, timeout_s: float = 5.0) -> None:
    """Until the calibrator has read the bus ``n`` more times, so it has seen the pose just set."""
    target = emulator.counters["requests"] + n
    deadline = time.monotonic() + timeout_s
    while emulator.counters["requests"] < target:
        if time.monotonic() > deadline:
            raise AssertionError(f"the calibrator stopped polling the bus ({emulator.counters})")
        time.sleep(0.002)


class Human:
    """Plays the person at the keyboard: answers each prompt after doing what it asks with the arm."""

    def __init__(self, emulator: ServoBusEmulator, middle=MIDDLE, skip=(), existing_answer: str = "c", barely=()):
        self.emulator, self.middle, self.skip = emulator, dict(middle), set(skip)
        self.barely = set(barely)  # joints only nudged (-25..+26 ticks), as when one forgets to move them
        self.existing_answer = existing_answer
        self.prompts: list[str] = []

    def hold(self, name: str, actual: int) -> None:
        """Put a joint at a horn angle; the servo reports it minus its Homing_Offset (firmware semantics)."""
        offset = self.emulator.register(IDS[name], "Homing_Offset")
        self.emulator.set_external_position(IDS[name], (actual - offset) % 4096)

    def __call__(self, prompt: str) -> str:
        self.prompts.append(prompt)
        if "exists" in prompt:
            return self.existing_answer
        if "middle" in prompt:
            for name, actual in self.middle.items():
                self.hold(name, actual)
            return ""
        if "full range" in prompt:
            for name in JOINT_NAMES:
                if name in self.skip:
                    continue
                middle = self.middle[name]
                ends = (middle - 25, middle + 26) if name in self.barely else (LOW[name], HIGH[name])
                for actual in (*ends, middle):
                    self.hold(name, actual)
                    wait_for_polls(self.emulator)
            return ""
        raise AssertionError(f"unexpected prompt {prompt!r}")


@pytest.fixture
def emulator(tmp_path):
    with ServoBusEmulator(link_path=tmp_path / "ttyFOLLOWER") as emu:
        yield emu


@pytest.fixture
def calibration_root(tmp_path, monkeypatch):
    root = tmp_path / "lerobot_calibration"
    monkeypatch.setenv("HF_LEROBOT_CALIBRATION", str(root))
    return root


def run_cli(args, human):
    out, err = io.StringIO(), io.StringIO()
    code = main(args, input_fn=human, out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def expected_entry(name: str, record_wrist_roll: bool) -> dict:
    offset = MIDDLE[name] - HALF_TURN  # half-turn homing: the middle pose reads 2047
    low, high = LOW[name] - offset, HIGH[name] - offset  # Present = Actual - Homing_Offset
    if name == "wrist_roll" and not record_wrist_roll:
        low, high = 0, 4095  # LeRobot >= v0.4.3
    return {"id": IDS[name], "drive_mode": 0, "homing_offset": offset, "range_min": low, "range_max": high}


def assert_servos_hold(emulator: ServoBusEmulator, table: dict) -> None:
    for name, entry in table.items():
        motor_id = entry["id"]
        assert emulator.register(motor_id, "Homing_Offset") == entry["homing_offset"], name
        assert emulator.register(motor_id, "Min_Position_Limit") == entry["range_min"], name
        assert emulator.register(motor_id, "Max_Position_Limit") == entry["range_max"], name
        assert emulator.register(motor_id, "Torque_Enable") == 0, name
        assert emulator.register(motor_id, "Lock") == 0, name


def test_follower_calibration_end_to_end(emulator, calibration_root):
    for motor_id in IDS.values():  # a servo left with a previous calibration and torque on
        emulator.set_register(motor_id, "Homing_Offset", -700)
        emulator.set_register(motor_id, "Torque_Enable", 1)
    human = Human(emulator)
    code, out, err = run_cli(["--port", emulator.port, "--kind", "follower", "--id", "arm"], human)
    assert code == 0, err
    assert [("middle" in p, "full range" in p) for p in human.prompts] == [(True, False), (False, True)]

    path = calibration_root / "robots" / "so_follower" / "arm.json"
    expected = {name: expected_entry(name, record_wrist_roll=False) for name in JOINT_NAMES}
    assert path.read_text() == json.dumps(expected, indent=4)  # LeRobot's format, byte for byte
    assert str(path) in out and "wrist_roll" in out
    assert_servos_hold(emulator, expected)
    for motor_id in IDS.values():
        assert emulator.register(motor_id, "Operating_Mode") == 0

    # The file and the servos now agree with the conversion: the middle of each recorded travel is URDF zero, the
    # closed gripper 0 rad and the open one 100 deg.
    conversion = JointConversion(load_calibration(path))
    for name in JOINT_NAMES:
        Human(emulator).hold(name, (LOW[name] + HIGH[name]) // 2 if name != "gripper" else LOW[name])
    with_bus = FeetechBus(emulator.port, list(IDS.values()))
    with_bus.open()
    try:
        radians = conversion.ticks_to_radians(with_bus.read_positions())
        np.testing.assert_allclose(radians[[0, 1, 2, 3]], 0.0, atol=2 * np.pi / 4095)
        assert radians[5] == 0.0
        Human(emulator).hold("gripper", HIGH["gripper"])
        assert conversion.ticks_to_radians(with_bus.read_positions())[5] == pytest.approx(np.radians(100))
    finally:
        with_bus.close()


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_leader_records_wrist_roll_into_out_file(emulator, calibration_root, tmp_path):
    out_file = tmp_path / "custom" / "leader.json"
    human = Human(emulator)
    args = ["--port", emulator.port, "--kind", "leader", "--out", str(out_file), "--record-wrist-roll"]
    terminal, err = Terminal(), io.StringIO()
    code = main(args, input_fn=human, out=terminal, err=err)
    assert code == 0, err.getvalue()
    # the live table redraws in place on a terminal and ends showing the recorded extremes
    screen = terminal.getvalue()
    assert screen.count("\x1b[7F") >= 2
    last_row = [line for line in screen.split("\x1b[2K") if line.startswith("wrist_roll")][-1].split()
    offset = MIDDLE["wrist_roll"] - HALF_TURN
    assert (int(last_row[1]), int(last_row[3])) == (LOW["wrist_roll"] - offset, HIGH["wrist_roll"] - offset)
    expected = {name: expected_entry(name, record_wrist_roll=True) for name in JOINT_NAMES}
    assert json.loads(out_file.read_text()) == expected
    assert expected["wrist_roll"]["range_min"] == LOW["wrist_roll"] - (MIDDLE["wrist_roll"] - HALF_TURN)
    assert_servos_hold(emulator, expected)
    assert not calibration_root.exists()  # --out replaces LeRobot's location


def test_wrist_roll_half_a_turn_away_is_refused_with_the_fix(emulator, calibration_root):
    human = Human(emulator, middle=MIDDLE | {"wrist_roll": 4095})  # needs offset 2048: not storable
    code, _, err = run_cli(["--port", emulator.port, "--kind", "follower", "--id", "arm"], human)
    assert code == 1
    assert "wrist_roll reads 4095 (offset 2048)" in err and "half a turn" in err and "power-cycle" in err
    assert len(human.prompts) == 1  # stopped before recording
    assert not (calibration_root / "robots" / "so_follower" / "arm.json").exists()
    assert emulator.register(IDS["wrist_roll"], "Homing_Offset") == 0


def test_a_joint_never_moved_is_refused(emulator, calibration_root):
    human = Human(emulator, skip={"elbow_flex"})
    code, _, err = run_cli(["--port", emulator.port, "--kind", "follower", "--id", "arm"], human)
    assert code == 1
    assert "no motion recorded for elbow_flex" in err
    assert not (calibration_root / "robots" / "so_follower" / "arm.json").exists()
    assert emulator.register(IDS["elbow_flex"], "Max_Position_Limit") == 4095  # limits not written


def test_existing_file_enter_writes_it_to_the_motors(emulator, calibration_root):
    table = {name: expected_entry(name, record_wrist_roll=True) for name in JOINT_NAMES}
    path = calibration_root / "robots" / "so101_follower" / "arm.json"  # written by LeRobot <= v0.4.2
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(table, indent=4))
    before = path.read_text()
    human = Human(emulator, existing_answer="")
    code, out, err = run_cli(["--port", emulator.port, "--kind", "follower", "--id", "arm"], human)
    assert code == 0, err
    assert len(human.prompts) == 1 and str(path) in human.prompts[0]
    assert f"Wrote {path}" in out
    assert_servos_hold(emulator, table)
    assert path.read_text() == before


def test_write_only_from_the_command_line(emulator, tmp_path):
    table = {name: expected_entry(name, record_wrist_roll=False) for name in JOINT_NAMES}
    path = tmp_path / "arm.json"
    path.write_text(json.dumps(table, indent=4))
    command = [sys.executable, "-m", "so101_driver.hardware.calibrate", "--port", emulator.port, "--kind", "follower"]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    result = subprocess.run(
        [*command, "--write-only", str(path)], capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL
    )
    assert result.returncode == 0, result.stderr
    assert_servos_hold(emulator, table)
    assert json.loads(path.read_text()) == table

    path.write_text(json.dumps(table | {"gripper": table["gripper"] | {"range_min": 4000}}, indent=4))
    result = subprocess.run([*command, "--write-only", str(path)], capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode == 1
    assert "gripper" in result.stderr and "range_min (4000) must be below range_max" in result.stderr
    help_text = subprocess.run([*command[:3], "--help"], capture_output=True, text=True, timeout=60).stdout
    assert "--write-only" in help_text and "--record-wrist-roll" in help_text


def test_missing_port_is_a_clear_error(tmp_path, calibration_root):
    code, _, err = run_cli(["--port", str(tmp_path / "nothing"), "--kind", "leader", "--id", "x"], lambda prompt: "")
    assert code == 1 and "does not exist" in err and str(Path(tmp_path / "nothing")) in err


def test_a_joint_barely_moved_is_refused_naming_it_and_force_keeps_it(emulator, calibration_root):
    """shoulder_pan nudged by 51 ticks (like the published 1996..2047 file): refused with its range, nothing but the
    homing offsets written; --force records it as it is."""
    path = calibration_root / "robots" / "so_follower" / "arm.json"
    human = Human(emulator, barely={"shoulder_pan"})
    code, _, err = run_cli(["--port", emulator.port, "--kind", "follower", "--id", "arm"], human)
    assert code == 1
    assert "shoulder_pan spans only 51 ticks (2022..2073, 4.5 deg" in err and "--force" in err, err
    assert "elbow_flex" not in err and err.count("\n") == 1
    assert not path.exists()
    assert emulator.register(IDS["shoulder_pan"], "Max_Position_Limit") == 4095  # limits not written

    human = Human(emulator, barely={"shoulder_pan"})
    code, out, err = run_cli(["--port", emulator.port, "--kind", "follower", "--id", "arm", "--force"], human)
    assert code == 0, err
    assert "warning (--force): shoulder_pan spans only 51 ticks" in out
    saved = json.loads(path.read_text())["shoulder_pan"]
    assert (saved["range_min"], saved["range_max"]) == (2022, 2073)
    assert emulator.register(IDS["shoulder_pan"], "Max_Position_Limit") == 2073


def test_write_only_refuses_a_narrow_file_unless_forced(emulator, tmp_path, calibration_root):
    table = {name: expected_entry(name, record_wrist_roll=False) for name in JOINT_NAMES}
    table["shoulder_pan"] = table["shoulder_pan"] | {"range_min": 1996, "range_max": 2047}
    path = tmp_path / "still_pan.json"
    path.write_text(json.dumps(table, indent=4))
    args = ["--port", emulator.port, "--kind", "follower", "--write-only", str(path)]
    code, _, err = run_cli(args, lambda prompt: "")
    assert code == 1 and str(path) in err and "shoulder_pan spans only 51 ticks (1996..2047" in err and "--force" in err
    assert emulator.register(IDS["shoulder_pan"], "Max_Position_Limit") == 4095  # nothing written
    code, _, err = run_cli([*args, "--force"], lambda prompt: "")
    assert code == 0, err
    assert_servos_hold(emulator, table)

    # The same file where LeRobot keeps it: not offered for ENTER-to-write, a new calibration is recorded instead.
    stored = calibration_root / "robots" / "so_follower" / "arm.json"
    stored.parent.mkdir(parents=True)
    stored.write_text(path.read_text())
    human = Human(emulator)
    code, out, err = run_cli(["--port", emulator.port, "--kind", "follower", "--id", "arm"], human)
    assert code == 0, err
    assert "The existing file cannot be used" in out and "shoulder_pan spans only 51 ticks" in out
    assert json.loads(stored.read_text()) == {name: expected_entry(name, False) for name in JOINT_NAMES}
