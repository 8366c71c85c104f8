"""The simulated follower, leader (moved by the simulated operator) and wrist camera, run in simulated time: the sim
node's logic as plain Python, so it can be tested without ROS. The node only turns ``SimOutputs`` into messages and
its subscriptions and services into calls here.

With clock_mode "wall" a physics and a camera thread run in real time; with "sim" and "lockstep" one loop thread owns
simulated time, tick by tick (``Simulation`` says how). The follower's command watchdog counts simulated time in every
mode (a lockstep simulation waiting for the learner must not time the commands out). ``stop`` ends the threads; none
sends anything once it is called.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import mujoco
import numpy as np

from so101_contract.control import JOINT_STATE_RATE_HZ
from so101_contract.joints import JOINT_NAMES, positions_by_name
from so101_contract.settings import setting
from so101_contract.stamps import NS_PER_S
from so101_driver.model.joint_safety import CommandLimits, GuardResult, JointCommandGuard
from so101_driver.model.robot_model import resolve_urdf_path
from so101_driver.sim.curriculum import STAGES, reset_stage
from so101_driver.sim.grasp_controller import ScriptedGrasp
from so101_driver.sim.operator import LeaderArm, OperatorSettings, SimulatedOperator
from so101_driver.sim.scene import SceneConfig
from so101_driver.sim.sim_clock import HoldLog, LockstepGate, Pacer, SimClockConfig, TickGrid
from so101_driver.sim.world import SimConfig, SimWorld
from so101_driver.vision.image_messages import WRIST_CAMERA_FRAME

LOCKSTEP_RECHECK_S = 0.25  # a held lockstep loop looks at the stop request and resends the instant this often
LOCKSTEP_REPORT_AFTER_S = 5.0  # a hold longer than this (wall) is logged with what it waits for, once
FALL_BEHIND_S = 0.5  # clock_mode wall: this far behind, the physics thread restarts its pacing instead of catching up


@dataclass(frozen=True)
class SimulationConfig:
    """The sim node's settings (so101_sim's parameters)."""

    seed: int = setting(0, "seed of the scene randomisation and the simulated operator", (0, 2**31 - 1))
    state_rate_hz: float = setting(JOINT_STATE_RATE_HZ, "joint state rate of both arms (Hz)", (1.0, 1000.0))
    camera_rate_hz: float = setting(10.0, "wrist image rate (Hz)", (0.1, 100.0))
    camera_width: int = setting(SimConfig.camera_width, "wrist image width (px), as the real camera", (16, 4096))
    camera_height: int = setting(SimConfig.camera_height, "wrist image height (px), as the real camera", (16, 4096))
    camera_frame_id: str = setting(WRIST_CAMERA_FRAME, "frame of the images")
    curriculum_stage: int = setting(
        STAGES[0], "where episodes start: 0 the robot's reset, 1-3 easier (sim.curriculum)", (STAGES[0], STAGES[-1])
    )
    limits: CommandLimits = field(default_factory=CommandLimits)
    operator: OperatorSettings = field(default_factory=OperatorSettings)
    publish_ground_truth_reward: bool = setting(False, "publish reward/signal from ground truth, not a classifier")
    clock: SimClockConfig = field(default_factory=SimClockConfig)
    urdf_path: str = setting("", "robot URDF with the wrist camera joints; '' = the project's")


class SettingError(ValueError):
    """A setting the simulation cannot run with; the message starts with the setting's name."""


def _ignore(*_args) -> None:
    return None


@dataclass
class SimOutputs:
    """Where the simulation's results go (the node publishes them). Stamps are integer nanoseconds.

    ``pedal(down)`` sends an intervention press or release and says whether it was sent (False while nobody
    listens); the threads end when ``alive()`` turns False (the node's context is gone)."""

    states: Callable[[int, np.ndarray, np.ndarray, np.ndarray], None] = _ignore  # stamp, follower q, v, leader q
    camera: Callable[[int, np.ndarray, bool, np.ndarray, np.ndarray], None] = _ignore  # image, success, cube pose
    clock: Callable[[int], None] = _ignore
    pedal: Callable[[bool], bool] = lambda down: False
    alive: Callable[[], bool] = lambda: True


class _Silent:
    """A logger that says nothing."""

    def __getattr__(self, level: str):
        return _ignore


