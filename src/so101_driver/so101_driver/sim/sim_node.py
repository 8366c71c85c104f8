"""so101_sim: the MuJoCo simulation as a ROS node, standing in for the follower driver, the leader driver (moved by
a simulated operator) and the wrist camera. It publishes and consumes exactly the topics the hardware drivers do,
so every node above it is the same in simulation and on the robot.

Two threads do the work so that neither waits for the other: the physics thread steps the world in real time at
the joint-state rate and publishes both arms' joint states; the camera thread renders a snapshot of the newest
state at the camera rate (rendering takes ~20 ms and runs in parallel, MuJoCo releases the GIL). On shutdown
``destroy_node`` sets their stop event and joins them before the node and the context go away (node_main's order),
and neither publishes once the event is set.
"""

from __future__ import annotations

import threading
import time

import mujoco
import numpy as np
import rclpy
from geometry_msgs.msg import Point, PoseStamped
from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, Image, JointState
from std_msgs.msg import Bool
from std_srvs.srv import SetBool

from so101_contract import qos
from so101_contract.joints import JOINT_NAMES, positions_by_name
from so101_contract.node_main import run_node
from so101_contract.parameters import declare
from so101_driver.model.joint_safety import JointCommandGuard
from so101_driver.sim.grasp_controller import ScriptedGrasp
from so101_driver.sim.operator import MODES, LeaderArm, OperatorConfig, SimulatedOperator
from so101_driver.sim.scene import SceneConfig
from so101_driver.sim.world import SimConfig, SimWorld
from so101_driver.vision.image_messages import array_to_image_msg, pinhole_camera_info
from so101_hilserl_interfaces.msg import RewardSignal
from so101_hilserl_interfaces.srv import ResetEpisode

THREAD_JOIN_TIMEOUT_S = 2.0  # both threads together; a render takes ~20 ms, a physics tick less


