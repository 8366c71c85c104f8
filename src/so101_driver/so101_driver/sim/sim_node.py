"""so101_sim: the MuJoCo simulation as a ROS node, standing in for the follower driver, the leader driver (moved by
a simulated operator) and the wrist camera. It publishes and consumes exactly the topics the hardware drivers do,
so every node above it is the same in simulation and on the robot.

The simulation itself (stepping, the camera and state schedule, resets, lockstep holds, what is sent when) is
so101_driver.sim.simulation, plain Python; this node declares its settings and wires it to topics and services.
On shutdown ``destroy_node`` stops the simulation's threads before the node and the context go away.
"""

from __future__ import annotations

import so101_contract.quiet_interrupt  # noqa: F401  (first: Ctrl-C during the heavy imports below is quiet)

# isort: split
import numpy as np
import rclpy
from geometry_msgs.msg import Point, PoseStamped
from rclpy.node import Node
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import CameraInfo, Image, JointState
from std_msgs.msg import Bool, UInt8
from std_srvs.srv import SetBool

from so101_contract import qos
from so101_contract.joints import JOINT_NAMES
from so101_contract.node_main import run_node
from so101_contract.parameters import ParameterError, declare_config
from so101_contract.sim_time import ADVANCE_TOPIC, CLOCK_TOPIC, PROGRESS_TOPIC
from so101_contract.stamps import ns_to_stamp, stamp_to_ns
from so101_driver.sim.simulation import SettingError, SimOutputs, Simulation, SimulationConfig
from so101_driver.vision.image_messages import array_to_image_msg, pinhole_camera_info
from so101_hilserl_interfaces.msg import LearnerProgress, RewardSignal
from so101_hilserl_interfaces.srv import OperatorCommand, ResetEpisode

CONFIG = SimulationConfig
THREAD_JOIN_TIMEOUT_S = 2.0  # all threads together; a render takes ~20 ms, a physics tick less