class Simulation:
    """One simulated robot. ``wall_clock_ns`` stamps clock_mode wall's messages; ``logger`` is the node's (info and
    warning, with rclpy's ``throttle_duration_sec``).

    Time (``clock_mode``, so101_contract.sim_time; docs/architecture.md):

    - ``wall``: two threads, so that neither waits for the other: the physics thread steps the world in real time at
      the joint-state rate and sends both arms' joint states; the camera thread renders a snapshot of the newest state
      at the camera rate (MuJoCo releases the GIL while it renders). Stamps are the caller's wall clock.
    - ``sim`` and ``lockstep``: one loop thread owns simulated time. Tick by tick (sim_clock.TickGrid) it steps the
      physics, sends both arms' joint states, on camera instants renders inline and sends the image and the ground
      truth, then the instant itself (``/clock``). "sim" paces the ticks to the wall clock times ``real_time_factor``;
      "lockstep" advances only as the LockstepGate allows (``grant`` and ``progress``).
    """

    def __init__(
        self, config: SimulationConfig, outputs: SimOutputs | None = None, logger=None, wall_clock_ns=time.time_ns
    ):
        self.config, self.out, self._wall_ns = config, outputs or SimOutputs(), wall_clock_ns
        self.log = logger if logger is not None else _Silent()
        try:  # a urdf_path that names no file: one line, not a traceback from deep in the scene's build
            resolve_urdf_path(config.urdf_path)
        except FileNotFoundError as err:
            raise SettingError(str(err)) from None
        scene = SceneConfig(urdf_path=config.urdf_path or None)
        world_config = SimConfig(scene=scene, camera_width=config.camera_width, camera_height=config.camera_height)
        self.world = SimWorld(world_config, seed=config.seed)
        self.mode = config.clock.clock_mode
        try:
            self.grid = TickGrid.from_rates(config.state_rate_hz, config.camera_rate_hz, self.world.model.opt.timestep)
        except ValueError as err:
            if self.mode != "wall":  # wall mode has always stepped whole timesteps per tick, as it may
                raise SettingError(f"{err} (clock_mode {self.mode})") from None
            self.grid = None
        self.tick_ns = round(NS_PER_S / config.state_rate_hz)
        start_ns = round(config.clock.start_time_s * NS_PER_S)
        self.first_tick = 0 if self.grid is None else self.grid.first_tick_after(start_ns)
        # simulated time of the newest tick: never goes back (a reset does not rewind it)
        self.sim_ns = 0 if self.grid is None else self.grid.time_ns(self.first_tick)
        kinematics = self.world.kinematics
        limits = config.limits
        self.follower_guard = JointCommandGuard(
            JOINT_NAMES, kinematics.lower, kinematics.upper, limits.max_joint_step, limits.command_timeout_s
        )
        self.operator = SimulatedOperator(kinematics, ScriptedGrasp(), config.operator.config(), seed=config.seed)
        self.leader = LeaderArm(kinematics, seed=config.seed)
        self._rng = np.random.default_rng(config.seed)
        self._lock = threading.Lock()  # guards the world, the leader, the operator and the simulated time
        self._pedal_down = False
        self._demo_episodes_left = 0  # the start-up reset is not an episode
        with self._lock:
            self._reset_locked(config.seed, randomize=True, operator_hands_off=False)
        self._demo_episodes_left = config.operator.operator_demo_episodes  # then the policy alone, mode none too
        self._advance = threading.Condition()  # the lockstep loop waits on it; grant and progress notify it
        self._holds = HoldLog(LOCKSTEP_REPORT_AFTER_S)
        lead_ns = round(config.clock.lockstep_learner_lead_s * NS_PER_S)
        self.gate = LockstepGate(config.clock.lockstep_max_backlog_updates, self.tick_ns // 2, lead_ns)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    # ---- inputs (any thread) ----
    def follower_command(self, names: Sequence[str], positions: Sequence[float]) -> GuardResult:
        with self._lock:
            now = self.sim_ns / NS_PER_S
            result = self.follower_guard.apply(names, positions, self.world.joint_positions(), now)
            if result.target is not None:
                self.world.set_joint_targets(result.target)
        return result

    def leader_command(self, names: Sequence[str], positions: Sequence[float]) -> list[str]:
        """The leader's goal positions; returns the joints that are missing or bad (nothing moves then)."""
        target, missing = positions_by_name(names, positions)
        if target is not None:
            with self._lock:
                self.leader.command(target)
        return [] if target is not None else list(missing)

    def reset(self, seed: int, randomize: bool, operator_hands_off: bool) -> tuple[int, dict]:
        """A new episode; ``seed`` < 0 draws one. Returns the seed used and SimWorld.reset's state."""
        seed = int(seed) if seed >= 0 else int(self._rng.integers(2**31))
        with self._lock:
            return seed, self._reset_locked(seed, randomize, operator_hands_off)

    def set_follower_torque(self, enabled: bool) -> None:
        with self._lock:
            self.world.set_actuation(enabled)

    def set_leader_torque(self, enabled: bool) -> None:
        with self._lock:
            self.leader.set_torque(enabled)

    def grant(self, t_ns: int) -> None:
        """clock_mode lockstep: the actor needs nothing before ``t_ns``."""
        with self._advance:
            if self.gate.grant(t_ns):
                self._advance.notify_all()

    def progress(self, backlog: int, stamp_ns: int) -> None:
        """clock_mode lockstep: the learner's newest report."""
        with self._advance:
            self.gate.progress(backlog, stamp_ns, self.sim_ns)
            self._advance.notify_all()

    # ---- the threads ----
    def start(self) -> None:
        if self.mode == "wall":
            loops = [(self._physics_loop, "sim-physics"), (self._camera_loop, "sim-camera")]
        else:
            loops = [(self._sim_time_loop, "sim-loop")]
        self._threads = [threading.Thread(target=loop, name=name, daemon=True) for loop, name in loops]
        for thread in self._threads:
            thread.start()

    def stop(self, timeout_s: float) -> None:
        """Stop the threads, waiting at most ``timeout_s`` for all of them together."""
        self._stop.set()
        with self._advance:
            self._advance.notify_all()  # a held lockstep loop sees the stop at once
        deadline = time.monotonic() + timeout_s
        for thread in self._threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))

    def _running(self) -> bool:
        return not self._stop.is_set() and self.out.alive()

    # ---- one tick of physics (either loop; under the lock) ----
    def _reset_locked(self, seed: int, randomize: bool, operator_hands_off: bool) -> dict:
        self.operator.end_episode(self.world.grasp_success())  # what the person saw at the end (the taper)
        stage = self.config.curriculum_stage
        if stage == 0 or not randomize:
            state = self.world.reset(seed=seed, randomize=randomize)
        else:  # the Gymnasium env's starts of this stage (the task a checkpoint was pretrained on)
            state = reset_stage(self.world, stage, np.random.default_rng(seed))
        self.follower_guard.target = None  # an old command must not pull the arm back from home
        self.leader.reset(self.world.joint_positions())
        # Hands off for this episode only (an evaluation episode measures the policy alone); the next reset
        # brings the configured operator back.
        self.operator.mode = "none" if operator_hands_off else self.config.operator.operator_mode
        if self._demo_episodes_left > 0 and not operator_hands_off:
            self.operator.mode, self._demo_episodes_left = "demo", self._demo_episodes_left - 1
        self.operator.reset(seed)
        self._press_pedal(False)  # a reset takes the hand off the leader
        return state

    def _tick_locked(self, period: float, tick_ns: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Watchdog, operator, leader and physics for one tick; returns follower q, v and leader q after it."""
        follower_q = self.world.joint_positions()
        hold = self.follower_guard.check_watchdog(follower_q, self.sim_ns / NS_PER_S)
        if hold is not None:
            self.world.set_joint_targets(hold)
        cube = self.world.cube_pose()[0]
        hand = self.operator.update(
            self.world.time, period, follower_q, cube, self.world.grasp_success(), leader_q=self.leader.positions
        )
        self.leader.step(period, hand)
        self._press_pedal(hand is not None)
        self.world.step(period)
        self.sim_ns += tick_ns
        return self._states_locked()

    def _states_locked(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self.world.joint_positions(), self.world.joint_velocities(), self.leader.positions.copy()

    def _press_pedal(self, down: bool) -> None:
        """operator_pedal: the person says when they take over and let go, so benchmarks count interventions
        exactly. A press not sent (nobody listens yet) is tried again every tick, so a demonstration that starts
        before the graph has connected is not lost."""
        if self.config.operator.operator_pedal and down != self._pedal_down and self.out.pedal(down):
            self._pedal_down = down

    # ---- clock_mode wall ----
    def _physics_loop(self) -> None:
        period = 1.0 / self.config.state_rate_hz
        next_tick = time.monotonic()
        while self._running():
            with self._lock:
                states = self._tick_locked(period, self.tick_ns)
            if self._stop.is_set():
                break
            self.out.states(self._wall_ns(), *states)
            next_tick += period
            delay = next_tick - time.monotonic()
            if delay > 0:
                self._stop.wait(delay)
            elif delay < -FALL_BEHIND_S:  # the machine is overloaded: do not try to catch up in a burst
                self.log.warning("simulation running slower than real time", throttle_duration_sec=5.0)
                next_tick = time.monotonic()

    def _camera_loop(self) -> None:
        camera = _Camera(self.world)
        period = 1.0 / self.config.camera_rate_hz
        next_frame = time.monotonic()
        try:
            while self._running():
                with self._lock:  # a consistent snapshot: the image and the ground truth describe the same instant
                    snapshot = camera.snapshot_locked()
                stamp_ns = self._wall_ns()  # stamped at capture, like the real camera
                image = camera.render()
                if self._stop.is_set():  # the render takes a while: the stop may have come meanwhile
                    break
                self.out.camera(stamp_ns, image, *snapshot)
                next_frame += period
                delay = next_frame - time.monotonic()
                if delay > 0:
                    self._stop.wait(delay)
                else:
                    next_frame = time.monotonic()
        finally:
            camera.close()

    # ---- clock_mode sim and lockstep: the one loop that owns simulated time ----
    def _sim_time_loop(self) -> None:
        """Per instant: physics up to it, joint states, the image on camera instants, then the instant (in this
        order, so a node that wakes on /clock finds the instant's data already sent)."""
        grid = self.grid
        pacer = Pacer(self.config.clock.real_time_factor) if self.mode == "sim" else None
        camera = _Camera(self.world)  # this thread renders: its GL context lives here
        tick = self.first_tick
        try:
            while self._running():
                t_ns = grid.time_ns(tick)
                if pacer is not None:
                    delay = pacer.delay_s(t_ns, time.monotonic())
                    if delay > 0 and self._stop.wait(delay):
                        break
                    if pacer.fell_behind:
                        factor = self.config.clock.real_time_factor
                        self.log.warning(
                            f"simulation running slower than {factor:g} x real time", throttle_duration_sec=5.0
                        )
                        pacer.fell_behind = 0
                elif not self._wait_for_lockstep(t_ns, tick):
                    break
                with self._lock:  # the first instant is the state as it is; physics runs between instants
                    first = tick == self.first_tick
                    states = self._states_locked() if first else self._tick_locked(grid.tick_s, grid.tick_ns)
                    snapshot = camera.snapshot_locked() if grid.camera_due(tick) else None
                if self._stop.is_set():
                    break
                self.out.states(t_ns, *states)
                if snapshot is not None:
                    image = camera.render()
                    if self._stop.is_set():
                        break
                    self.out.camera(t_ns, image, *snapshot)
                self.out.clock(t_ns)
                tick += 1
        finally:
            camera.close()

    def _wait_for_lockstep(self, t_ns: int, tick: int) -> bool:
        """Hold until the gate lets the simulation reach ``t_ns``; False when it stops meanwhile.

        While held it resends the previous instant now and then, so a node that joins late (its clock still at 0)
        learns the time it must grant beyond; a resumed simulation's first hold sends the instant before its
        first, which no node has seen yet.
        """
        held_since = time.monotonic()
        while True:
            with self._advance:
                if self.gate.may_advance_to(t_ns):
                    if said := self._holds.released():
                        self.log.info(f"lockstep: {said}; going on at {t_ns / NS_PER_S:.3f} s")
                    return True
                reason, kinds = self.gate.waiting_for(t_ns), self.gate.holds(t_ns)
                notified = self._advance.wait(timeout=LOCKSTEP_RECHECK_S)
            if not self._running():
                return False
            if said := self._holds.held(kinds, reason, time.monotonic() - held_since):
                self.log.info(f"lockstep: holding at {self.sim_ns / NS_PER_S:.3f} s, {said}")
            if not notified and t_ns > 0:  # a resumed sim's first hold too: the nodes learn the run's time
                self.out.clock(self.grid.time_ns(tick - 1))


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
