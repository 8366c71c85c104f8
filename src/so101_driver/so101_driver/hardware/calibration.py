"""LeRobot calibration files and the project's ONE conversion between servo ticks, LeRobot values and URDF radians.

Calibration files are LeRobot's current format (JSON ``{motor: {id, drive_mode, homing_offset, range_min,
range_max}}``) where LeRobot keeps them (``find_lerobot_calibration``), so LeRobot and this project share one
calibration. ``JointConversion`` converts between the three frames of a joint position exactly as LeRobot does. A body
joint's zero is the middle of its recorded range, so a joint not moved through its range during calibration is
flagged (``narrow_ranges``, ``NarrowRangeWarning``) and refused by ``python -m so101_driver.hardware.calibrate``.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Literal

import numpy as np

from so101_contract.files import atomic_write_text
from so101_contract.joints import GRIPPER, JOINT_NAMES, NUM_JOINTS

LEROBOT_MAX_RES = 4095
"""LeRobot's ``max_res`` (resolution - 1) used in its degree maths: 4095 ticks = 360 deg."""
RADIANS_PER_TICK = 2.0 * math.pi / LEROBOT_MAX_RES
MAX_TICK = 4095
HOMING_TARGET_TICKS = 2047
"""Half-turn homing: the calibration pose reads int(4095 / 2) = 2047 after Homing_Offset is written."""
MAX_HOMING_OFFSET = 2047
"""Homing_Offset is sign-magnitude with the sign in bit 11: magnitudes above 2047 cannot be stored."""
BODY_MASK = np.arange(NUM_JOINTS) != GRIPPER  # every joint but the jaw

Kind = Literal["follower", "leader"]
# Calibration files live under $HF_LEROBOT_CALIBRATION/{robots|teleoperators}/<name>/<id>.json (draccus JSON, indent 4).
# (category folder, device folder names newest generation first): so_* from LeRobot v0.4.3, so101_* up to v0.4.2.
LEROBOT_DIRECTORIES: dict[str, tuple[str, tuple[str, ...]]] = {
    "follower": ("robots", ("so_follower", "so101_follower")),
    "leader": ("teleoperators", ("so_leader", "so101_leader")),
}
# The shortest range a calibrated joint may span. A joint left still during calibration records noise and the knocks
# of moving its neighbours: a few ticks up to ~50 (a published follower file: shoulder_pan 1996..2047, 51 ticks,
# 4.5 deg). A real calibration, even a hasty one, sweeps most of the travel: 1494..3857 ticks per joint in the
# reference follower file, ~600..700 in a hasty published leader file. A tenth of each joint's URDF travel
# (so101_new_calib limits) lies between the two with a wide margin both ways; with less, the mid-of-range zero is off
# by up to half the joint's travel.
MIN_RANGE_DEGREES: dict[str, float] = {
    "shoulder_pan": 22.0,  # URDF travel 220 deg (+-110)
    "shoulder_lift": 20.0,  # 200 deg (+-100)
    "elbow_flex": 19.0,  # 193.7 deg (+-96.8)
    "wrist_flex": 19.0,  # 190 deg (+-95)
    "wrist_roll": 32.0,  # 320 deg (-157..163); LeRobot >= v0.4.3 writes the full turn 0..4095 anyway
    "gripper": 11.0,  # 110 deg (-10..100)
}
MIN_RANGE_TICKS: dict[str, int] = {
    name: math.ceil(degrees * LEROBOT_MAX_RES / 360) for name, degrees in MIN_RANGE_DEGREES.items()
}
# LeRobot's older array schema (before its motors-bus rewrite) is refused with a message: its DEGREE joints store only
# a software offset to a "zero pose" and no range, so there is no faithful way to obtain the mid-of-range zero from it;
# recalibrating takes two minutes.
OLD_FORMAT_KEYS = frozenset({"homing_offset", "drive_mode", "start_pos", "end_pos", "calib_mode", "motor_names"})
RECALIBRATE_HINT = "python -m so101_driver.hardware.calibrate --port PORT --kind follower|leader --id NAME"