class SimNode(Node):
    def __init__(self):
        super().__init__("so101_sim")
        self.config = config = declare_config(self, CONFIG)
        outputs = SimOutputs(
            states=self._publish_states,
            camera=self._publish_camera,
            clock=self._publish_clock,
            pedal=self._press_pedal,
            alive=lambda: rclpy.ok(context=self.context),
        )
        try:
            now_ns = lambda: self.get_clock().now().nanoseconds  # noqa: E731
            self.sim = Simulation(config, outputs, self.get_logger(), wall_clock_ns=now_ns)
        except SettingError as err:
            raise ParameterError(f"parameter {err}") from None
        mode = config.clock.clock_mode

        self.follower_pub = self.create_publisher(JointState, "follower/joint_states", qos.SENSOR_DATA)
        self.leader_pub = self.create_publisher(JointState, "leader/joint_states", qos.SENSOR_DATA)
        self.image_pub = self.create_publisher(Image, "wrist_camera/image_raw", qos.SENSOR_DATA)
        self.info_pub = self.create_publisher(CameraInfo, "wrist_camera/camera_info", qos.SENSOR_DATA)
        self.grasp_pub = self.create_publisher(Bool, "sim/grasp_success", qos.EVENTS)
        self.cube_pub = self.create_publisher(PoseStamped, "sim/cube_pose", qos.EVENTS)
        self.reward_pub = None
        if config.publish_ground_truth_reward:
            self.reward_pub = self.create_publisher(RewardSignal, "reward/signal", qos.EVENTS)
        self.clock_pub = self.create_publisher(Clock, CLOCK_TOPIC, qos.CLOCK) if mode != "wall" else None
        self.pedal_pub = self.create_publisher(UInt8, "operator/commands", qos.EVENTS)
        self.create_subscription(JointState, "follower/joint_commands", self._on_follower_command, qos.COMMAND)
        self.create_subscription(JointState, "leader/joint_commands", self._on_leader_command, qos.COMMAND)
        self.create_service(ResetEpisode, "sim/reset", self._on_reset)
        self.create_service(SetBool, "follower/enable_torque", self._on_follower_torque)
        self.create_service(SetBool, "leader/enable_torque", self._on_leader_torque)
        # Lockstep: reliable, newest only, transient local: a grant or a backlog published before this node's
        # subscriptions matched (the actor starts faster than MuJoCo loads) still arrives, instead of both sides
        # waiting for each other for ever. The actor and the learner publish them transient local.
        if mode == "lockstep":
            self.create_subscription(Clock, ADVANCE_TOPIC, self._on_advance, qos.LATCHED)
            self.create_subscription(LearnerProgress, PROGRESS_TOPIC, self._on_progress, qos.LATCHED)

        width, height = config.camera_width, config.camera_height
        fx, fy, cx, cy = self.sim.world.camera_intrinsics()
        self._camera_info = pinhole_camera_info(width, height, fx, fy, cx, cy, config.camera_frame_id)
        self.sim.start()
        pace = {
            "wall": "real time",
            "sim": f"{config.clock.real_time_factor:g} x real time",
            "lockstep": "as fast as the actor and learner allow",
        }
        self.get_logger().info(
            f"simulation up: states {config.state_rate_hz:.0f} Hz, camera {width}x{height} at "
            f"{config.camera_rate_hz:.0f} Hz, operator {config.operator.operator_mode}, seed {config.seed}, clock "
            f"{mode} ({pace[mode]})"
        )

    # ---- commands and services (executor thread) ----
    def _on_follower_command(self, msg: JointState) -> None:
        result = self.sim.follower_command(msg.name, msg.position)
        if result.rejected:
            self.get_logger().warning(f"follower command rejected: {result.rejected}", throttle_duration_sec=1.0)

    def _on_leader_command(self, msg: JointState) -> None:
        missing = self.sim.leader_command(msg.name, msg.position)
        if missing:
            self.get_logger().warning(f"leader command refused: bad or missing {missing}", throttle_duration_sec=1.0)

    def _on_reset(self, request: ResetEpisode.Request, response: ResetEpisode.Response) -> ResetEpisode.Response:
        seed, state = self.sim.reset(request.seed, request.randomize, request.operator_hands_off)
        response.success = True
        response.message = f"reset with seed {seed}" + (", operator hands off" if request.operator_hands_off else "")
        response.joint_positions = [float(v) for v in state["joint_positions"]]
        cube = state["cube_position"]
        response.cube_position = Point(x=float(cube[0]), y=float(cube[1]), z=float(cube[2]))
        return response

    def _on_follower_torque(self, request: SetBool.Request, response: SetBool.Response) -> SetBool.Response:
        self.sim.set_follower_torque(bool(request.data))
        response.success, response.message = True, f"follower torque {'on' if request.data else 'off'}"
        return response

    def _on_leader_torque(self, request: SetBool.Request, response: SetBool.Response) -> SetBool.Response:
        self.sim.set_leader_torque(bool(request.data))
        response.success, response.message = True, f"leader torque {'on' if request.data else 'off'}"
        return response

    def _on_advance(self, msg: Clock) -> None:
        self.sim.grant(stamp_to_ns(msg.clock))

    def _on_progress(self, msg: LearnerProgress) -> None:
        self.sim.progress(int(msg.update_backlog), stamp_to_ns(msg.header.stamp))

    # ---- the simulation's outputs (its threads) ----
    def _publish_states(self, stamp_ns: int, follower_q, follower_v, leader_q) -> None:
        stamp = ns_to_stamp(stamp_ns)
        self.follower_pub.publish(_joint_state(stamp, follower_q, follower_v))
        self.leader_pub.publish(_joint_state(stamp, leader_q))

    def _publish_camera(self, stamp_ns: int, image: np.ndarray, success: bool, cube_position, cube_quat) -> None:
        stamp, frame_id = ns_to_stamp(stamp_ns), self.config.camera_frame_id
        self._camera_info.header.stamp = stamp
        self.image_pub.publish(array_to_image_msg(image, "rgb8", stamp, frame_id))
        self.info_pub.publish(self._camera_info)
        self.grasp_pub.publish(Bool(data=bool(success)))
        self.cube_pub.publish(_pose(stamp, cube_position, cube_quat))
        if self.reward_pub is not None:
            signal = RewardSignal(probability=float(success), success=bool(success), threshold=0.5)
            signal.header.stamp, signal.header.frame_id = stamp, frame_id
            signal.model_id = "simulation-ground-truth"
            self.reward_pub.publish(signal)

    def _publish_clock(self, t_ns: int) -> None:
        self.clock_pub.publish(Clock(clock=ns_to_stamp(t_ns)))

    def _press_pedal(self, down: bool) -> bool:
        """A press is sent only once the intervention node listens (the topic keeps no history)."""
        if self.pedal_pub.get_subscription_count() == 0:
            return False
        command = OperatorCommand.Request.START_INTERVENTION if down else OperatorCommand.Request.END_INTERVENTION
        self.pedal_pub.publish(UInt8(data=command))
        return True

    def destroy_node(self) -> None:
        """Threads first, while the context is valid; one that outlives the join ends quietly at its next publish."""
        sim = getattr(self, "sim", None)
        if sim is not None:
            sim.stop(THREAD_JOIN_TIMEOUT_S)
        super().destroy_node()


def _joint_state(stamp, positions: np.ndarray, velocities: np.ndarray | None = None) -> JointState:
    msg = JointState(name=list(JOINT_NAMES), position=[float(v) for v in positions])
    if velocities is not None:
        msg.velocity = [float(v) for v in velocities]
    msg.header.stamp = stamp
    return msg


def _pose(stamp, position: np.ndarray, quat_wxyz: np.ndarray) -> PoseStamped:
    msg = PoseStamped()
    msg.header.stamp, msg.header.frame_id = stamp, "base_link"
    msg.pose.position.x, msg.pose.position.y, msg.pose.position.z = (float(v) for v in position)
    w, x, y, z = (float(v) for v in quat_wxyz)
    msg.pose.orientation.w, msg.pose.orientation.x, msg.pose.orientation.y, msg.pose.orientation.z = w, x, y, z
    return msg


def main(args=None) -> None:
    run_node(SimNode, args)


if __name__ == "__main__":
    main()
