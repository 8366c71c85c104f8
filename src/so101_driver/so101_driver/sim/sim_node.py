"""so101_sim: the MuJoCo simulation as a ROS node, standing in for the follower driver, the leader driver (moved by
a simulated operator) and the wrist camera. It publishes and consumes exactly the topics the hardware drivers do,
so every node above it is the same in simulation and on the robot.

Time (``clock_mode``, so101_contract.sim_time):

- ``wall``: two threads do the work so that neither waits for the other: the physics thread steps the world in
  real time at the joint-state rate and publishes both arms' joint states; the camera thread renders a snapshot of
  the newest state at the camera rate (rendering takes ~20 ms and runs in parallel, MuJoCo releases the GIL).
  Stamps come from the node's clock; no ``/clock``.
- ``sim`` and ``lockstep``: one loop thread owns simulated time. Tick by tick (sim_clock.TickGrid) it steps the
  physics, publishes both arms' joint states, on camera instants renders inline and publishes the image and the
  ground truth, then publishes ``/clock``, every message stamped with the instant. "sim" paces the ticks to the
  wall clock times ``real_time_factor``; "lockstep" advances only as the LockstepGate allows (the actor's grant on
  ``sim/advance_until``, the learner's backlog on ``hilserl/learner_progress``).

The follower's command watchdog counts simulated time in every mode (a lockstep simulation waiting for the learner
must not time the commands out). On shutdown ``destroy_node`` sets the stop event and joins the threads before the
node and the context go away (node_main's order), and none publishes once the event is set.
"""

from __future__ import annotations

import so101_contract.quiet_interrupt  # noqa: F401  (first: Ctrl-C during the heavy imports below is quiet)

# isort: split
import threading
import time

import mujoco
import numpy as np
import rclpy
from geometry_msgs.msg import Point, PoseStamped
from rclpy.node import Node
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import CameraInfo, Image, JointState
from std_msgs.msg import Bool, UInt8
from std_srvs.srv import SetBool

from so101_contract import qos
from so101_contract.control import CONTROL_PERIOD_S
from so101_contract.joints import JOINT_NAMES, positions_by_name
from so101_contract.node_main import run_node
from so101_contract.parameters import ParameterError, declare
from so101_contract.sim_time import ADVANCE_TOPIC, CLOCK_MODES, CLOCK_TOPIC, PROGRESS_TOPIC
from so101_contract.stamps import NS_PER_S, ns_to_stamp, stamp_to_ns
from so101_driver.model.joint_safety import JointCommandGuard
from so101_driver.model.robot_model import resolve_urdf_path
from so101_driver.sim.curriculum import reset_stage
from so101_driver.sim.grasp_controller import ScriptedGrasp
from so101_driver.sim.operator import MODES, LeaderArm, OperatorConfig, SimulatedOperator
from so101_driver.sim.scene import SceneConfig
from so101_driver.sim.sim_clock import HoldLog, LockstepGate, Pacer, TickGrid
from so101_driver.sim.world import SimConfig, SimWorld
from so101_driver.vision.image_messages import array_to_image_msg, pinhole_camera_info
from so101_hilserl_interfaces.msg import LearnerProgress, RewardSignal
from so101_hilserl_interfaces.srv import OperatorCommand, ResetEpisode

THREAD_JOIN_TIMEOUT_S = 2.0  # all threads together; a render takes ~20 ms, a physics tick less
LOCKSTEP_RECHECK_S = 0.25  # a held lockstep loop looks at the stop request and republishes /clock this often
LOCKSTEP_REPORT_AFTER_S = 5.0  # a hold longer than this (wall) is logged with what it waits for, once


