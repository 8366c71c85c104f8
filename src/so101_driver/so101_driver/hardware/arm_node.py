"""follower and leader: the real SO-101 arms on their Feetech buses, with exactly the topics the simulation uses.

    follower/joint_states (100 Hz) <- one sync read of the bus per period (positions, velocities, loads, ...)
    follower/joint_commands        -> JointCommandGuard (limits, max step) -> one sync write of goal positions
    follower/enable_torque, follower/rest (services); /diagnostics (bus error rate, reconnects, temperatures)

The same node class drives the leader (role "leader", LeaderConfig's defaults): limp by default so a person can
move it; with its torque on (the intervention node does this while the policy drives) it tracks
leader/joint_commands with low gains. The bus logic is so101_driver.hardware.arm (plain Python); this node declares
the settings and wires the arm to topics, services and a diagnostics timer. It refuses to start (exit code 2, a
fatal log naming the fix) when the port is missing or the servos do not hold the calibration file's values.
"""

from __future__ import annotations

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
from so101_contract.parameters import ParameterError, declare_config
from so101_driver.hardware.arm import Arm, ArmConfig, ArmRefused, LeaderConfig
from so101_driver.hardware.feetech.bus import SUPPORTED_BAUDRATES

CONFIG = ArmConfig  # the follower's; the leader's is LeaderConfig (torque_on_start, pid and on_shutdown differ)
CONFIGS = {"follower": ArmConfig, "leader": LeaderConfig}


class ArmNode(Node):
    def __init__(self, role: str):
        super().__init__(role)
        self.role = role
        self.config = config = declare_config(self, CONFIGS[role])
        # node_main's bound on the shutdown: the rest motion comes on top of the usual teardown (launch's SIGKILL
        # comes 10 s after its SIGINT, so rest_duration_s up to ~5 s fits)
        self.shutdown_timeout_s = DEFAULT_SHUTDOWN_TIMEOUT_S + max(0.0, config.rest_duration_s)
        if config.baudrate not in SUPPORTED_BAUDRATES:
            raise ParameterError(
                f"parameter baudrate={config.baudrate} is not allowed; expected one of {SUPPORTED_BAUDRATES}"
            )
        try:
            alive = lambda: rclpy.ok(context=self.context)  # noqa: E731
            self.arm = Arm(role, config, self._publish_state, self.get_logger(), alive)
            self.arm.open()
        except ArmRefused as err:
            self.get_logger().fatal(str(err))
            raise SystemExit(EXIT_REFUSED) from None

        self.state_pub = self.create_publisher(JointState, f"{role}/joint_states", qos.SENSOR_DATA)
        self.diagnostics_pub = self.create_publisher(DiagnosticArray, diagnostics.TOPIC, diagnostics.DEPTH)
        self.create_subscription(JointState, f"{role}/joint_commands", self._on_command, qos.COMMAND)
        self.create_service(SetBool, f"{role}/enable_torque", self._on_torque)
        self.create_service(Trigger, f"{role}/rest", self._on_rest)
        self.create_timer(config.diagnostics_period_s, self._publish_diagnostics)
        self.arm.start()
        self.get_logger().info(
            f"{role} up on {self.arm.port}: {config.state_rate_hz:.0f} Hz, torque {'on' if self.arm.torque else 'off'}"
            f", calibration {self.arm.calibration_path}"
        )

    def _publish_state(self, positions: np.ndarray, velocities: np.ndarray, efforts: np.ndarray) -> None:
        msg = JointState(name=list(JOINT_NAMES), position=positions.tolist())
        msg.velocity, msg.effort = velocities.tolist(), efforts.tolist()
        msg.header.stamp = self.get_clock().now().to_msg()
        self.state_pub.publish(msg)

    def _on_command(self, msg: JointState) -> None:
        self.arm.command(msg.name, msg.position)

    def _on_torque(self, request: SetBool.Request, response: SetBool.Response) -> SetBool.Response:
        response.success, response.message = self.arm.set_torque(bool(request.data))
        return response

    def _on_rest(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        response.success, response.message = self.arm.rest()
        return response

    def _publish_diagnostics(self) -> None:
        level, message, values = self.arm.diagnostics()
        stamp = self.get_clock().now().to_msg()
        name = f"so101 {self.role} bus"
        self.diagnostics_pub.publish(diagnostic_array(stamp, name, self.arm.bus.port, level, message, values))

    def destroy_node(self) -> None:
        """The read loop first, then the shutdown behaviour (on_shutdown), while the context is valid."""
        arm = getattr(self, "arm", None)
        if arm is not None:
            arm.stop()
        super().destroy_node()


class FollowerNode(ArmNode):
    def __init__(self):
        super().__init__("follower")


class LeaderNode(ArmNode):
    def __init__(self):
        super().__init__("leader")
