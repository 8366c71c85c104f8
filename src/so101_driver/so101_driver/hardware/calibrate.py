"""Guided calibration of an SO-101 arm, writing LeRobot's calibration format, on the project's Feetech bus.

It follows LeRobot's own procedure (``ArmCalibrator`` lists its steps) so the file and the servos' EEPROM end up
exactly as ``lerobot-calibrate`` would leave them. ``--write-only FILE`` writes an existing file to the motors. A
joint that spans less than ``calibration.MIN_RANGE_TICKS`` (not moved during the recording) is refused, naming it,
unless ``--force``. Every prompt goes through an injectable ``input_fn`` so tests can play the human.

    python -m so101_driver.hardware.calibrate --port PORT --kind follower|leader --id NAME
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TextIO

from so101_contract.cli import one_of_ints
from so101_contract.joints import JOINT_NAMES
from so101_driver.hardware.calibration import (
    HOMING_TARGET_TICKS,
    MAX_HOMING_OFFSET,
    MAX_TICK,
    Calibration,
    CalibrationError,
    MotorCalibration,
    check_ranges,
    describe_narrow_ranges,
    find_lerobot_calibration,
    load_calibration,
    narrow_ranges,
    save_calibration,
    validate_calibration,
)
from so101_driver.hardware.feetech import control_table as ct

DEFAULT_MOTOR_IDS: dict[str, int] = {name: i + 1 for i, name in enumerate(JOINT_NAMES)}
STS3215_MODEL_NUMBER = 777
POSITION_MODE = 0
UNRECORDED_JOINT = "wrist_roll"
MAX_CONSECUTIVE_READ_FAILURES = 50

InputFn = Callable[[str], str]


class CalibrationAborted(RuntimeError):
    """The procedure cannot continue; the message says why and what to do."""


def write_calibration_to_motors(bus, calibration: Calibration) -> None:
    """Homing_Offset and Min/Max_Position_Limit into each servo's EEPROM (torque off, Lock 0), then read back."""
    validate_calibration(calibration)
    ids = [calibration[name].id for name in JOINT_NAMES]
    bus.set_torque(False, ids)
    for name in JOINT_NAMES:
        motor = calibration[name]
        bus.write_register(motor.id, "Lock", 0)
        bus.write_register(motor.id, "Homing_Offset", motor.homing_offset)
        bus.write_register(motor.id, "Min_Position_Limit", motor.range_min)
        bus.write_register(motor.id, "Max_Position_Limit", motor.range_max)
    mismatched = []
    for name in JOINT_NAMES:
        motor = calibration[name]
        stored = read_motor_calibration(bus, {name: motor.id})[name]
        if stored != motor:
            mismatched.append(f"{name} (id {motor.id}): wrote {motor}, servo holds {stored}")
    if mismatched:
        raise CalibrationAborted(
            "the servos did not keep the calibration: " + "; ".join(mismatched) + ". Check that nothing else writes "
            "to the bus and that the servos are powered, then run again"
        )


def read_motor_calibration(bus, motor_ids: dict[str, int]) -> Calibration:
    """What the servos hold in EEPROM, as MotorCalibration entries (drive_mode is LeRobot's, always 0 on Feetech):
    comparing it with a file is LeRobot's ``is_calibrated``."""
    return {
        name: MotorCalibration(
            id=motor_id,
            drive_mode=0,
            homing_offset=bus.read_register(motor_id, "Homing_Offset"),
            range_min=bus.read_register(motor_id, "Min_Position_Limit"),
            range_max=bus.read_register(motor_id, "Max_Position_Limit"),
        )
        for name, motor_id in motor_ids.items()
    }


class _EnterWaiter:
    """Runs one blocking prompt in a thread so the caller can keep polling the bus until ENTER is pressed."""

    def __init__(self, input_fn: InputFn, prompt: str):
        self.answer: str | None = None
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(input_fn, prompt), daemon=True, name="enter-waiter")
        self._thread.start()

    def _run(self, input_fn: InputFn, prompt: str) -> None:
        try:
            self.answer = input_fn(prompt)
        except BaseException as exc:  # EOFError from a closed stdin must reach the main thread
            self.error = exc

    def done(self) -> bool:
        return not self._thread.is_alive()