class SimNode(Node):
    def __init__(self):
        super().__init__("so101_sim")
        seed = declare(self, "seed", 0, "seed of the scene randomisation and the simulated operator", (0, 2**31 - 1))
        self.state_rate_hz = declare(self, "state_rate_hz", 100.0, "joint state rate of both arms (Hz)", (1.0, 1000.0))
        self.camera_rate_hz = declare(self, "camera_rate_hz", 10.0, "wrist image rate (Hz)", (0.1, 100.0))
        width = declare(self, "camera_width", 640, "wrist image width (px), as the real camera", (16, 4096))
        height = declare(self, "camera_height", 480, "wrist image height (px), as the real camera", (16, 4096))
        self.camera_frame_id = declare(self, "camera_frame_id", "wrist_camera_optical_frame", "frame of the images")
        self.stage = declare(
            self,
            "curriculum_stage",
            0,
            "where episodes start: 0 the robot's reset, 1-3 easier (sim.curriculum)",
            (0, 3),
        )
        max_step = declare(
            self, "max_joint_step", 0.3, "largest follower target change per command (rad)", (0.001, 3.2)
        )
        timeout = declare(
            self, "command_timeout_s", 0.5, "hold the follower when commands stop this long (s)", (0.01, 60.0)
        )
        self.operator_mode = declare(
            self, "operator_mode", "correct", "simulated operator: correct, demo or none", MODES
        )
        reaction = declare(self, "operator_reaction_delay_s", 0.4, "operator's reaction delay (s)", (0.0, 10.0))
        probability = declare(
            self, "operator_intervene_probability", 1.0, "chance the operator corrects when due", (0.0, 1.0)
        )
        self.operator_pedal = declare(
            self,
            "operator_pedal",
            False,
            "the simulated operator presses the intervention pedal (operator/commands) while its hand is on the leader",
        )
        self._pedal_down = False
        demo_episodes = declare(
            self, "operator_demo_episodes", 0, "the simulated operator drives the first N episodes whole (preloaded "
            "demonstrations, before the policy acts)", (0, 10**6)
        )  # fmt: skip
        self.publish_reward = declare(
            self, "publish_ground_truth_reward", False, "publish reward/signal from ground truth, not a classifier"
        )
        self.clock_mode = declare(
            self, "clock_mode", "wall", "wall: follow the wall clock; sim: publish /clock paced to the wall clock "
            "times real_time_factor; lockstep: advance only as the actor grants and the learner keeps up", CLOCK_MODES
        )  # fmt: skip
        self.real_time_factor = declare(
            self, "real_time_factor", 1.0, "clock_mode sim: simulated seconds per wall second", (0.01, 100.0)
        )
        max_backlog = declare(
            self, "lockstep_max_backlog_updates", 100, "clock_mode lockstep: hold while the learner owes more "
            "updates than this", (0, 10**9)
        )  # fmt: skip
        learner_lead_s = declare(
            self, "lockstep_learner_lead_s", CONTROL_PERIOD_S, "clock_mode lockstep: hold when the learner's newest "
            "report is older than this in simulated time (a stopped or killed learner holds the run)", (0.01, 60.0)
        )  # fmt: skip
        start_time_s = declare(
            self, "start_time_s", 0.0, "clock_mode sim/lockstep: simulated time starts at the first camera instant "
            "after this (a resumed run continues its time)", (0.0, 1e9)
        )  # fmt: skip

        urdf_path = declare(self, "urdf_path", "", "robot URDF with the wrist camera joints; '' = the project's")
        try:  # a urdf_path that names no file: exit 2 with one line, not a traceback from deep in the scene's build
            resolve_urdf_path(urdf_path)
        except FileNotFoundError as err:
            raise ParameterError(f"parameter {err}") from None
        scene = SceneConfig(urdf_path=urdf_path or None)
        self.world = SimWorld(SimConfig(scene=scene, camera_width=width, camera_height=height), seed=seed)
        try:
            self.grid = TickGrid.from_rates(self.state_rate_hz, self.camera_rate_hz, self.world.model.opt.timestep)
        except ValueError as err:
            if self.clock_mode != "wall":  # wall mode has always stepped whole timesteps per tick, as it may
                raise ParameterError(f"parameter {err} (clock_mode {self.clock_mode})") from None
            self.grid = None
        self._tick_ns = round(NS_PER_S / self.state_rate_hz)
        self._first_tick = 0 if self.grid is None else self.grid.first_tick_after(round(start_time_s * NS_PER_S))
        # simulated time of the newest tick: never goes back (a reset does not rewind it)
        self._sim_ns = 0 if self.grid is None else self.grid.time_ns(self._first_tick)
        kinematics = self.world.kinematics
        self.follower_guard = JointCommandGuard(JOINT_NAMES, kinematics.lower, kinematics.upper, max_step, timeout)
        operator_config = OperatorConfig(
            mode=self.operator_mode, reaction_delay_s=reaction, intervene_probability=probability
        )
        self.operator = SimulatedOperator(kinematics, ScriptedGrasp(), operator_config, seed=seed)
        self.leader = LeaderArm(kinematics, seed=seed)
        self._rng = np.random.default_rng(seed)
        self._lock = threading.Lock()  # guards the world, the leader, the operator and the simulated time
        self._demo_episodes_left = 0  # the start-up reset is not an episode
        self._reset_locked(seed=seed, randomize=True, operator_hands_off=False)
        self._demo_episodes_left = demo_episodes  # with operator_mode none too: demonstrations, then the policy alone

        self.follower_pub = self.create_publisher(JointState, "follower/joint_states", qos.SENSOR_DATA)
        self.leader_pub = self.create_publisher(JointState, "leader/joint_states", qos.SENSOR_DATA)
        self.image_pub = self.create_publisher(Image, "wrist_camera/image_raw", qos.SENSOR_DATA)
        self.info_pub = self.create_publisher(CameraInfo, "wrist_camera/camera_info", qos.SENSOR_DATA)
        self.grasp_pub = self.create_publisher(Bool, "sim/grasp_success", qos.EVENTS)
        self.cube_pub = self.create_publisher(PoseStamped, "sim/cube_pose", qos.EVENTS)
        self.reward_pub = None
        if self.publish_reward:
            self.reward_pub = self.create_publisher(RewardSignal, "reward/signal", qos.EVENTS)
        self.clock_pub = None
        if self.clock_mode != "wall":
            self.clock_pub = self.create_publisher(Clock, CLOCK_TOPIC, qos.CLOCK)
        self.pedal_pub = self.create_publisher(UInt8, "operator/commands", qos.EVENTS)
        self.create_subscription(JointState, "follower/joint_commands", self._on_follower_command, qos.COMMAND)
        self.create_subscription(JointState, "leader/joint_commands", self._on_leader_command, qos.COMMAND)
        self.create_service(ResetEpisode, "sim/reset", self._on_reset)
        self.create_service(SetBool, "follower/enable_torque", self._on_follower_torque)
        self.create_service(SetBool, "leader/enable_torque", self._on_leader_torque)
        # Lockstep: the gate, and the condition the loop waits on; the callbacks notify it. Reliable, newest only,
        # transient local: a grant or a backlog published before this node's subscriptions matched (the actor
        # starts faster than MuJoCo loads) still arrives, instead of both sides waiting for each other for ever.
        # The actor and the learner publish them transient local.
        self._advance = threading.Condition()
        self._holds = HoldLog(LOCKSTEP_REPORT_AFTER_S)
        self.gate = LockstepGate(max_backlog, self._tick_ns // 2, round(learner_lead_s * NS_PER_S))
        if self.clock_mode == "lockstep":
            self.create_subscription(Clock, ADVANCE_TOPIC, self._on_advance, qos.LATCHED)
            self.create_subscription(LearnerProgress, PROGRESS_TOPIC, self._on_progress, qos.LATCHED)

        fx, fy, cx, cy = self.world.camera_intrinsics()
        self._camera_info = pinhole_camera_info(width, height, fx, fy, cx, cy, self.camera_frame_id)
        self._stop = threading.Event()
        if self.clock_mode == "wall":
            self._threads = [
                threading.Thread(target=self._physics_loop, name="sim-physics", daemon=True),
                threading.Thread(target=self._camera_loop, name="sim-camera", daemon=True),
            ]
        else:
            self._threads = [threading.Thread(target=self._sim_time_loop, name="sim-loop", daemon=True)]
        for thread in self._threads:
            thread.start()
        pace = {
            "wall": "real time",
            "sim": f"{self.real_time_factor:g} x real time",
            "lockstep": "as fast as the actor and learner allow",
        }
        self.get_logger().info(
            f"simulation up: states {self.state_rate_hz:.0f} Hz, camera {width}x{height} at "
            f"{self.camera_rate_hz:.0f} Hz, operator {self.operator_mode}, seed {seed}, clock "
            f"{self.clock_mode} ({pace[self.clock_mode]})"
        )

    # ---- commands and services (executor thread) ----
    def _on_follower_command(self, msg: JointState) -> None:
        with self._lock:
            now = self._sim_ns / NS_PER_S
            result = self.follower_guard.apply(msg.name, msg.position, self.world.joint_positions(), now)
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
            state = self._reset_locked(seed, request.randomize, request.operator_hands_off)
        response.success = True
        response.message = f"reset with seed {seed}" + (", operator hands off" if request.operator_hands_off else "")
        response.joint_positions = [float(v) for v in state["joint_positions"]]
        cube = state["cube_position"]
        response.cube_position = Point(x=float(cube[0]), y=float(cube[1]), z=float(cube[2]))
        return response

    def _reset_locked(self, seed: int, randomize: bool, operator_hands_off: bool) -> dict:
        self.operator.end_episode(self.world.grasp_success())  # what the person saw at the end (the taper)
        if self.stage == 0 or not randomize:
            state = self.world.reset(seed=seed, randomize=randomize)
        else:  # the Gymnasium env's starts of this stage (the task a checkpoint was pretrained on)
            state = reset_stage(self.world, self.stage, np.random.default_rng(seed))
        self.follower_guard.target = None  # an old command must not pull the arm back from home
        self.leader.reset(self.world.joint_positions())
        # Hands off for this episode only (an evaluation episode measures the policy alone); the next reset
        # brings the configured operator back.
        self.operator.mode = "none" if operator_hands_off else self.operator_mode
        if self._demo_episodes_left > 0 and not operator_hands_off:
            self.operator.mode, self._demo_episodes_left = "demo", self._demo_episodes_left - 1
        self.operator.reset(seed)
        self._hand_target = None
        self._press_pedal(False)  # a reset takes the hand off the leader
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

    def _on_advance(self, msg: Clock) -> None:
        with self._advance:
            if self.gate.grant(stamp_to_ns(msg.clock)):
                self._advance.notify_all()

    def _on_progress(self, msg: LearnerProgress) -> None:
        with self._advance:
            self.gate.progress(int(msg.update_backlog), stamp_to_ns(msg.header.stamp), self._sim_ns)
            self._advance.notify_all()

    # ---- one tick of physics (either loop) ----
    def _tick_locked(self, period: float, tick_ns: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Watchdog, operator, leader and physics for one tick; returns follower q, v and leader q after it."""
        follower_q = self.world.joint_positions()
        hold = self.follower_guard.check_watchdog(follower_q, self._sim_ns / NS_PER_S)
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
        self._press_pedal(self._hand_target is not None)
        self.world.step(period)
        self._sim_ns += tick_ns
        return self.world.joint_positions(), self.world.joint_velocities(), self.leader.positions.copy()

    def _press_pedal(self, down: bool) -> None:
        """operator_pedal: the person says when they take over and let go, as the seed's operator toggled a key, so
        benchmarks count interventions exactly. A press is sent only once the intervention node listens (the topic
        keeps no history): until then it is tried again every tick, so a demonstration that starts before the
        graph has connected is not lost."""
        if self.operator_pedal and down != self._pedal_down and self.pedal_pub.get_subscription_count() > 0:
            self._pedal_down = down
            command = OperatorCommand.Request.START_INTERVENTION if down else OperatorCommand.Request.END_INTERVENTION
            self.pedal_pub.publish(UInt8(data=command))

    def _publish_states(self, stamp, follower_q, follower_v, leader_q) -> None:
        self.follower_pub.publish(_joint_state(stamp, follower_q, follower_v))
        self.leader_pub.publish(_joint_state(stamp, leader_q))

    # ---- clock_mode wall: the physics thread ----
    def _physics_loop(self) -> None:
        period = 1.0 / self.state_rate_hz
        next_tick = time.monotonic()
        while not self._stop.is_set() and rclpy.ok(context=self.context):
            with self._lock:
                states = self._tick_locked(period, self._tick_ns)
            if self._stop.is_set():
                break
            self._publish_states(self.get_clock().now().to_msg(), *states)
            next_tick += period
            delay = next_tick - time.monotonic()
            if delay > 0:
                self._stop.wait(delay)
            elif delay < -0.5:  # fell far behind (machine overloaded): do not try to catch up in a burst
                self.get_logger().warning("simulation running slower than real time", throttle_duration_sec=5.0)
                next_tick = time.monotonic()

    # ---- clock_mode wall: the camera thread ----
    def _camera_loop(self) -> None:
        camera = _Camera(self.world)
        period = 1.0 / self.camera_rate_hz
        next_frame = time.monotonic()
        try:
            while not self._stop.is_set() and rclpy.ok(context=self.context):
                with self._lock:  # a consistent snapshot: the image and the ground truth describe the same instant
                    snapshot = camera.snapshot_locked()
                stamp = self.get_clock().now().to_msg()  # stamped at capture, like the real camera
                image = camera.render()
                if self._stop.is_set():  # the render takes a while: the stop may have come meanwhile
                    break
                self._publish_camera(stamp, image, *snapshot)
                next_frame += period
                delay = next_frame - time.monotonic()
                if delay > 0:
                    self._stop.wait(delay)
                else:
                    next_frame = time.monotonic()
        finally:
            camera.close()

    def _publish_camera(self, stamp, image: np.ndarray, success: bool, cube_position, cube_quat) -> None:
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

    # ---- clock_mode sim and lockstep: the one loop that owns simulated time ----
    def _sim_time_loop(self) -> None:
        """Per instant: physics up to it, joint states, the image on camera instants, then /clock (in this order,
        so a node that wakes on /clock finds the instant's data already sent)."""
        grid = self.grid
        pacer = Pacer(self.real_time_factor) if self.clock_mode == "sim" else None
        camera = _Camera(self.world)  # this thread renders: its GL context lives here
        tick = self._first_tick
        try:
            while not self._stop.is_set() and rclpy.ok(context=self.context):
                t_ns = grid.time_ns(tick)
                if pacer is not None:
                    delay = pacer.delay_s(t_ns, time.monotonic())
                    if delay > 0 and self._stop.wait(delay):
                        break
                    if pacer.fell_behind:
                        self.get_logger().warning(
                            f"simulation running slower than {self.real_time_factor:g} x real time",
                            throttle_duration_sec=5.0,
                        )
                        pacer.fell_behind = 0
                elif not self._wait_for_lockstep(t_ns, tick):
                    break
                with self._lock:
                    if tick == self._first_tick:  # the first instant is the state as it is; physics runs between
                        states = (
                            self.world.joint_positions(),
                            self.world.joint_velocities(),
                            self.leader.positions.copy(),
                        )
                    else:
                        states = self._tick_locked(grid.tick_s, grid.tick_ns)
                    snapshot = camera.snapshot_locked() if grid.camera_due(tick) else None
                if self._stop.is_set():
                    break
                stamp = ns_to_stamp(t_ns)
                self._publish_states(stamp, *states)
                if snapshot is not None:
                    image = camera.render()
                    if self._stop.is_set():
                        break
                    self._publish_camera(stamp, image, *snapshot)
                self.clock_pub.publish(Clock(clock=stamp))
                tick += 1
        finally:
            camera.close()

    def _wait_for_lockstep(self, t_ns: int, tick: int) -> bool:
        """Hold until the gate lets the simulation reach ``t_ns``; False when the node stops meanwhile.

        While held it republishes the previous instant's /clock now and then, so a node that joins late (its clock
        still at 0) learns the time it must grant beyond; a resumed simulation's first hold publishes the instant
        before its first, which no node has seen yet.
        """
        held_since = time.monotonic()
        while True:
            with self._advance:
                if self.gate.may_advance_to(t_ns):
                    if said := self._holds.released():
                        self.get_logger().info(f"lockstep: {said}; going on at {t_ns / NS_PER_S:.3f} s")
                    return True
                reason, kinds = self.gate.waiting_for(t_ns), self.gate.holds(t_ns)
                notified = self._advance.wait(timeout=LOCKSTEP_RECHECK_S)
            if self._stop.is_set() or not rclpy.ok(context=self.context):
                return False
            if said := self._holds.held(kinds, reason, time.monotonic() - held_since):
                self.get_logger().info(f"lockstep: holding at {self._sim_ns / NS_PER_S:.3f} s, {said}")
            if not notified and t_ns > 0:  # a resumed sim's first hold too: the nodes learn the run's time
                self.clock_pub.publish(Clock(clock=ns_to_stamp(self.grid.time_ns(tick - 1))))

    def destroy_node(self) -> None:
        """Threads first, while the context is valid; one that outlives the join ends quietly at its next publish."""
        self._stop.set()
        with self._advance:
            self._advance.notify_all()  # a held lockstep loop sees the stop at once
        deadline = time.monotonic() + THREAD_JOIN_TIMEOUT_S
        for thread in self._threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        super().destroy_node()


class _Camera:
    """The wrist camera's renderer, owned by the thread that renders (its GL context is made current there)."""

    def __init__(self, world: SimWorld):
        self.world = world
        self.data = mujoco.MjData(world.model)
        self.renderer = mujoco.Renderer(world.model, world.config.camera_height, world.config.camera_width)

    def snapshot_locked(self) -> tuple[bool, np.ndarray, np.ndarray]:
        """Copy the pose to render and read the ground truth of the same instant (call under the world's lock);
        returns (grasp success, cube position, cube quaternion wxyz)."""
        self.data.qpos[:] = self.world.data.qpos
        self.data.time = self.world.data.time
        cube_position, cube_quat = self.world.cube_pose()
        return self.world.grasp_success(), cube_position, cube_quat

    def render(self) -> np.ndarray:
        """The snapshot's image (outside the lock: MuJoCo releases the GIL while it renders)."""
        mujoco.mj_kinematics(self.world.model, self.data)
        self.renderer.update_scene(self.data, camera=self.world.camera_name)
        return self.renderer.render()

    def close(self) -> None:
        self.renderer.close()


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