class CalibrationError(ValueError):
    """A calibration file or table that cannot be used; the message names the file, the field and the fix."""


class NarrowRangeWarning(UserWarning):
    """A calibration in which a joint spans less than MIN_RANGE_TICKS: it was not moved during calibration."""


@dataclass(frozen=True)
class MotorCalibration:
    """One motor's entry in a LeRobot calibration file (same fields and order as LeRobot's dataclass)."""

    id: int
    drive_mode: int
    homing_offset: int
    range_min: int
    range_max: int


Calibration = dict[str, MotorCalibration]
_FIELD_NAMES = tuple(f.name for f in fields(MotorCalibration))


def _check_int(value: object, where: str, field: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise CalibrationError(f"{where}: field {field!r} must be an integer, got {value!r} ({type(value).__name__})")
    if not low <= int(value) <= high:
        raise CalibrationError(f"{where}: field {field!r} = {value} is outside {low}..{high}")
    return int(value)


def _check_motor(motor: MotorCalibration, where: str) -> None:
    _check_int(motor.id, where, "id", 0, 253)
    _check_int(motor.drive_mode, where, "drive_mode", 0, 1)
    offset = motor.homing_offset
    if isinstance(offset, bool) or not isinstance(offset, (int, np.integer)):
        raise CalibrationError(f"{where}: field 'homing_offset' must be an integer, got {offset!r}")
    if abs(int(offset)) > MAX_HOMING_OFFSET:
        raise CalibrationError(
            f"{where}: field 'homing_offset' = {offset} has magnitude > {MAX_HOMING_OFFSET}, which the servo's "
            f"sign-magnitude register cannot hold; recalibrate ({RECALIBRATE_HINT})"
        )
    low = _check_int(motor.range_min, where, "range_min", 0, MAX_TICK)
    high = _check_int(motor.range_max, where, "range_max", 0, MAX_TICK)
    if low >= high:
        raise CalibrationError(
            f"{where}: range_min ({low}) must be below range_max ({high}); the joint was not moved through its "
            f"range during calibration; recalibrate ({RECALIBRATE_HINT})"
        )


def validate_calibration(calibration: Mapping[str, MotorCalibration], source: str = "calibration") -> None:
    """Raise CalibrationError unless ``calibration`` has exactly the six SO-101 motors with usable values."""
    missing = [name for name in JOINT_NAMES if name not in calibration]
    if missing:
        raise CalibrationError(
            f"{source}: missing motors {', '.join(missing)} (an SO-101 file has {', '.join(JOINT_NAMES)})"
        )
    unknown = [name for name in calibration if name not in JOINT_NAMES]
    if unknown:
        raise CalibrationError(
            f"{source}: unknown motors {', '.join(unknown)}; this is not an SO-101 calibration "
            f"(expected exactly {', '.join(JOINT_NAMES)})"
        )
    for name in JOINT_NAMES:
        motor = calibration[name]
        if not isinstance(motor, MotorCalibration):
            raise CalibrationError(f"{source}: motor {name!r} is a {type(motor).__name__}, not a MotorCalibration")
        _check_motor(motor, f"{source}: motor {name!r}")
    ids = [calibration[name].id for name in JOINT_NAMES]
    if len(set(ids)) != len(ids):
        raise CalibrationError(f"{source}: motor ids {ids} are not unique; every servo on a bus needs its own id")


def narrow_ranges(calibration: Mapping[str, MotorCalibration]) -> list[str]:
    """One description per joint (JOINT_NAMES order) whose range is shorter than MIN_RANGE_TICKS."""
    found = []
    for name in JOINT_NAMES:
        motor = calibration.get(name)
        if motor is None:
            continue
        span = motor.range_max - motor.range_min
        if span < MIN_RANGE_TICKS[name]:
            found.append(
                f"{name} spans only {span} ticks ({motor.range_min}..{motor.range_max}, "
                f"{span * 360 / LEROBOT_MAX_RES:.1f} deg; a calibrated {name} spans at least {MIN_RANGE_TICKS[name]})"
            )
    return found


def describe_narrow_ranges(narrow: list[str], source: str) -> str:
    """The one-line message for ``narrow_ranges``' findings in ``source``."""
    return (
        f"{source}: {'; '.join(narrow)}. A joint not moved through its whole range during calibration gets a wrong "
        f"zero (the middle of the recorded range) and servo limits that lock it; recalibrate and move every joint "
        f"end to end ({RECALIBRATE_HINT})"
    )


def check_ranges(calibration: Mapping[str, MotorCalibration], source: str = "calibration") -> None:
    """Raise CalibrationError naming every joint whose range is too short (see MIN_RANGE_TICKS)."""
    narrow = narrow_ranges(calibration)
    if narrow:
        raise CalibrationError(describe_narrow_ranges(narrow, source))


def _describe_old_format(path: Path) -> str:
    return (
        f"{path} is LeRobot's calibration format from before its mid-2025 motors-bus rewrite (arrays homing_offset, "
        "drive_mode, start_pos, end_pos, calib_mode, motor_names). Its DEGREE joints store only a software offset to "
        "a 'zero pose' and no range, so it cannot be mapped to the mid-of-range zero that the URDF and current "
        f"LeRobot use without guessing. Recalibrate the arm: {RECALIBRATE_HINT} (or lerobot-calibrate from a current "
        "LeRobot)"
    )


def calibration_from_dict(data: object, source: str = "calibration") -> Calibration:
    """Parse the JSON object of a LeRobot calibration file (current format) and validate it."""
    if not isinstance(data, dict):
        raise CalibrationError(f"{source}: expected a JSON object of motors, got {type(data).__name__}")
    if OLD_FORMAT_KEYS & set(data) and any(isinstance(value, list) for value in data.values()):
        raise CalibrationError(_describe_old_format(Path(source)))
    calibration: Calibration = {}
    for name, entry in data.items():
        where = f"{source}: motor {name!r}"
        if not isinstance(entry, dict):
            raise CalibrationError(f"{where}: expected an object with {', '.join(_FIELD_NAMES)}, got {entry!r}")
        absent = [f for f in _FIELD_NAMES if f not in entry]
        if absent:
            raise CalibrationError(f"{where}: missing field(s) {', '.join(absent)}")
        extra = [f for f in entry if f not in _FIELD_NAMES]
        if extra:
            raise CalibrationError(f"{where}: unknown field(s) {', '.join(extra)} (fields: {', '.join(_FIELD_NAMES)})")
        for field in _FIELD_NAMES:
            _check_int(entry[field], where, field, -(2**31), 2**31)
        calibration[name] = MotorCalibration(**{f: int(entry[f]) for f in _FIELD_NAMES})
    validate_calibration(calibration, source)
    return {name: calibration[name] for name in JOINT_NAMES}


def load_calibration(path: str | Path, *, warn_narrow: bool = True) -> Calibration:
    """Read a LeRobot calibration JSON file (either directory generation: the file format is the same).

    A joint whose range is too short (``narrow_ranges``) is reported as a NarrowRangeWarning, not refused: the file
    is usable and the drivers compare it with what the servos hold; ``check_ranges`` is the strict check.
    """
    path = Path(path).expanduser()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CalibrationError(f"calibration file {path} does not exist; calibrate with {RECALIBRATE_HINT}") from None
    except OSError as exc:
        raise CalibrationError(f"calibration file {path} cannot be read: {exc}") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CalibrationError(f"calibration file {path} is not valid JSON: {exc}") from exc
    calibration = calibration_from_dict(data, str(path))
    narrow = narrow_ranges(calibration)
    if warn_narrow and narrow:
        warnings.warn(describe_narrow_ranges(narrow, str(path)), NarrowRangeWarning, stacklevel=2)
    return calibration


def calibration_to_dict(calibration: Mapping[str, MotorCalibration]) -> dict[str, dict[str, int]]:
    """The JSON object LeRobot writes: motors in JOINT_NAMES order, fields in its dataclass order."""
    validate_calibration(calibration)
    return {name: {k: int(v) for k, v in asdict(calibration[name]).items()} for name in JOINT_NAMES}


def save_calibration(path: str | Path, calibration: Mapping[str, MotorCalibration]) -> Path:
    """Write LeRobot's format (json indent=4) atomically: a crash leaves the old file or the new one, never half."""
    path = Path(path).expanduser()
    text = json.dumps(calibration_to_dict(calibration), indent=4)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, text)
    return path