class ArmCalibrator:
    """LeRobot's calibration procedure (``SOFollower.calibrate`` / ``SOLeader.calibrate``) for one arm on an open
    FeetechBus:

    1. torque off (Lock 0, so EEPROM writes persist) and position mode on every motor;
    2. "move the arm to the middle of its range, press ENTER": Homing_Offset = 0 and limits 0..4095, read
       Present_Position, write Homing_Offset = present - 2047 (half-turn homing: this pose now reads 2047);
    3. "move every joint through its full range, press ENTER when done": Present_Position polled at ~50 Hz, min/max
       kept per joint, shown in a live table. wrist_roll is not recorded but set to 0..4095 like LeRobot >= v0.4.3
       (``record_wrist_roll`` records it like the so101_* classes up to v0.4.2 did);
    4. Homing_Offset, Min_Position_Limit and Max_Position_Limit written to each servo's EEPROM (torque off, Lock 0) and
       read back, then the JSON saved (indent 4) where LeRobot looks for it (or ``--out``).

    A recorded range in which a joint spans less than ``MIN_RANGE_TICKS`` is refused, naming the joint and its range:
    written to the servos, its limits would lock the joint, and its mid-of-range zero is wrong. ``force`` accepts it
    (a joint that really cannot move further).
    """

    def __init__(
        self,
        bus,
        input_fn: InputFn = input,
        out: TextIO | None = None,
        motor_ids: dict[str, int] | None = None,
        record_wrist_roll: bool = False,
        poll_hz: float = 50.0,
        force: bool = False,
    ):
        self.bus = bus
        self.input_fn = input_fn
        self.out = out if out is not None else sys.stdout
        self.motor_ids = dict(motor_ids or DEFAULT_MOTOR_IDS)
        self.names = list(self.motor_ids)
        self.ids = [self.motor_ids[name] for name in self.names]
        self.record_wrist_roll = record_wrist_roll
        self.poll_period_s = 1.0 / poll_hz
        self.force = force  # accept joints that span less than MIN_RANGE_TICKS

    def say(self, text: str = "") -> None:
        print(text, file=self.out, flush=True)

    def ask(self, prompt: str) -> str:
        try:
            return self.input_fn(prompt)
        except EOFError:
            raise CalibrationAborted("no answer (stdin is closed): run the calibration in a terminal") from None

    def check_motors(self) -> None:
        for name, motor_id in self.motor_ids.items():
            model = self.bus.ping(motor_id)
            if model != STS3215_MODEL_NUMBER:
                self.say(
                    f"warning: {name} (id {motor_id}) reports model {model}, not an STS3215 ({STS3215_MODEL_NUMBER})"
                )

    def prepare(self) -> None:
        """Torque off with EEPROM unlocked, and position mode (the servos hold still but can be moved by hand)."""
        self.bus.set_torque(False, self.ids)
        for motor_id in self.ids:
            self.bus.write_register(motor_id, "Lock", 0)
            self.bus.write_register(motor_id, "Operating_Mode", POSITION_MODE)

    def read_positions(self) -> dict[str, int]:
        by_id = dict(zip(self.bus.motor_ids, self.bus.read_positions(), strict=True))
        return {name: int(by_id[motor_id]) for name, motor_id in self.motor_ids.items()}

    def set_half_turn_homings(self) -> dict[str, int]:
        """Homing offsets that make the present pose read 2047; refuses offsets the register cannot hold."""
        for motor_id in self.ids:
            self.bus.write_register(motor_id, "Homing_Offset", 0)
            self.bus.write_register(motor_id, "Min_Position_Limit", 0)
            self.bus.write_register(motor_id, "Max_Position_Limit", MAX_TICK)
        present = self.read_positions()
        offsets = {name: ticks - HOMING_TARGET_TICKS for name, ticks in present.items()}
        too_far = {name: off for name, off in offsets.items() if abs(off) > MAX_HOMING_OFFSET}
        if too_far:
            details = ", ".join(f"{name} reads {present[name]} (offset {off})" for name, off in too_far.items())
            raise CalibrationAborted(
                f"cannot home: {details}; Homing_Offset holds at most +/-{MAX_HOMING_OFFSET} ticks, so a joint must "
                f"read 0..{2 * MAX_HOMING_OFFSET + 1} without offset. This is the known wrist_roll problem: the servo "
                "horn sits about half a turn away from the servo's own middle (or the servo counts multiple turns). "
                "Turn that joint half a turn to the other side of its travel and run again; if it persists, "
                "power-cycle the arm, or re-centre the servo with Feetech's software (its 'Offset'/middle "
                "calibration). No calibration was written."
            )
        for name, offset in offsets.items():
            self.bus.write_register(self.motor_ids[name], "Homing_Offset", offset)
        return offsets

    def _table(self, mins: dict[str, int], now: dict[str, int], maxes: dict[str, int]) -> list[str]:
        lines = [f"{'JOINT':<15}{'MIN':>7}{'POS':>7}{'MAX':>7}"]
        for name in self.names:
            if name == UNRECORDED_JOINT and not self.record_wrist_roll:
                lines.append(f"{name:<15}{'0':>7}{now[name]:>7}{MAX_TICK:>7}  (full turn, not recorded)")
            else:
                lines.append(f"{name:<15}{mins[name]:>7}{now[name]:>7}{maxes[name]:>7}")
        return lines

    def record_ranges_of_motion(self) -> tuple[dict[str, int], dict[str, int]]:
        """Poll positions at ~50 Hz until ENTER, keeping min/max per joint; a live table on a terminal."""
        start = self.read_positions()
        mins, maxes, now = dict(start), dict(start), dict(start)
        live = hasattr(self.out, "isatty") and self.out.isatty()
        waiter = _EnterWaiter(self.input_fn, "Press ENTER when every joint has been through its full range... ")
        shown = 0
        next_draw = 0.0
        failures = 0
        next_poll = time.monotonic()
        while not waiter.done():
            try:
                now = self.read_positions()
                failures = 0
            except Exception as exc:  # a corrupted reply must not end a two-minute recording; a dead bus must
                failures += 1
                if failures >= MAX_CONSECUTIVE_READ_FAILURES:
                    raise CalibrationAborted(f"the bus stopped answering while recording ranges: {exc}") from exc
            for name, ticks in now.items():
                mins[name] = min(mins[name], ticks)
                maxes[name] = max(maxes[name], ticks)
            if live and time.monotonic() >= next_draw:
                lines = self._table(mins, now, maxes)
                if shown:
                    self.out.write(f"\x1b[{shown}F")
                self.out.write("".join(f"\x1b[2K{line}\n" for line in lines))
                self.out.flush()
                shown = len(lines)
                next_draw = time.monotonic() + 0.1
            next_poll += self.poll_period_s
            time.sleep(max(0.0, next_poll - time.monotonic()))
            if next_poll < time.monotonic() - self.poll_period_s:
                next_poll = time.monotonic()  # fell behind (slow bus): do not burst to catch up
        if waiter.error is not None:
            if isinstance(waiter.error, EOFError):
                raise CalibrationAborted("no answer (stdin is closed): run the calibration in a terminal")
            raise waiter.error
        if not live:
            self.say("\n".join(self._table(mins, now, maxes)))
        return mins, maxes

    def run(self) -> Calibration:
        self.check_motors()
        self.prepare()
        self.ask("Move the arm to the middle of its range of motion (every joint half-way), then press ENTER... ")
        offsets = self.set_half_turn_homings()
        self.say("Homing offsets written: " + ", ".join(f"{n} {o:+d}" for n, o in offsets.items()))
        recorded = "every joint" if self.record_wrist_roll else f"every joint except {UNRECORDED_JOINT}"
        self.say(f"Move {recorded} one after the other through its ENTIRE range of motion.")
        mins, maxes = self.record_ranges_of_motion()
        if not self.record_wrist_roll and UNRECORDED_JOINT in mins:
            mins[UNRECORDED_JOINT], maxes[UNRECORDED_JOINT] = 0, MAX_TICK
        still = [name for name in self.names if mins[name] == maxes[name]]
        if still:
            raise CalibrationAborted(
                f"no motion recorded for {', '.join(still)}: move every joint through its full range during the "
                "recording, then run again. Homing offsets are already on the servos; nothing else was written"
            )
        calibration = {
            name: MotorCalibration(
                id=self.motor_ids[name],
                drive_mode=0,
                homing_offset=offsets[name],
                range_min=mins[name],
                range_max=maxes[name],
            )
            for name in self.names
        }
        narrow = narrow_ranges(calibration)
        if narrow and not self.force:
            raise CalibrationAborted(
                describe_narrow_ranges(narrow, "recorded ranges")
                + ". Homing offsets are already on the servos; nothing else was written. To keep these ranges "
                "(a joint that cannot move further), run again with --force"
            )
        if narrow:
            self.say("warning (--force): " + "; ".join(narrow))
        write_calibration_to_motors(self.bus, calibration)
        return calibration


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m so101_driver.hardware.calibrate",
        description=(
            "Calibrate an SO-101 follower or leader arm the way lerobot-calibrate does, and save LeRobot's "
            "calibration JSON (usable by LeRobot and by this project's drivers). You will be asked to put the arm "
            "in the middle of its range, then to move every joint through its full range. The homing offsets and "
            "the recorded limits are written to the servos' EEPROM. If a calibration file already exists you can "
            "press ENTER to just write it to the motors."
        ),
        epilog=(
            "Conversions from the resulting file: so101_driver.hardware.calibration "
            "(ticks, LeRobot values, URDF radians)."
        ),
    )
    parser.add_argument("--port", required=True, help="serial port of the arm's bus, ideally /dev/serial/by-id/...")
    parser.add_argument("--kind", required=True, choices=("follower", "leader"), help="which arm is on --port")
    parser.add_argument(
        "--id",
        dest="robot_id",
        help="the arm's name, LeRobot's --robot.id / --teleop.id; names the file <id>.json (required unless --out "
        "or --write-only is given)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        help="calibration file to write; default: LeRobot's location $HF_LEROBOT_CALIBRATION/robots/so_follower/"
        "<id>.json (teleoperators/so_leader for a leader), or the existing so101_* file from LeRobot <= 0.4.2",
    )
    parser.add_argument(
        "--write-only",
        type=Path,
        metavar="FILE",
        help="write the calibration in FILE to the motors (homing offsets and limits) without recording a new one",
    )
    parser.add_argument(
        "--record-wrist-roll",
        action="store_true",
        help="record wrist_roll's range like LeRobot <= 0.4.2 did; default: 0..4095 (full turn) like LeRobot >= 0.4.3",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="accept a recorded range or a file in which a joint spans less than its minimum (a tenth of its URDF "
        "travel, e.g. 251 ticks for shoulder_pan); default: refuse, since a joint not moved during calibration gets "
        "a wrong zero and servo limits that lock it",
    )
    from so101_driver.hardware.feetech.bus import SUPPORTED_BAUDRATES

    parser.add_argument(
        "--baudrate",
        type=one_of_ints(SUPPORTED_BAUDRATES),
        default=ct.FACTORY_BAUDRATE,
        help=f"bus baud rate, one the servos take: {', '.join(map(str, SUPPORTED_BAUDRATES))} (default 1000000)",
    )
    return parser