class SimNode(Node):
    def __init__(self):
        super().__init__("so101_sim")
        seed = declare(self, "seed", 0, "seed of the scene randomisation and the simulated operator", (0, 2**31 - 1))
        self.state_rate_hz = declare(self, "state_rate_hz", 100.0, "joint state rate of both arms (Hz)", (1.0, 1000.0))
        self.camera_rate_hz = declare(self, "camera_rate_hz", 10.0, "wrist image rate (Hz)", (0.1, 100.0))
        width = declare(self, "camera_width", 640, "wrist image width (px), as the real camera", (16, 4096))
        height = declare(self, "camera_height", 480, "wrist image height (px), as the real camera", (16, 4096))
        self.camera_frame_id = declare(self, "camera_frame_id", "wrist_camera_optical_frame", "frame of the images")
        max_step = declare(
            self, "max_joint_step", 0.3, "largest follower target change per command (rad)", (0.001, 3.2)
        )
        timeout = declare(
            self, "command_timeout_s", 0.5, "hold the follower when commands stop this long (s)", (0.01, 60.0)
        )
        operator_mode = declare(self, "operator_mode", "correct", "simulated operator: correct, demo or none", MODES)
        reaction = declare(self, "operator_reaction_delay_s", 0.4, "operator's reaction delay (s)", (0.0, 10.0))
        probability = declare(
            self, "operator_intervene_probability", 1.0, "chance the operator corrects when due", (0.0, 1.0)
        )
        self.publish_reward = declare(
            self, "publish_ground_truth_reward", False, "publish reward/signal from ground truth, not a classifier"
        )

        urdf_path = declare(self, "urdf_path", "", "robot URDF with the wrist camera joints; '' = the project's")
        scene = SceneConfig(urdf_path=urdf_path or None)
        self.world = SimWorld(SimConfig(scene=scene, camera_width=width, camera_height=height), seed=seed)
        kinematics = self.world.kinematics
        self.follower_guard = JointCommandGuard(JOINT_NAMES, kinematics.lower, kinematics.upper, max_step, timeout)
        operator_config = OperatorConfig(
            mode=operator_mode, reaction_delay_s=reaction, intervene_probability=probability
        )
        self.operator = SimulatedOperator(kinematics, ScriptedGrasp(), operator_config, seed=seed)
        self.leader = LeaderArm(kinematics, seed=seed)
        self._rng = np.random.default_rng(seed)
        self._lock = threading.Lock()  # guards the world, the leader and the operator
        self._reset_locked(seed=seed, randomize=True)

        self.follower_pub = self.create_publisher(JointState, "follower/joint_states", qos.SENSOR_DATA)
        self.leader_pub = self.create_publisher(JointState, "leader/joint_states", qos.SENSOR_DATA)
        self.image_pub = self.create_publisher(Image, "wrist_camera/image_raw", qos.SENSOR_DATA)
        self.info_pub = self.create_publisher(CameraInfo, "wrist_camera/camera_info", qos.SENSOR_DATA)
        self.grasp_pub = self.create_publisher(Bool, "sim/grasp_success", qos.EVENTS)
        self.cube_pub = self.create_publisher(PoseStamped, "sim/cube_pose", qos.EVENTS)
        self.reward_pub = None
        if self.publish_reward:
            self.reward_pub = self.create_publisher(RewardSignal, "reward/signal", qos.EVENTS)
        self.create_subscription(JointState, "follower/joint_commands", self._on_follower_command, qos.COMMAND)
        self.create_subscription(JointState, "leader/joint_commands", self._on_leader_command, qos.COMMAND)
        self.create_service(ResetEpisode, "sim/reset", self._on_reset)
        self.create_service(SetBool, "follower/enable_torque", self._on_follower_torque)
        self.create_service(SetBool, "leader/enable_torque", self._on_leader_torque)

        fx, fy, cx, cy = self.world.camera_intrinsics()
        self._camera_info = pinhole_camera_info(width, height, fx, fy, cx, cy, self.camera_frame_id)
        self._stop = threading.Event()
        self._physics = threading.Thread(target=self._physics_loop, name="sim-physics", daemon=True)
        self._camera = threading.Thread(target=self._camera_loop, name="sim-camera", daemon=True)
        self._physics.start()
        self._camera.start()
        self.get_logger().info(
            f"simulation up: states {self.state_rate_hz:.0f} Hz, camera {width}x{height} at "
            f"{self.camera_rate_hz:.0f} Hz, operator {operator_mode}, seed {seed}"
        )

    # ---- commands and services (executor thread) ----
    def _on_follower_command(self, msg: JointState) -> None:
        with self._lock:
            result = self.follower_guard.apply(msg.name, msg.position, self.world.joint_positions(), time.monotonic())
            if result.target is not None:
                self.world.set_joint_targets(result.target)
        if result.rejected:
            self.get_logger().warning(f"follower command rejected: {result.rejected}", throttle_duration_sec=1.0)

    def _on_leader_command(self, msg: JointState) -> None:
        target, missing = positions_by_name(msg.name, msg.position)
        if target is None:
            self.get_logger().warning(f"leader command refused: bad or missing {missing}", throttle_duration_sec=1.0)
            return
        with self._lock:
            self.leader.command(target)

    def _on_reset(self, request: ResetEpisode.Request, response: ResetEpisode.Response) -> ResetEpisode.Response:
        seed = int(request.seed) if request.seed >= 0 else int(self._rng.integers(2**31))
        with self._lock:
            state = self._reset_locked(seed=seed, randomize=request.randomize)
        response.success = True
        response.message = f"reset with seed {seed}"
        response.joint_positions = [float(v) for v in state["joint_positions"]]
        cube = state["cube_position"]
        response.cube_position = Point(x=float(cube[0]), y=float(cube[1]), z=float(cube[2]))
        return response

    def _reset_locked(self, seed: int, randomize: bool) -> dict:
        state = self.world.reset(seed=seed, randomize=randomize)
        self.follower_guard.target = None  # an old command must not pull the arm back from home
        self.leader.reset(self.world.joint_positions())
        self.operator.reset(seed)
        self._hand_target = None
        return state

    def _on_follower_torque(self, request: SetBool.Request, response: SetBool.Response) -> SetBool.Response:
        with self._lock:
            self.world.set_actuation(bool(request.data))
        response.success, response.message = True, f"follower torque {'on' if request.data else 'off'}"
        return response

    def _on_leader_torque(self, request: SetBool.Request, response: SetBool.Response) -> SetBool.Response:
        with self._lock:
            self.leader.set_torque(bool(request.data))
        response.success, response.message = True, f"leader torque {'on' if request.data else 'off'}"
        return response

    # ---- physics thread ----
    def _physics_loop(self) -> None:
        period = 1.0 / self.state_rate_hz
        next_tick = time.monotonic()
        while not self._stop.is_set() and rclpy.ok(context=self.context):
            with self._lock:
                follower_q = self.world.joint_positions()
                hold = self.follower_guard.check_watchdog(follower_q, time.monotonic())
                if hold is not None:
                    self.world.set_joint_targets(hold)
                self._hand_target = self.operator.update(
                    self.world.time,
                    period,
                    follower_q,
                    self.world.cube_pose()[0],
                    self.world.grasp_success(),
                    leader_q=self.leader.positions,
                )
                self.leader.step(period, self._hand_target)
                self.world.step(period)
                follower_q, follower_v = self.world.joint_positions(), self.world.joint_velocities()
                leader_q = self.leader.positions.copy()
            if self._stop.is_set():
                break
            stamp = self.get_clock().now().to_msg()
            self.follower_pub.publish(_joint_state(stamp, follower_q, follower_v))
            self.leader_pub.publish(_joint_state(stamp, leader_q))
            next_tick += period
            delay = next_tick - time.monotonic()
            if delay > 0:
                self._stop.wait(delay)
            elif delay < -0.5:  # fell far behind (machine overloaded): do not try to catch up in a burst
                self.get_logger().warning("simulation running slower than real time", throttle_duration_sec=5.0)
                next_tick = time.monotonic()

    # ---- camera thread ----
    def _camera_loop(self) -> None:
        renderer_data = mujoco.MjData(self.world.model)
        renderer = mujoco.Renderer(self.world.model, self.world.config.camera_height, self.world.config.camera_width)
        period = 1.0 / self.camera_rate_hz
        next_frame = time.monotonic()
        try:
            while not self._stop.is_set() and rclpy.ok(context=self.context):
                with self._lock:  # a consistent snapshot: the image and the ground truth describe the same instant
                    renderer_data.qpos[:] = self.world.data.qpos
                    renderer_data.time = self.world.data.time
                    success = self.world.grasp_success()
                    cube_position, cube_quat = self.world.cube_pose()
                stamp = self.get_clock().now().to_msg()  # stamped at capture, like the real camera
                mujoco.mj_kinematics(self.world.model, renderer_data)
                renderer.update_scene(renderer_data, camera=self.world.camera_name)
                image = renderer.render()
                if self._stop.is_set():  # the render takes a while: the stop may have come meanwhile
                    break
                self._camera_info.header.stamp = stamp
                self.image_pub.publish(array_to_image_msg(image, "rgb8", stamp, self.camera_frame_id))
                self.info_pub.publish(self._camera_info)
                self.grasp_pub.publish(Bool(data=bool(success)))
                self.cube_pub.publish(_pose(stamp, cube_position, cube_quat))
                if self.reward_pub is not None:
                    signal = RewardSignal(probability=float(success), success=bool(success), threshold=0.5)
                    signal.header.stamp, signal.header.frame_id = stamp, self.camera_frame_id
                    signal.model_id = "simulation-ground-truth"
                    self.reward_pub.publish(signal)
                next_frame += period
                delay = next_frame - time.monotonic()
                if delay > 0:
                    self._stop.wait(delay)
                else:
                    next_frame = time.monotonic()
        finally:
            renderer.close()

    def destroy_node(self) -> None:
        """Threads first, while the context is valid; one that outlives the join ends quietly at its next publish."""
        self._stop.set()
        deadline = time.monotonic() + THREAD_JOIN_TIMEOUT_S
        for thread in (self._physics, self._camera):
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
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