def lerobot_calibration_root() -> Path:
    """$HF_LEROBOT_CALIBRATION, else $HF_LEROBOT_HOME/calibration, else $HF_HOME/lerobot/calibration, where HF_HOME
    defaults like huggingface_hub to $XDG_CACHE_HOME/huggingface, i.e. ~/.cache/huggingface."""
    explicit = os.environ.get("HF_LEROBOT_CALIBRATION")
    if explicit:
        return Path(explicit).expanduser()
    lerobot_home = os.environ.get("HF_LEROBOT_HOME")
    if not lerobot_home:
        hf_home = os.environ.get("HF_HOME") or os.path.join(os.environ.get("XDG_CACHE_HOME", "~/.cache"), "huggingface")
        lerobot_home = os.path.join(hf_home, "lerobot")
    return Path(lerobot_home).expanduser() / "calibration"


def lerobot_calibration_candidates(kind: Kind, robot_id: str, root: str | Path | None = None) -> list[Path]:
    """Both generations' paths for one arm, newest LeRobot naming (so_follower / so_leader) first."""
    if kind not in LEROBOT_DIRECTORIES:
        raise ValueError(f"kind must be 'follower' or 'leader', got {kind!r}")
    if not robot_id or "/" in robot_id or "\\" in robot_id or robot_id in {".", ".."}:
        raise ValueError(
            f"robot id {robot_id!r} must be a plain file name such as 'my_follower' (LeRobot's --robot.id)"
        )
    base = Path(root).expanduser() if root is not None else lerobot_calibration_root()
    category, devices = LEROBOT_DIRECTORIES[kind]
    return [base / category / device / f"{robot_id}.json" for device in devices]