def _target_path(args: argparse.Namespace) -> Path:
    if args.out is not None:
        return args.out.expanduser()
    if not args.robot_id:
        raise CalibrationAborted("give --id NAME (the arm's LeRobot id) or --out FILE to say where to save")
    return find_lerobot_calibration(args.kind, args.robot_id, must_exist=False)


def _print_calibration(calibration: Calibration, out: TextIO) -> None:
    print(f"{'JOINT':<15}{'ID':>4}{'OFFSET':>8}{'MIN':>7}{'MAX':>7}", file=out)
    for name, m in calibration.items():
        print(f"{name:<15}{m.id:>4}{m.homing_offset:>8}{m.range_min:>7}{m.range_max:>7}", file=out)


def main(
    argv: Sequence[str] | None = None,
    input_fn: InputFn = input,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Run the CLI; returns the exit status (0 done, 1 failed with a message on ``err``, 130 interrupted)."""
    out = out if out is not None else sys.stdout
    err = err if err is not None else sys.stderr
    args = build_parser().parse_args(argv)
    from so101_driver.hardware.feetech.bus import BusError, FeetechBus

    bus = None
    try:
        existing: Calibration | None = None
        if args.write_only is not None:
            existing = load_calibration(args.write_only, warn_narrow=False)
            narrow = narrow_ranges(existing)
            if narrow and not args.force:
                message = describe_narrow_ranges(narrow, str(args.write_only))
                raise CalibrationError(f"{message}; or pass --force to write it anyway")
            target = None
        else:
            target = _target_path(args)
            if target.is_file():
                try:
                    candidate = load_calibration(target, warn_narrow=False)
                    if not args.force:
                        check_ranges(candidate, str(target))
                except CalibrationError as exc:
                    print(f"The existing file cannot be used ({exc}); recording a new calibration.", file=out)
                else:
                    answer = input_fn(
                        f"Calibration file {target} exists. Press ENTER to write it to the motors, or type 'c' "
                        "and ENTER to run a new calibration: "
                    )
                    if answer.strip().lower() != "c":
                        existing = candidate
        motor_ids = {name: existing[name].id for name in JOINT_NAMES} if existing else DEFAULT_MOTOR_IDS
        bus = FeetechBus(args.port, [motor_ids[name] for name in JOINT_NAMES], baudrate=args.baudrate)
        bus.open()
        if existing is not None:
            write_calibration_to_motors(bus, existing)
            print(f"Wrote {args.write_only or target} to the {args.kind} motors on {args.port}:", file=out)
            _print_calibration(existing, out)
            return 0
        print(f"Calibrating the {args.kind} arm on {args.port}.", file=out)
        calibrator = ArmCalibrator(
            bus, input_fn, out, motor_ids, record_wrist_roll=args.record_wrist_roll, force=args.force
        )
        calibration = calibrator.run()
        save_calibration(target, calibration)
        print(f"Calibration written to the motors and saved to {target}:", file=out)
        _print_calibration(calibration, out)
        return 0
    except (CalibrationError, CalibrationAborted, BusError, EOFError) as exc:
        text = str(exc) or "no answer (stdin is closed): run the calibration in a terminal"
        print(f"error: {text}", file=err)
        return 1
    except KeyboardInterrupt:
        print("interrupted: the servos may hold new homing offsets but no saved calibration; run again", file=err)
        return 130
    finally:
        if bus is not None:
            bus.close()


if __name__ == "__main__":
    sys.exit(main())
