"""One real SO-101 arm on its Feetech bus as plain Python: the follower and leader nodes' logic without ROS.

``Arm`` checks the configuration and the servos at start, reads the bus once per period in its own thread (handing
each reading to ``on_state`` in radians, rad/s and N m), writes commands through the JointCommandGuard (limits, max
step, watchdog), moves to the rest pose on request, reconnects a vanished port, and at ``stop`` does what
``on_shutdown`` says. The serial bus is half duplex, so the read thread and the command callers share one lock: a
command waits at most for the read in flight (~1 ms at 1 Mbps) and is written at once. Units: radians on the
outside, servo ticks on the bus; the one conversion is so101_driver.hardware.calibration.JointConversion.

Safety: after a (re)connect the goal is set to the present position before the torque comes on, so a servo that was
power-cycled does not jump to a stale goal; the arm refuses to start (``ArmRefused``, a message naming the fix) when
the port is missing or the servos' homing offsets and limits differ from the calibration file.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from so101_contract import diagnostics
from so101_contract.control import JOINT_STATE_RATE_HZ
from so101_contract.joints import JOINT_NAMES
from so101_contract.settings import setting, table
from so101_driver.hardware.calibrate import read_motor_calibration
from so101_driver.hardware.calibration import (
    CalibrationError,
    JointConversion,
    find_lerobot_calibration,
    load_calibration,
)
from so101_driver.hardware.feetech import control_table as ct
from so101_driver.hardware.feetech.bus import BusDisconnected, BusError, FeetechBus
from so101_driver.hardware.feetech.ports import PortNotFoundError, resolve_port
from so101_driver.model.joint_safety import CommandLimits, JointCommandGuard
from so101_driver.model.kinematics import Kinematics

STS3215_STALL_TORQUE_NM = 2.94  # 12 V STS3215 (30 kg cm); Present_Load is in 0.1 % of it
# "limp", not "off": ROS parameter overrides are YAML, which reads a bare off as false
SHUTDOWN_MODES = ("rest", "hold", "limp")
FALL_BEHIND_S = 0.5  # the read loop this far behind restarts its pacing instead of reading in a burst
HOT_C = 60  # diagnostics warn from this servo temperature (they cut out at 70 C)


@dataclass(frozen=True)
class ArmConfig:
    """An arm driver's settings (the follower's and leader's parameters), with the follower's defaults."""

    port: str = setting("", "serial port of the bus: a path (prefer /dev/serial/by-id/...) or a by-id name fragment")
    calibration_file: str = setting("", "LeRobot calibration JSON; '' = LeRobot's location for robot_id")
    robot_id: str = setting("", "LeRobot robot/teleoperator id, used to find the calibration file")
    baudrate: int = setting(
        ct.FACTORY_BAUDRATE, "bus baud rate (the STS3215 factory default is 1 Mbps)", (4800, 1_000_000)
    )
    retries: int = setting(2, "retries of a failed bus transaction before it counts as an error", (0, 10))
    state_rate_hz: float = setting(
        JOINT_STATE_RATE_HZ, "joint state rate (Hz): one sync read per period", (1.0, 1000.0)
    )
    reconnect_timeout_s: float = setting(2.0, "each reopen attempt of a vanished port lasts this", (0.1, 60.0))
    torque_on_start: bool = setting(True, "enable the torque at start (leader: False = limp)")
    pid: tuple[int, ...] = setting((16, 0, 32), "position P, I, D coefficients written at start")
    limits: CommandLimits = field(default_factory=CommandLimits)
    on_shutdown: str = setting("rest", "at shutdown: rest (then limp), hold, limp", SHUTDOWN_MODES)
    rest_pose: tuple[float, ...] = setting(
        (0.0, -1.57, 1.57, 0.75, 0.0, 0.0), "rest pose (rad, JOINT_NAMES order): arm folded"
    )
    rest_duration_s: float = setting(3.0, "time to move to the rest pose (s)", (0.0, 5.0))
    diagnostics_period_s: float = setting(1.0, "diagnostics period (s)", (0.1, 60.0))


def _leader(name: str, default):
    """A follower setting with the leader's default (same description and bounds)."""
    _, description, bounds = table(ArmConfig)[name]
    return setting(default, description, bounds)