def find_lerobot_calibration(
    kind: Kind, robot_id: str, root: str | Path | None = None, *, must_exist: bool = True
) -> Path:
    """The calibration file LeRobot would use for this arm, in either directory generation.

    ``root`` replaces the calibration root (LeRobot's ``calibration_dir`` parent: the folder holding robots/ and
    teleoperators/). When both generations hold a file the most recently written one wins, because calibrating
    rewrites the servos' EEPROM: the newest file is the one that matches the motors. With ``must_exist=False`` and no
    file, the current generation's path is returned (where a new calibration is written).
    """
    candidates = lerobot_calibration_candidates(kind, robot_id, root)
    existing = [path for path in candidates if path.is_file()]
    if existing:
        return max(existing, key=lambda p: (p.stat().st_mtime_ns, -candidates.index(p)))
    if not must_exist:
        return candidates[0]
    raise CalibrationError(
        f"no LeRobot calibration for {kind} {robot_id!r}: looked for {' and '.join(str(p) for p in candidates)}; "
        f"calibrate with {RECALIBRATE_HINT}, or set HF_LEROBOT_CALIBRATION to the folder holding robots/ and "
        "teleoperators/"
    )


class JointConversion:
    """Ticks <-> LeRobot values <-> URDF radians for the six SO-101 joints (JOINT_NAMES order).

    Three frames describe a joint position:

    * **ticks**: what an STS3215 reports in Present_Position and accepts in Goal_Position, 0..4095 per turn, already
      shifted by the servo firmware by the Homing_Offset in its EEPROM (Present = Actual - Homing_Offset). LeRobot's
      calibration writes Homing_Offset so that the pose held during "move to the middle of the range" reads 2047.
    * **LeRobot values** (``"<name>.pos"``): ``MotorsBus._normalize`` applied to ticks with the calibration's
      ``range_min``/``range_max``. Body joints are DEGREES (LeRobot >= 0.4.4 default) or RANGE_M100_100 (older default);
      the gripper is always RANGE_0_100. With mid = (range_min + range_max) / 2 (LeRobot's MotorsBus):

      - DEGREES: deg = (ticks - mid) * 360 / 4095, no clamping, drive_mode ignored; inverse int(deg * 4095 / 360 + mid).
      - RANGE_M100_100: ((clamp(ticks) - min) / (max - min)) * 200 - 100, negated when drive_mode = 1;
        inverse int(((clamp(v, -100, 100) + 100) / 200) * (max - min) + min) after negating v when drive_mode = 1.
      - RANGE_0_100: ((clamp(ticks) - min) / (max - min)) * 100, 100 - that when drive_mode = 1;
        inverse int((clamp(v, 0, 100) / 100) * (max - min) + min) after v -> 100 - v when drive_mode = 1.

      ``int()`` truncates; this module reproduces it exactly in :meth:`JointConversion.lerobot_to_ticks`, so a value
      sent through LeRobot and through this module lands on the same tick. LeRobot uses 4095 (not 4096) ticks per turn
      in its angle maths, and so does this module, so degrees here equal LeRobot's degrees to the last bit.
    * **URDF radians** (REP-103, the project's topics):

      - body joints: rad = deg2rad(LeRobot DEGREES value) = (ticks - mid) * 2*pi / 4095. **The zero is the middle of
        the recorded range, not the homing pose** (the homing pose reads 2047, which is generally not mid). That is
        the zero the SO-101 "new calib" URDF is authored around and the one LeRobot's own kinematics use; tools that
        take tick 2048 as zero (feetech_ros2_driver) disagree with it by (mid - 2048) ticks.
      - gripper: rad = deg2rad(LeRobot RANGE_0_100 value), i.e. 0 (range_min; with drive_mode 1, range_max) .. 100
        (the other end of the recorded travel) maps to 0 .. 1.745 rad, matching the URDF gripper upper limit of
        100 deg. Which physical end is 0 follows from the servo's mounting, exactly as in LeRobot, whose kinematics
        examples pass the gripper value through deg2rad the same way. The URDF's lower limit (-10 deg) is never
        produced: the value is clamped to the recorded range like LeRobot clamps it.

      Radians -> ticks rounds to the nearest tick (LeRobot's truncation would bias every command by half a tick
      towards lower ticks) and clamps to [range_min, range_max], which the servo enforces itself from its EEPROM
      limits anyway. ticks -> radians -> ticks therefore returns the same tick for every tick in range.
      Velocities (Present_Velocity, ticks/s) convert with the same per-joint scale: 2*pi/4095 rad per tick for body
      joints, deg2rad(100 / (max - min)) rad per tick for the gripper (negated when its drive_mode is 1).
    """

    def __init__(self, calibration: Mapping[str, MotorCalibration]):
        validate_calibration(calibration)
        self.calibration: Calibration = {name: calibration[name] for name in JOINT_NAMES}
        motors = [self.calibration[name] for name in JOINT_NAMES]
        self.ids = np.array([m.id for m in motors], dtype=int)
        self.range_min = np.array([m.range_min for m in motors], dtype=float)
        self.range_max = np.array([m.range_max for m in motors], dtype=float)
        self.mid = (self.range_min + self.range_max) / 2
        self.drive_mode = np.array([m.drive_mode for m in motors], dtype=int)
        span = self.range_max - self.range_min
        gripper_rad_per_tick = math.radians(100.0 / span[GRIPPER])
        if self.drive_mode[GRIPPER]:
            gripper_rad_per_tick = -gripper_rad_per_tick
        self.radians_per_tick = np.where(BODY_MASK, RADIANS_PER_TICK, gripper_rad_per_tick)

    @classmethod
    def from_file(cls, path: str | Path) -> JointConversion:
        return cls(load_calibration(path))

    @staticmethod
    def _vector(values: object, what: str) -> np.ndarray:
        array = np.asarray(values, dtype=float)
        if array.shape != (NUM_JOINTS,):
            raise ValueError(f"{what} must have shape ({NUM_JOINTS},) in JOINT_NAMES order, got {array.shape}")
        if not np.isfinite(array).all():
            bad = [n for n, v in zip(JOINT_NAMES, array, strict=True) if not np.isfinite(v)]
            raise ValueError(f"{what} has non-finite values for {', '.join(bad)}")
        return array

    # --- LeRobot's MotorsBus._normalize / _unnormalize, scalar by scalar so the arithmetic is identical ---------

    def _normalize(self, i: int, ticks: float, use_degrees: bool) -> float:
        low, high, drive = self.range_min[i], self.range_max[i], self.drive_mode[i]
        if use_degrees and i != GRIPPER:
            return (ticks - self.mid[i]) * 360 / LEROBOT_MAX_RES
        bounded = min(high, max(low, ticks))
        if i == GRIPPER:
            norm = ((bounded - low) / (high - low)) * 100
            return 100 - norm if drive else norm
        norm = (((bounded - low) / (high - low)) * 200) - 100
        return -norm if drive else norm

    def _unnormalize(self, i: int, value: float, use_degrees: bool) -> int:
        low, high, drive = self.range_min[i], self.range_max[i], self.drive_mode[i]
        if use_degrees and i != GRIPPER:
            return int((value * LEROBOT_MAX_RES / 360) + self.mid[i])
        if i == GRIPPER:
            value = 100 - value if drive else value
            return int((min(100.0, max(0.0, value)) / 100) * (high - low) + low)
        value = -value if drive else value
        return int(((min(100.0, max(-100.0, value)) + 100) / 200) * (high - low) + low)

    def ticks_to_lerobot(self, ticks: object, use_degrees: bool = True) -> dict[str, float]:
        """``{"<name>.pos": value}`` exactly as LeRobot's normalize gives it (DEGREES or RANGE_M100_100 body,
        RANGE_0_100 gripper)."""
        t = self._vector(ticks, "ticks")
        return {
            f"{name}.pos": float(self._normalize(i, float(t[i]), use_degrees)) for i, name in enumerate(JOINT_NAMES)
        }

    def lerobot_to_ticks(self, values: Mapping[str, float], use_degrees: bool = True) -> np.ndarray:
        """Goal ticks from ``{"<name>.pos": value}`` exactly as LeRobot's unnormalize gives them (truncation)."""
        missing = [f"{name}.pos" for name in JOINT_NAMES if f"{name}.pos" not in values]
        if missing:
            raise ValueError(f"LeRobot values lack {', '.join(missing)}")
        vector = self._vector([values[f"{name}.pos"] for name in JOINT_NAMES], "LeRobot values")
        return np.array([self._unnormalize(i, float(vector[i]), use_degrees) for i in range(NUM_JOINTS)], dtype=int)

    # --- URDF radians --------------------------------------------------------------------------------------------

    def ticks_to_radians(self, ticks: object) -> np.ndarray:
        """URDF joint angles: deg2rad of LeRobot's DEGREES value (body) and of its RANGE_0_100 value (gripper)."""
        t = self._vector(ticks, "ticks")
        degrees = np.array([self._normalize(i, float(t[i]), True) for i in range(NUM_JOINTS)])
        return np.deg2rad(degrees)

    def radians_to_ticks(self, radians: object) -> np.ndarray:
        """Nearest ticks for URDF joint angles, clamped to each joint's calibrated [range_min, range_max]."""
        degrees = np.rad2deg(self._vector(radians, "radians"))
        ticks = degrees * LEROBOT_MAX_RES / 360 + self.mid
        gripper = degrees[GRIPPER]
        if self.drive_mode[GRIPPER]:
            gripper = 100.0 - gripper
        gripper = min(100.0, max(0.0, gripper))
        low, high = self.range_min[GRIPPER], self.range_max[GRIPPER]
        ticks[GRIPPER] = gripper / 100 * (high - low) + low
        return np.clip(np.rint(ticks), self.range_min, self.range_max).astype(int)

    def velocity_ticks_to_rad_s(self, ticks_per_s: object) -> np.ndarray:
        """Present_Velocity (signed ticks/s) to rad/s with the same per-joint scale as the positions."""
        return self._vector(ticks_per_s, "velocities") * self.radians_per_tick

    def radian_limits(self) -> tuple[np.ndarray, np.ndarray]:
        """(lower, upper) URDF radians reachable inside the calibrated tick ranges, per joint."""
        at_min = self.ticks_to_radians(self.range_min)
        at_max = self.ticks_to_radians(self.range_max)
        return np.minimum(at_min, at_max), np.maximum(at_min, at_max)


