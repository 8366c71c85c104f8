"""follower and leader: the real SO-101 arms on their Feetech buses, with exactly the topics the simulation uses.

    follower/joint_states (100 Hz) <- one sync read of the bus per period (positions, velocities, loads, ...)
    follower/joint_commands        -> JointCommandGuard (limits, max step) -> one sync write of goal positions
    follower/enable_torque, follower/rest (services); /diagnostics (bus error rate, reconnects, temperatures)

The same node class drives the leader (role "leader"): limp by default so a person can move it; with its torque on
(the intervention node does this while the policy drives) it tracks leader/joint_commands with low gains.

One thread owns the read loop; command callbacks write from the executor thread. The serial bus is half duplex, so
both take one lock: a command waits at most for the read in flight (~1 ms at 1 Mbps) and is written at once, rather
than at the next read tick. Units: radians and rad/s on the topics, servo ticks on the bus; the one conversion is
so101_driver.hardware.calibration.JointConversion (LeRobot's calibration files).

Safety: commands are clamped to the URDF limits and to ``max_joint_step`` from the measured position; a watchdog
holds the arm where it is when commands stop for ``command_timeout_s``; after a reconnect the goal is set to the
present position before the torque is re-enabled, so a servo that was power-cycled does not jump to a stale goal.
The node refuses to start (exit code 2, a fatal log naming the fix) when the port is missing or when the servos'
homing offsets and limits differ from the calibration file (the seed system lost runs to zeros that differed
between tools).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from pathlib import Path

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.node import Node
from sensor_msgs.msg import JointState
from std_srvs.srv import SetBool, Trigger

from so101_contract import diagnostics, qos
from so101_contract.diagnostics import diagnostic_array
from so101_contract.joints import JOINT_NAMES
from so101_contract.node_main import DEFAULT_SHUTDOWN_TIMEOUT_S, EXIT_REFUSED
from so101_contract.parameters import ParameterError, declare
from so101_driver.hardware.calibrate import read_motor_calibration
from so101_driver.hardware.calibration import (
    CalibrationError,
    JointConversion,
    find_lerobot_calibration,
    load_calibration,
)
from so101_driver.hardware.feetech.bus import SUPPORTED_BAUDRATES, BusDisconnected, BusError, FeetechBus
from so101_driver.hardware.feetech.ports import PortNotFoundError, resolve_port
from so101_driver.model.joint_safety import JointCommandGuard
from so101_driver.model.kinematics import Kinematics

STS3215_STALL_TORQUE_NM = 2.94  # 12 V STS3215 (30 kg cm); Present_Load is in 0.1 % of it
# "limp", not "off": ROS parameter overrides are YAML, which reads a bare off as false
SHUTDOWN_MODES = ("rest", "hold", "limp")


class ArmNode(Node):
    def __init__(self, role: str):
        super().__init__(role)
        self.role = role
        follower = role == "follower"
        port = declare(
            self, "port", "", "serial port of the bus: a path (prefer /dev/serial/by-id/...) or a by-id name fragment"
        )
        calibration_file = declare(
            self, "calibration_file", "", "LeRobot calibration JSON; '' = LeRobot's location for robot_id"
        )
        robot_id = declare(self, "robot_id", "", "LeRobot robot/teleoperator id, used to find the calibration file")
        baudrate = declare(
            self, "baudrate", 1_000_000, "bus baud rate (the STS3215 factory default is 1 Mbps)", (4800, 1_000_000)
        )
        retries = declare(
            self, "retries", 2, "retries of a failed bus transaction before it counts as an error", (0, 10)
        )
        self.state_rate_hz = declare(
            self, "state_rate_hz", 100.0, "joint state rate (Hz): one sync read per period", (1.0, 1000.0)
        )
        self.reconnect_timeout_s = declare(
            self, "reconnect_timeout_s", 2.0, "each reopen attempt of a vanished port lasts this", (0.1, 60.0)
        )
        self.torque_on_start = declare(
            self, "torque_on_start", follower, "enable the torque at start (leader: False = limp)"
        )
        gains = declare(
            self, "pid", [16, 0, 32] if follower else [8, 0, 0], "position P, I, D coefficients written at start"
        )
        max_step = declare(
            self,
            "max_joint_step",
            0.3,
            "largest target change per command from the measured position (rad)",
            (0.001, 3.2),
        )
        timeout = declare(self, "command_timeout_s", 0.5, "hold the arm when commands stop this long (s)", (0.01, 60.0))
        self.on_shutdown = declare(
            self,
            "on_shutdown",
            "rest" if follower else "limp",
            "at shutdown: rest (then limp), hold, limp",
            SHUTDOWN_MODES,
        )
        self.rest_pose = np.asarray(
            declare(
                self, "rest_pose", [0.0, -1.57, 1.57, 0.75, 0.0, 0.0], "rest pose (rad, JOINT_NAMES order): arm folded"
            ),
            float,
        )
        self.rest_duration_s = declare(self, "rest_duration_s", 3.0, "time to move to the rest pose (s)", (0.0, 5.0))
        # node_main's bound on the shutdown: the rest motion comes on top of the usual teardown (launch's SIGKILL
        # comes 10 s after its SIGINT, so rest_duration_s up to ~5 s fits)
        self.shutdown_timeout_s = DEFAULT_SHUTDOWN_TIMEOUT_S + max(0.0, self.rest_duration_s)
        self.diagnostics_period_s = declare(self, "diagnostics_period_s", 1.0, "diagnostics period (s)", (0.1, 60.0))

        if baudrate not in SUPPORTED_BAUDRATES:
            raise ParameterError(f"parameter baudrate={baudrate} is not allowed; expected one of {SUPPORTED_BAUDRATES}")
        if len(self.rest_pose) != len(JOINT_NAMES):
            self._refuse(f"rest_pose needs {len(JOINT_NAMES)} values, one per joint {JOINT_NAMES}")
        if not port:
            self._refuse(
                "parameter port is empty: pass the bus's serial port, e.g. -p port:=/dev/serial/by-id/usb-1a86_"
                "USB_Single_Serial_5A46-if00 (ls /dev/serial/by-id; a udev rule can name it so101_" + role + ")"
            )
        try:
            calibration_path = Path(calibration_file) if calibration_file else find_lerobot_calibration(role, robot_id)
            self.calibration = load_calibration(calibration_path)
            self.conversion = JointConversion(self.calibration)
        except CalibrationError as err:
            self._refuse(
                f"{err}. Calibrate with: python -m so101_driver.hardware.calibrate --kind {role} --port {port}"
            )

        try:
            port = resolve_port(port)  # a by-id fragment becomes its path; the link is kept, so a replug is followed
        except PortNotFoundError as err:
            self._refuse(str(err))
        motor_ids = [self.calibration[name].id for name in JOINT_NAMES]  # the calibration file names the servo ids
        kinematics = Kinematics()
        self.guard = JointCommandGuard(JOINT_NAMES, kinematics.lower, kinematics.upper, max_step, timeout)
        self.bus = FeetechBus(port, motor_ids, baudrate=baudrate, retries=retries)
        self._bus_lock = threading.Lock()
        self._state_lock = threading.Lock()
        self._positions: np.ndarray | None = None
        self._reading = None
        self._torque = bool(self.torque_on_start)
        self._connected = False
        self._disconnects = 0
        self._stamps: deque[float] = deque(maxlen=200)
        self._rest_plan: tuple[float, np.ndarray, np.ndarray] | None = None  # (start, from, to)
        self.command_latencies_s: deque[float] = deque(maxlen=1000)

        try:
            self.bus.open()
            self._configure(gains)
        except BusError as err:
            self.bus.close()
            self._refuse(f"cannot start the {role} on {port}: {err}")

        self.state_pub = self.create_publisher(JointState, f"{role}/joint_states", qos.SENSOR_DATA)
        self.diagnostics_pub = self.create_publisher(DiagnosticArray, diagnostics.TOPIC, diagnostics.DEPTH)
        self.create_subscription(JointState, f"{role}/joint_commands", self._on_command, qos.COMMAND)
        self.create_service(SetBool, f"{role}/enable_torque", self._on_torque)
        self.create_service(Trigger, f"{role}/rest", self._on_rest)
        self.create_timer(self.diagnostics_period_s, self._publish_diagnostics)
        self._running = True
        self._thread = threading.Thread(target=self._read_loop, name=f"{role}-bus", daemon=True)
        self._thread.start()
        self.get_logger().info(
            f"{role} up on {port}: {self.state_rate_hz:.0f} Hz, torque {'on' if self._torque else 'off'}, "
            f"calibration {calibration_path}"
        )

    # ---- start-up ----------------------------------------------------------------------------------------------

    def _refuse(self, message: str) -> None:
        self.get_logger().fatal(message)
        raise SystemExit(EXIT_REFUSED)

    def _configure(self, gains) -> None:
        """Check the servos against the calibration, then position mode, gains, and torque as configured."""
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
        self.bus.set_pid(*[int(g) for g in gains])
        self._hold_and_apply_torque()

    def _hold_and_apply_torque(self) -> None:
        """Goal := present position, then the torque as wanted: nothing moves when the torque comes on."""
        present = self.bus.read_positions()
        self.bus.write_goal_positions(present)
        self.bus.set_torque(self._torque)
        self.guard.target = None
        self._connected = True

    # ---- the read loop (its own thread) ------------------------------------------------------------------------
    def _read_loop(self) -> None:
        period = 1.0 / self.state_rate_hz
        next_tick = time.monotonic()
        while self._running and rclpy.ok(context=self.context):
            try:
                if not self._connected:
                    self._reconnect()
                    next_tick = time.monotonic()
                    continue
                with self._bus_lock:
                    reading = self.bus.read_arm()
                self._publish_state(reading)
                self._supervise(reading)
            except BusDisconnected as err:
                self._connected = False
                self._disconnects += 1
                self.get_logger().error(f"{self.role} bus lost: {err}; reopening")
            except BusError as err:  # a transaction failed after its retries: skip this period, keep going
                self.get_logger().warning(f"{self.role} read failed: {err}", throttle_duration_sec=2.0)
            next_tick += period
            delay = next_tick - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            elif delay < -0.5:
                next_tick = time.monotonic()

    def _reconnect(self) -> None:
        with self._bus_lock:
            if not self.bus.reopen(self.reconnect_timeout_s):
                return
            try:
                self._hold_and_apply_torque()
            except BusError as err:
                self.bus.close()
                self.get_logger().warning(f"{self.role} reopened but not ready: {err}", throttle_duration_sec=2.0)
                return
        self.get_logger().info(f"{self.role} bus back after a disconnect; holding the present position")

    def _publish_state(self, reading) -> None:
        positions = self.conversion.ticks_to_radians(reading.positions)
        msg = JointState(name=list(JOINT_NAMES), position=positions.tolist())
        msg.velocity = self.conversion.velocity_ticks_to_rad_s(reading.velocities).tolist()
        msg.effort = (np.asarray(reading.loads, float) * 1e-3 * STS3215_STALL_TORQUE_NM).tolist()
        msg.header.stamp = self.get_clock().now().to_msg()
        with self._state_lock:
            self._positions, self._reading = positions, reading
            self._stamps.append(reading.monotonic_s)
        if self._running:  # never after destroy_node asked the thread to stop
            self.state_pub.publish(msg)

    def _supervise(self, reading) -> None:
        """Watchdog hold and the rest-pose motion, once per read."""
        now = time.monotonic()
        with self._state_lock:
            positions = self._positions
        target = None
        if self._rest_plan is not None:
            start, origin, goal = self._rest_plan
            fraction = min(1.0, (now - start) / max(self.rest_duration_s, 1e-3))
            target = origin + fraction * (goal - origin)
            if fraction >= 1.0:
                self._rest_plan = None
        else:
            target = self.guard.check_watchdog(positions, now)
        if target is not None and self._torque:
            with self._bus_lock:
                self.bus.write_goal_positions(self.conversion.radians_to_ticks(target))

    # ---- commands and services (executor thread) ---------------------------------------------------------------
    def _on_command(self, msg: JointState) -> None:
        with self._state_lock:
            measured = self._positions
        if measured is None or not self._connected:
            return
        result = self.guard.apply(msg.name, msg.position, measured, time.monotonic())
        if result.target is None:
            self.get_logger().warning(f"{self.role} command rejected: {result.rejected}", throttle_duration_sec=1.0)
            return
        self._rest_plan = None
        if not self._torque:
            return  # limp: the command is remembered by the guard but nothing moves
        try:
            with self._bus_lock:
                self.bus.write_goal_positions(self.conversion.radians_to_ticks(result.target))
        except BusError as err:
            self.get_logger().warning(f"{self.role} command not written: {err}", throttle_duration_sec=1.0)

    def _on_torque(self, request: SetBool.Request, response: SetBool.Response) -> SetBool.Response:
        try:
            with self._bus_lock:
                if request.data:  # hold where it is, with the configured gains
                    self.bus.write_goal_positions(self.bus.read_positions())
                self.bus.set_torque(bool(request.data))
            self._torque = bool(request.data)
            self.guard.target = None
            self._rest_plan = None
            response.success, response.message = True, f"{self.role} torque {'on' if request.data else 'off'}"
        except BusError as err:
            response.success, response.message = False, f"{self.role} torque not changed: {err}"
        return response

    def _on_rest(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        with self._state_lock:
            positions = self._positions
        if positions is None or not self._torque:
            response.success, response.message = False, f"{self.role}: no state yet or torque off; nothing moved"
            return response
        self._rest_plan = (time.monotonic(), positions.copy(), self.rest_pose.copy())
        response.success = True
        response.message = f"{self.role} moving to the rest pose over {self.rest_duration_s:g} s"
        return response

    # ---- diagnostics ---------------------------------------------------------------------------------------------
    def state_rate(self) -> float:
        with self._state_lock:
            stamps = list(self._stamps)
        if len(stamps) < 2 or time.monotonic() - stamps[-1] > 1.0:
            return 0.0
        return (len(stamps) - 1) / (stamps[-1] - stamps[0])

    def _publish_diagnostics(self) -> None:
        stats = self.bus.stats
        with self._state_lock:
            reading = self._reading
        values = {
            "state_rate_hz": f"{self.state_rate():.1f}",
            "connected": str(self._connected),
            "torque": str(self._torque),
            "error_rate": f"{stats.error_rate:.4f}",
            "transactions": str(stats.transactions),
            "failures": str(stats.failures),
            "retries": str(stats.retries),
            "corrupt_packets": str(stats.corrupt_packets),
            "timeouts": str(stats.timeouts),
            "reconnects": str(stats.reconnects),
            "disconnects": str(self._disconnects),
            "status_errors": ", ".join(f"{k}: {v}" for k, v in stats.error_bits_seen.items()) or "none",
            "last_error": stats.last_error or "none",
            "commands_clamped": str(self.guard.clamped),
            "commands_rejected": str(self.guard.rejected),
        }
        level, message = diagnostics.OK, "ok"
        if reading is not None:
            values["max_temperature_c"] = str(int(np.max(reading.temperatures)))
            values["min_voltage_v"] = f"{float(np.min(reading.voltages)):.1f}"
            if np.max(reading.temperatures) >= 60:
                level, message = diagnostics.WARN, "a servo is hot (>= 60 C; they cut out at 70 C)"
        if stats.error_rate > 0.01:
            level, message = diagnostics.WARN, f"bus error rate {stats.error_rate:.1%}: check cable and power"
        if stats.error_bits_seen:
            level = diagnostics.WARN
            message = "servo status errors: " + ", ".join(stats.error_bits_seen)
        if not self._connected:
            level, message = diagnostics.ERROR, "bus disconnected: reopening"
        stamp = self.get_clock().now().to_msg()
        name = f"so101 {self.role} bus"
        self.diagnostics_pub.publish(diagnostic_array(stamp, name, self.bus.port, level, message, values))

    # ---- shutdown ------------------------------------------------------------------------------------------------
    def destroy_node(self) -> None:
        self._running = False
        thread = getattr(self, "_thread", None)
        if thread is not None:
            thread.join(timeout=2.0)
            try:
                self._shutdown_arm()
            except BusError as err:
                self.get_logger().warning(f"{self.role}: shutdown behaviour '{self.on_shutdown}' not completed: {err}")
            self.bus.close()
        super().destroy_node()

    def _shutdown_arm(self) -> None:
        if not self._connected or self.on_shutdown == "hold":
            return
        if self.on_shutdown == "rest" and self._torque and self._positions is not None:
            origin, steps = self._positions.copy(), max(1, int(self.rest_duration_s * 50))
            for i in range(1, steps + 1):
                self.bus.write_goal_positions(
                    self.conversion.radians_to_ticks(origin + i / steps * (self.rest_pose - origin))
                )
                time.sleep(self.rest_duration_s / steps)
        self.bus.set_torque(False)


class FollowerNode(ArmNode):
    def __init__(self):
        super().__init__("follower")


class LeaderNode(ArmNode):
    def __init__(self):
        super().__init__("leader")