@dataclass(frozen=True)
class LeaderConfig(ArmConfig):
    """The leader's defaults: limp so a person can move it, low gains when the intervention node powers it."""

    torque_on_start: bool = _leader("torque_on_start", False)
    pid: tuple[int, ...] = _leader("pid", (8, 0, 0))
    on_shutdown: str = _leader("on_shutdown", "limp")


class ArmRefused(Exception):
    """The arm cannot start; the message names the fix."""


OnState = Callable[[np.ndarray, np.ndarray, np.ndarray], None]  # positions (rad), velocities (rad/s), efforts (N m)


class Arm:
    """One arm (``role`` follower or leader); see the module docstring. ``open`` then ``start``; ``stop`` at the
    end. Raises ArmRefused for a configuration or servos it cannot run with. ``logger`` is the node's (info,
    warning and error, with rclpy's ``throttle_duration_sec``); the read loop ends when ``alive()`` turns False (the
    caller's context is gone)."""

    def __init__(self, role: str, config: ArmConfig, on_state: OnState, logger, alive=lambda: True):
        self.role, self.config, self._on_state, self.log, self._alive = role, config, on_state, logger, alive
        self.rest_pose = np.asarray(config.rest_pose, float)
        if len(self.rest_pose) != len(JOINT_NAMES):
            raise ArmRefused(f"rest_pose needs {len(JOINT_NAMES)} values, one per joint {JOINT_NAMES}")
        if not config.port:
            raise ArmRefused(
                "parameter port is empty: pass the bus's serial port, e.g. -p port:=/dev/serial/by-id/usb-1a86_"
                "USB_Single_Serial_5A46-if00 (ls /dev/serial/by-id; a udev rule can name it so101_" + role + ")"
            )
        try:
            file = config.calibration_file
            self.calibration_path = Path(file) if file else find_lerobot_calibration(role, config.robot_id)
            self.calibration = load_calibration(self.calibration_path)
            self.conversion = JointConversion(self.calibration)
        except CalibrationError as err:
            raise ArmRefused(
                f"{err}. Calibrate with: python -m so101_driver.hardware.calibrate --kind {role} --port {config.port}"
            ) from None
        try:  # a by-id fragment becomes its path; the link is kept, so a replug is followed
            self.port = resolve_port(config.port)
        except PortNotFoundError as err:
            raise ArmRefused(str(err)) from None
        motor_ids = [self.calibration[name].id for name in JOINT_NAMES]  # the calibration file names the servo ids
        kinematics = Kinematics()
        limits = config.limits
        self.guard = JointCommandGuard(
            JOINT_NAMES, kinematics.lower, kinematics.upper, limits.max_joint_step, limits.command_timeout_s
        )
        self.bus = FeetechBus(self.port, motor_ids, baudrate=config.baudrate, retries=config.retries)
        self._bus_lock = threading.Lock()
        self._state_lock = threading.Lock()
        self._positions: np.ndarray | None = None
        self._reading = None
        self.torque = bool(config.torque_on_start)
        self.connected = False
        self.disconnects = 0
        self._stamps: deque[float] = deque(maxlen=200)
        self._rest_plan: tuple[float, np.ndarray, np.ndarray] | None = None  # (start, from, to)
        self._running = False
        self._thread: threading.Thread | None = None

    # ---- start-up ----
    def open(self) -> None:
        """Open the bus, check the servos against the calibration, then position mode, gains and torque."""
        try:
            self.bus.open()
            self._configure()
        except BusError as err:
            self.bus.close()
            raise ArmRefused(f"cannot start the {self.role} on {self.port}: {err}") from None

    def start(self) -> None:
        """The read loop's thread (after ``open``)."""
        self._running = True
        self._thread = threading.Thread(target=self._read_loop, name=f"{self.role}-bus", daemon=True)
        self._thread.start()

    def _configure(self) -> None:
        mismatches = []
        held = read_motor_calibration(self.bus, {name: self.calibration[name].id for name in JOINT_NAMES})
        for name in JOINT_NAMES:
            expected, found = self.calibration[name], held[name]
            for key in ("homing_offset", "range_min", "range_max"):
                if getattr(found, key) != getattr(expected, key):
                    mismatches.append(
                        f"{name} (id {expected.id}) {key}: servo {getattr(found, key)}, file {getattr(expected, key)}"
                    )
        if mismatches:
            raise BusError(
                "the servos do not hold the calibration file's values (" + "; ".join(mismatches) + "). Write the file "
                "to the servos with python -m so101_driver.hardware.calibrate --write-only FILE, or recalibrate"
            )
        self.bus.set_torque(False)
        for motor_id in self.bus.motor_ids:
            self.bus.write_register(motor_id, "Operating_Mode", 0)  # position mode
        self.bus.set_pid(*[int(g) for g in self.config.pid])
        self._hold_and_apply_torque()

    def _hold_and_apply_torque(self) -> None:
        """Goal := present position, then the torque as wanted: nothing moves when the torque comes on."""
        present = self.bus.read_positions()
        self.bus.write_goal_positions(present)
        self.bus.set_torque(self.torque)
        self.guard.target = None
        self.connected = True

    # ---- the read loop (its own thread) ----
    def _read_loop(self) -> None:
        period = 1.0 / self.config.state_rate_hz
        next_tick = time.monotonic()
        while self._running and self._alive():
            try:
                if not self.connected:
                    self._reconnect()
                    next_tick = time.monotonic()
                    continue
                with self._bus_lock:
                    reading = self.bus.read_arm()
                self._take(reading)
                self._supervise()
            except BusDisconnected as err:
                self.connected = False
                self.disconnects += 1
                self.log.error(f"{self.role} bus lost: {err}; reopening")
            except BusError as err:  # a transaction failed after its retries: skip this period, keep going
                self.log.warning(f"{self.role} read failed: {err}", throttle_duration_sec=2.0)
            next_tick += period
            delay = next_tick - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            elif delay < -FALL_BEHIND_S:
                next_tick = time.monotonic()

    def _reconnect(self) -> None:
        with self._bus_lock:
            if not self.bus.reopen(self.config.reconnect_timeout_s):
                return
            try:
                self._hold_and_apply_torque()
            except BusError as err:
                self.bus.close()
                self.log.warning(f"{self.role} reopened but not ready: {err}", throttle_duration_sec=2.0)
                return
        self.log.info(f"{self.role} bus back after a disconnect; holding the present position")

    def _take(self, reading) -> None:
        positions = self.conversion.ticks_to_radians(reading.positions)
        velocities = self.conversion.velocity_ticks_to_rad_s(reading.velocities)
        efforts = np.asarray(reading.loads, float) * 1e-3 * STS3215_STALL_TORQUE_NM
        with self._state_lock:
            self._positions, self._reading = positions, reading
            self._stamps.append(reading.monotonic_s)
        if self._running:  # never after stop asked the thread to end
            self._on_state(positions, velocities, efforts)

    def _supervise(self) -> None:
        """Watchdog hold and the rest-pose motion, once per read."""
        now = time.monotonic()
        with self._state_lock:
            positions = self._positions
        if self._rest_plan is not None:
            start, origin, goal = self._rest_plan
            fraction = min(1.0, (now - start) / max(self.config.rest_duration_s, 1e-3))
            target = origin + fraction * (goal - origin)
            if fraction >= 1.0:
                self._rest_plan = None
        else:
            target = self.guard.check_watchdog(positions, now)
        if target is not None and self.torque:
            with self._bus_lock:
                self.bus.write_goal_positions(self.conversion.radians_to_ticks(target))

    # ---- commands (any thread) ----
    def command(self, names: Sequence[str], positions: Sequence[float]) -> None:
        """Goal positions by joint name, through the guard; written at once when the torque is on."""
        with self._state_lock:
            measured = self._positions
        if measured is None or not self.connected:
            return
        result = self.guard.apply(names, positions, measured, time.monotonic())
        if result.target is None:
            self.log.warning(f"{self.role} command rejected: {result.rejected}", throttle_duration_sec=1.0)
            return
        self._rest_plan = None
        if not self.torque:
            return  # limp: the command is remembered by the guard but nothing moves
        try:
            with self._bus_lock:
                self.bus.write_goal_positions(self.conversion.radians_to_ticks(result.target))
        except BusError as err:
            self.log.warning(f"{self.role} command not written: {err}", throttle_duration_sec=1.0)

    def set_torque(self, enabled: bool) -> tuple[bool, str]:
        """Torque on (holding where it is, with the configured gains) or off; (success, message)."""
        try:
            with self._bus_lock:
                if enabled:
                    self.bus.write_goal_positions(self.bus.read_positions())
                self.bus.set_torque(enabled)
        except BusError as err:
            return False, f"{self.role} torque not changed: {err}"
        self.torque = enabled
        self.guard.target = None
        self._rest_plan = None
        return True, f"{self.role} torque {'on' if enabled else 'off'}"

    def rest(self) -> tuple[bool, str]:
        """Move to the rest pose over rest_duration_s (the read loop drives it); (success, message)."""
        with self._state_lock:
            positions = self._positions
        if positions is None or not self.torque:
            return False, f"{self.role}: no state yet or torque off; nothing moved"
        self._rest_plan = (time.monotonic(), positions.copy(), self.rest_pose.copy())
        return True, f"{self.role} moving to the rest pose over {self.config.rest_duration_s:g} s"

    # ---- diagnostics ----
    def state_rate(self) -> float:
        with self._state_lock:
            stamps = list(self._stamps)
        if len(stamps) < 2 or time.monotonic() - stamps[-1] > 1.0:
            return 0.0
        return (len(stamps) - 1) / (stamps[-1] - stamps[0])

    def diagnostics(self) -> tuple[bytes, str, dict[str, str]]:
        """(level, message, values) of the bus's health; the worst condition decides the level."""
        stats = self.bus.stats
        with self._state_lock:
            reading = self._reading
        values = {
            "state_rate_hz": f"{self.state_rate():.1f}",
            "connected": str(self.connected),
            "torque": str(self.torque),
            "error_rate": f"{stats.error_rate:.4f}",
            "transactions": str(stats.transactions),
            "failures": str(stats.failures),
            "retries": str(stats.retries),
            "corrupt_packets": str(stats.corrupt_packets),
            "timeouts": str(stats.timeouts),
            "reconnects": str(stats.reconnects),
            "disconnects": str(self.disconnects),
            "status_errors": ", ".join(f"{k}: {v}" for k, v in stats.error_bits_seen.items()) or "none",
            "last_error": stats.last_error or "none",
            "commands_clamped": str(self.guard.clamped),
            "commands_rejected": str(self.guard.rejected),
        }
        level, message = diagnostics.OK, "ok"
        if reading is not None:
            values["max_temperature_c"] = str(int(np.max(reading.temperatures)))
            values["min_voltage_v"] = f"{float(np.min(reading.voltages)):.1f}"
            if np.max(reading.temperatures) >= HOT_C:
                level, message = diagnostics.WARN, "a servo is hot (>= 60 C; they cut out at 70 C)"
        if stats.error_rate > 0.01:
            level, message = diagnostics.WARN, f"bus error rate {stats.error_rate:.1%}: check cable and power"
        if stats.error_bits_seen:
            level = diagnostics.WARN
            message = "servo status errors: " + ", ".join(stats.error_bits_seen)
        if not self.connected:
            level, message = diagnostics.ERROR, "bus disconnected: reopening"
        return level, message, values

    # ---- shutdown ----
    def stop(self) -> None:
        """End the read loop, do what on_shutdown says (rest then limp, hold, limp) and close the bus."""
        self._running = False
        thread, self._thread = self._thread, None
        if thread is None:
            return  # never started (open closed the bus if it failed), or stopped already
        thread.join(timeout=2.0)
        try:
            self._shutdown_arm()
        except BusError as err:
            self.log.warning(f"{self.role}: shutdown behaviour '{self.config.on_shutdown}' not completed: {err}")
        self.bus.close()

    def _shutdown_arm(self) -> None:
        if not self.connected or self.config.on_shutdown == "hold":
            return
        duration = self.config.rest_duration_s
        if self.config.on_shutdown == "rest" and self.torque and self._positions is not None:
            origin, steps = self._positions.copy(), max(1, int(duration * 50))
            for i in range(1, steps + 1):
                target = origin + i / steps * (self.rest_pose - origin)
                self.bus.write_goal_positions(self.conversion.radians_to_ticks(target))
                time.sleep(duration / steps)
        self.bus.set_torque(False)