# --- LeRobot dataset values <-> URDF radians, whole recordings at once ------------------------------------------------

LEROBOT_UNITS = ("degrees", "range_m100")
"""How a LeRobot recording stores the five body joints: "degrees" (LeRobot >= 0.4.4, MotorNormMode.DEGREES) or
"range_m100" (<= 0.4.3, RANGE_M100_100 of the calibrated range). The gripper is RANGE_0_100 in both."""


def lerobot_values_to_radians(values: np.ndarray, units: str, conversion: JointConversion | None = None) -> np.ndarray:
    """LeRobot ``<joint>.pos`` values, shape (..., 6) in JOINT_NAMES order -> URDF radians, without LeRobot's tick
    truncation (a recording's values are the exact normalization of whole ticks).

    "degrees": body rad = deg2rad(value), calibration-free (the zero is the middle of the calibrated range either
    way). "range_m100": needs the follower's calibration: ticks = (v + 100) / 200 * (max - min) + min (v negated for
    drive_mode 1), then (ticks - mid) * 2 pi / 4095. The gripper (RANGE_0_100) is deg2rad(value) in both, as
    ``ticks_to_radians`` defines it."""
    values = np.asarray(values, dtype=np.float64)
    if values.shape[-1:] != (NUM_JOINTS,):
        raise ValueError(f"LeRobot joint values must have {NUM_JOINTS} per row, got shape {values.shape}")
    if units == "degrees":
        return np.deg2rad(values)
    if units != "range_m100":
        raise ValueError(f"units must be one of {LEROBOT_UNITS}, got {units!r}")
    if conversion is None:
        raise ValueError("range_m100 values need the follower's calibration to become radians")
    signed = np.where(conversion.drive_mode.astype(bool), -values, values)
    span = conversion.range_max - conversion.range_min
    ticks = (signed + 100.0) / 200.0 * span + conversion.range_min
    radians = (ticks - conversion.mid) * RADIANS_PER_TICK
    radians[..., GRIPPER] = np.deg2rad(values[..., GRIPPER])
    return radians


def radians_to_lerobot_degrees(radians: np.ndarray) -> np.ndarray:
    """URDF radians (..., 6) -> LeRobot >= 0.4.4 values: DEGREES body joints and the RANGE_0_100 gripper (both
    rad2deg under this module's conventions), the inverse of ``lerobot_values_to_radians(v, "degrees")``."""
    return np.rad2deg(np.asarray(radians, dtype=np.float64))
