"""A simulated person on a simulated leader arm: the stand-in for the human of HIL-SERL in simulation.

Two parts, both pure numpy so a ROS node can call them every control tick and tests can run them without a graph:

- ``LeaderArm``: the leader's six joints as a powered, low-gain STS3215 leader behaves (seed system: P=16, D=16).
  Torque on and no hand: it tracks the last ``leader/joint_commands`` with a first-order lag and a little servo
  jitter. Torque off and no hand: limp, it stays where it was left. A hand on it: the person overpowers the low
  gains, so the joints follow the hand quickly, with a little physiological tremor.
- ``SimulatedOperator``: the person. In "correct" mode it watches the follower's TCP and the cube, and when the
  policy is stuck or heading away from the cube it reacts (after a reaction delay, with a probability) with a SHORT
  correction: it grabs the leader with a brisk pull, steers it with the scripted grasp controller for a moment and
  lets go, as the seed author advises ("short, frequent interventions: let the policy explore, guide it near the
  cube, release"). In "demo" mode it takes the leader at once and performs the whole grasp (demonstration data);
  the grab then comes before a tracking-error detector has a full queue, so demos are meant to be recorded with the
  intervention forced on (the seed system's record mode), not detected.

The operator never tells anyone that it intervenes: its only output is where its hand pushes the leader. The rest
of the system must detect the intervention from the leader joints (leader-follower tracking error), exactly as with a
real person; the brisk pull at a grab is what makes that possible within one control period, and the tremor while
holding (with an uneven hand speed) is what keeps a real hand from looking like a released, settled arm.

Correction length: a correction ends after ``correction_duration_s`` or as soon as the grasp controller reaches
``release_at_phase`` (default "close": the person has guided the gripper onto the cube and leaves the closing to the
policy), or when the cube is grasped, whichever comes first.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np

from so101_contract.control import CONTROL_PERIOD_S
from so101_contract.joints import GRIPPER, NUM_ARM_JOINTS, NUM_JOINTS
from so101_driver.model.kinematics import Kinematics
from so101_driver.sim.grasp_controller import ScriptedGrasp

# "none" rather than "off": YAML (and so ROS parameter overrides) reads a bare off as false.
MODES = ("correct", "demo", "none")


def _positive(name: str, value: float) -> None:
    if not value > 0.0:
        raise ValueError(f"{name} must be > 0, got {value!r}")


def _non_negative(name: str, value: float) -> None:
    if not value >= 0.0:
        raise ValueError(f"{name} must be >= 0, got {value!r}")


def _joint_vector(name: str, q: np.ndarray) -> np.ndarray:
    q = np.asarray(q, dtype=float)
    if q.shape != (NUM_JOINTS,):
        raise ValueError(f"{name} must hold {NUM_JOINTS} joint positions (JOINT_NAMES order), got shape {q.shape}")
    return q


# ---- the leader arm --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LeaderArmConfig:
    """How the simulated leader moves. Defaults: a low-gain STS3215 leader and an adult hand."""

    tracking_time_constant_s: float = 0.15  # torque on: first-order lag toward the last command
    jitter_rad: float = math.radians(0.1)  # torque on: servo hunting / reading noise, std per joint
    hand_time_constant_s: float = 0.02  # a hand overpowers the low gains: the joints follow it this fast
    tremor_rad: float = math.radians(0.6)  # hand tremor, stationary std per joint
    tremor_time_constant_s: float = 0.08  # correlation time of the tremor (Ornstein-Uhlenbeck)

    def __post_init__(self) -> None:
        _positive("LeaderArmConfig.tracking_time_constant_s", self.tracking_time_constant_s)
        _positive("LeaderArmConfig.hand_time_constant_s", self.hand_time_constant_s)
        _positive("LeaderArmConfig.tremor_time_constant_s", self.tremor_time_constant_s)
        _non_negative("LeaderArmConfig.jitter_rad", self.jitter_rad)
        _non_negative("LeaderArmConfig.tremor_rad", self.tremor_rad)


class LeaderArm:
    """The simulated leader's six joints (rad, JOINT_NAMES order), within the URDF limits of ``kinematics``.

    Exact exponential discretisation, so the behaviour does not depend on how often ``step`` is called.
    """

    def __init__(self, kinematics: Kinematics, config: LeaderArmConfig | None = None, seed: int = 0):
        self.config = config or LeaderArmConfig()
        self.lower = np.asarray(kinematics.lower, dtype=float).copy()
        self.upper = np.asarray(kinematics.upper, dtype=float).copy()
        self._rng = np.random.default_rng(seed)
        self._state = np.clip(np.zeros(NUM_JOINTS), self.lower, self.upper)  # where the joints really are
        self._reading = self._state.copy()  # what the encoders report (state + jitter)
        self._command = self._state.copy()
        self._tremor = np.zeros(NUM_JOINTS)
        self._torque = True

    def reset(self, positions: np.ndarray, seed: int | None = None) -> None:
        """Place the leader at ``positions`` (also the command); torque is left as it was."""
        q = np.clip(_joint_vector("positions", positions), self.lower, self.upper)
        self._state, self._reading, self._command = q.copy(), q.copy(), q.copy()
        self._tremor[:] = 0.0
        if seed is not None:
            self._rng = np.random.default_rng(seed)

    def command(self, q_target: np.ndarray) -> None:
        """The intervention node's ``leader/joint_commands`` (goal positions; clipped to the limits)."""
        self._command = np.clip(_joint_vector("q_target", q_target), self.lower, self.upper)

    def set_torque(self, enabled: bool) -> None:
        self._torque = bool(enabled)

    @property
    def torque_enabled(self) -> bool:
        return self._torque

    @property
    def positions(self) -> np.ndarray:
        """The joint reading (6,), rad."""
        return self._reading.copy()

    def step(self, dt: float, hand_target: np.ndarray | None) -> np.ndarray:
        """Advance ``dt`` seconds; ``hand_target`` is where a hand pushes the joints, None when hands are off."""
        _positive("dt", dt)
        cfg = self.config
        if hand_target is not None:
            goal = _joint_vector("hand_target", hand_target)
            decay = math.exp(-dt / cfg.tremor_time_constant_s)
            kick = cfg.tremor_rad * math.sqrt(1.0 - decay * decay)
            self._tremor = self._tremor * decay + kick * self._rng.standard_normal(NUM_JOINTS)
            goal = np.clip(goal + self._tremor, self.lower, self.upper)
            alpha = math.exp(-dt / cfg.hand_time_constant_s)
            self._state = goal + (self._state - goal) * alpha
            self._reading = self._state.copy()
        elif self._torque:
            self._tremor[:] = 0.0
            alpha = math.exp(-dt / cfg.tracking_time_constant_s)
            self._state = self._command + (self._state - self._command) * alpha
            jitter = cfg.jitter_rad * self._rng.standard_normal(NUM_JOINTS)
            self._reading = np.clip(self._state + jitter, self.lower, self.upper)
        else:  # limp: friction holds it where the hand left it
            self._tremor[:] = 0.0
            self._reading = self._state.copy()
        return self.positions


# ---- the person ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OperatorConfig:
    """When and how the simulated person corrects the policy. Times in seconds since the episode's first update."""

    mode: str = "correct"  # "correct", "demo" (performs the whole episode) or "none"
    min_policy_time_s: float = 2.0  # let the policy explore first
    stuck_window_s: float = 1.5  # stuck: the TCP moved less than stuck_distance_m over this window...
    stuck_distance_m: float = 0.01  # ...while the cube is not grasped
    away_window_s: float = 1.0  # heading away: TCP-cube distance grew by more than away_distance_m over this window
    away_distance_m: float = 0.02
    reaction_delay_s: float | tuple[float, float] = (0.3, 0.5)  # s between deciding and grabbing: fixed or (low, high)
    intervene_probability: float = 1.0  # per decision; a declined decision is reconsidered after cooldown_s
    correction_duration_s: float = 1.5  # longest hold
    release_at_phase: str | None = "close"  # let go when the grasp controller reaches this phase (None: never)
    max_corrections: int = 3  # per episode
    cooldown_s: float = 1.0  # hands-off time after a correction or a declined decision before watching again
    grab_pull_rad: float = 0.25  # norm (5 arm joints) of the brisk pull that starts a grab (0.25 rad = 14 deg)
    hand_speed_spread: float = 0.4  # each re-aim moves U(1 -+ spread) times the grasp controller's step
    plan_period_s: float = (
        CONTROL_PERIOD_S  # how often the hand re-aims (the grasp controller's steps are sized for 10 Hz)
    )
    ik_damping: float = 0.1
    ik_max_step_rad: float = 0.5

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"OperatorConfig.mode must be one of {MODES}, got {self.mode!r}")
        for name in ("min_policy_time_s", "cooldown_s", "grab_pull_rad", "hand_speed_spread"):
            _non_negative(f"OperatorConfig.{name}", getattr(self, name))
        for name in (
            "stuck_window_s",
            "stuck_distance_m",
            "away_window_s",
            "away_distance_m",
            "correction_duration_s",
            "plan_period_s",
            "ik_damping",
            "ik_max_step_rad",
        ):
            _positive(f"OperatorConfig.{name}", getattr(self, name))
        delay = self.reaction_delay_s
        if isinstance(delay, (int, float)):
            delay = (delay, delay)
        try:
            low, high = (float(v) for v in delay)
        except (TypeError, ValueError):
            raise ValueError(
                f"OperatorConfig.reaction_delay_s must be seconds or (low, high) seconds, got {self.reaction_delay_s!r}"
            ) from None
        object.__setattr__(self, "reaction_delay_s", (float(low), float(high)))  # always a range from here on
        if not 0.0 <= low <= high:
            raise ValueError(
                f"OperatorConfig.reaction_delay_s must be (low, high) with 0 <= low <= high, got {(low, high)}"
            )
        if not 0.0 <= self.intervene_probability <= 1.0:
            raise ValueError(
                f"OperatorConfig.intervene_probability must be in [0, 1], got {self.intervene_probability}"
            )
        if self.hand_speed_spread >= 1.0:
            raise ValueError(f"OperatorConfig.hand_speed_spread must be in [0, 1), got {self.hand_speed_spread}")
        if self.max_corrections < 0:
            raise ValueError(f"OperatorConfig.max_corrections must be >= 0, got {self.max_corrections}")


Event = tuple[float, float | None, str]  # (start_time, end_time or None while holding, reason)


class SimulatedOperator:
    """A person who watches the follower and corrects it through the leader; see the module docstring.

    ``update`` is called once per tick with the follower's joints and the cube, and returns the hand target for
    ``LeaderArm.step`` (None = hands off). Deterministic for a given seed (its own rng; the tremor is the leader's).
    """

    def __init__(
        self, kinematics: Kinematics, grasp: ScriptedGrasp, config: OperatorConfig | None = None, seed: int = 0
    ):
        self.kinematics = kinematics
        self.grasp = grasp
        self.config = config or OperatorConfig()
        self.mode = self.config.mode
        self.reset(seed)

    # ---- state ---------------------------------------------------------------------------------------------------
    def reset(self, seed: int | None = None) -> None:
        """Start a new episode: hands off, history and events cleared; ``seed`` reseeds the decisions."""
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        elif not hasattr(self, "_rng"):
            self._rng = np.random.default_rng(0)
        if self.mode not in MODES:
            raise ValueError(f"SimulatedOperator.mode must be one of {MODES}, got {self.mode!r}")
        self._t0: float | None = None
        self._history: deque[tuple[float, np.ndarray, float]] = deque()
        self._events: list[Event] = []
        self._watch_from = -math.inf  # no decisions before this time (cooldown)
        self._grab_at: float | None = None  # a decided, not yet started grab
        self._pending_reason = ""
        self._hold_start: float | None = None
        self._hold_reason = ""
        self._hand: np.ndarray | None = None
        self._follower_gripper = 0.0
        self._last_plan = -math.inf
        self.last_phase: str | None = None
        reset_grasp = getattr(self.grasp, "reset", None)
        if callable(reset_grasp):
            reset_grasp()

    @property
    def holding(self) -> bool:
        return self._hold_start is not None

    @property
    def events(self) -> list[Event]:
        """Corrections so far: (start_time, end_time, reason); end_time is None for the one in progress."""
        ongoing = [(self._hold_start, None, self._hold_reason)] if self._hold_start is not None else []
        return list(self._events) + ongoing

    # ---- the tick ------------------------------------------------------------------------------------------------
    def update(
        self,
        t: float,
        dt: float,
        follower_q: np.ndarray,
        cube_position: np.ndarray,
        grasp_success: bool,
        *,
        leader_q: np.ndarray | None = None,
    ) -> np.ndarray | None:
        """The hand target (6,) for the leader this tick, or None for hands off.

        ``leader_q`` is the leader's joint reading: a hand steers from where the leader is. Pass it: when it is None
        the follower's joints stand in, which coincide while the leader tracks the follower but lag it during a
        correction, so the hand moves slower (mean correction 1.2 s instead of 0.7 s in the closed-loop test).
        """
        _positive("dt", dt)
        follower_q = _joint_vector("follower_q", follower_q)
        leader_q = follower_q if leader_q is None else _joint_vector("leader_q", leader_q)
        cube = np.asarray(cube_position, dtype=float)
        if cube.shape != (3,):
            raise ValueError(f"cube_position must be (x, y, z), got shape {cube.shape}")
        if self.mode == "none":
            return None
        if self._t0 is None:
            self._t0 = float(t)
        # The person judges the grasp by the follower's jaw (it stops on the cube; the leader's closes on air).
        self._follower_gripper = float(follower_q[GRIPPER])
        tcp = np.asarray(self.kinematics.fk(follower_q)[0], dtype=float)
        self._history.append((float(t), tcp.copy(), float(np.linalg.norm(cube - tcp))))
        horizon = max(self.config.stuck_window_s, self.config.away_window_s) + 1.0
        while self._history and self._history[0][0] < t - horizon:
            self._history.popleft()

        if self.mode == "demo":
            if not self.holding:
                return self._grab(t, dt, leader_q, cube, "demo")
            return self._steer(t, dt, leader_q, cube)
        return self._correct(t, dt, leader_q, cube, bool(grasp_success))

    def _correct(
        self, t: float, dt: float, leader_q: np.ndarray, cube: np.ndarray, grasp_success: bool
    ) -> np.ndarray | None:
        cfg = self.config
        if self.holding:
            if grasp_success or t - self._hold_start >= cfg.correction_duration_s - 1e-9:
                self._let_go(t)
                return None
            hand = self._steer(t, dt, leader_q, cube)
            if cfg.release_at_phase is not None and self.last_phase == cfg.release_at_phase:
                self._let_go(t)
                return None
            return hand
        if self._grab_at is not None:
            if t >= self._grab_at - 1e-9:
                return self._grab(t, dt, leader_q, cube, self._pending_reason)
            return None
        eligible = (
            t - self._t0 >= cfg.min_policy_time_s - 1e-9
            and t >= self._watch_from - 1e-9
            and len(self._events) < cfg.max_corrections
            and not grasp_success
        )
        if not eligible:
            return None
        reason = self._trigger(t)
        if reason is None:
            return None
        if self._rng.random() < cfg.intervene_probability:
            low, high = cfg.reaction_delay_s
            self._grab_at = t + float(self._rng.uniform(low, high))
            self._pending_reason = reason
            if self._grab_at <= t + 1e-9:
                return self._grab(t, dt, leader_q, cube, reason)
        else:
            self._watch_from = t + cfg.cooldown_s
        return None

    def _trigger(self, t: float) -> str | None:
        """'stuck', 'away' or None, from the follower TCP history (each window must be fully covered)."""
        cfg = self.config
        oldest = self._history[0][0]
        _, tcp_now, dist_now = self._history[-1]
        if oldest <= t - cfg.stuck_window_s + 1e-9:
            start = t - cfg.stuck_window_s - 1e-9
            moved = max(float(np.linalg.norm(p - tcp_now)) for ti, p, _ in self._history if ti >= start)
            if moved < cfg.stuck_distance_m:
                return "stuck"
        if oldest <= t - cfg.away_window_s + 1e-9:
            closest = min(d for ti, _, d in self._history if ti >= t - cfg.away_window_s - 1e-9)
            if dist_now - closest > cfg.away_distance_m:
                return "away"
        return None

    # ---- the hand ------------------------------------------------------------------------------------------------
    def _plan(self, leader_q: np.ndarray, cube: np.ndarray) -> np.ndarray:
        """One re-aim: the grasp controller's next TCP target, as joints by one IK step from the leader's joints.

        The TCP is the leader's (the hand moves the leader; IK must start where the leader is); the gripper fed to
        the controller is the follower's, whose jaw tells whether the cube is held.
        """
        cfg = self.config
        tcp, rotation = self.kinematics.fk(leader_q)
        target_tcp, gripper_target, phase = self.grasp.act(
            np.asarray(tcp, dtype=float), self._follower_gripper, cube, tcp_rotation=rotation
        )
        self.last_phase = phase
        # A hand never moves at a steady speed: each re-aim covers a random share of the controller's step.
        spread = cfg.hand_speed_spread
        share = float(self._rng.uniform(1.0 - spread, 1.0 + spread)) if spread > 0 else 1.0
        target_tcp = tcp + share * (np.asarray(target_tcp, dtype=float) - tcp)
        hand = self.kinematics.ik_step(leader_q, target_tcp, damping=cfg.ik_damping, max_step=cfg.ik_max_step_rad)
        hand = np.asarray(hand, dtype=float).copy()
        hand[GRIPPER] = float(gripper_target)
        return hand

    def _grab(self, t: float, dt: float, leader_q: np.ndarray, cube: np.ndarray, reason: str) -> np.ndarray:
        """Take the leader with a brisk pull of ``grab_pull_rad`` toward where the grasp controller wants to go."""
        self._grab_at = None
        self._hold_start = float(t)
        self._hold_reason = reason
        reset_grasp = getattr(self.grasp, "reset", None)
        if callable(reset_grasp):
            reset_grasp()
        hand = self._plan(leader_q, cube)
        self._last_plan = float(t)
        direction = hand[:NUM_ARM_JOINTS] - leader_q[:NUM_ARM_JOINTS]
        if np.linalg.norm(direction) < 1e-4:  # nothing to fix in the arm (say, only the gripper): pull toward the cube
            tcp = np.asarray(self.kinematics.fk(leader_q)[0], dtype=float)
            toward = cube - tcp
            if np.linalg.norm(toward) < 1e-3:
                toward = np.array([0.0, 0.0, 0.05])
            probe = self.kinematics.ik_step(leader_q, tcp + 0.05 * toward / np.linalg.norm(toward))
            direction = np.asarray(probe, dtype=float)[:NUM_ARM_JOINTS] - leader_q[:NUM_ARM_JOINTS]
        norm = float(np.linalg.norm(direction))
        if norm > 1e-9 and norm < self.config.grab_pull_rad:
            hand[:NUM_ARM_JOINTS] = leader_q[:NUM_ARM_JOINTS] + direction * (self.config.grab_pull_rad / norm)
        lower = np.asarray(self.kinematics.lower, dtype=float)
        upper = np.asarray(self.kinematics.upper, dtype=float)
        self._hand = np.clip(hand, lower, upper)
        return self._hand.copy()

    def _steer(self, t: float, dt: float, leader_q: np.ndarray, cube: np.ndarray) -> np.ndarray:
        if self._hand is None or t - self._last_plan >= self.config.plan_period_s - 0.5 * dt - 1e-9:
            self._hand = self._plan(leader_q, cube)
            self._last_plan = float(t)
        return self._hand.copy()

    def _let_go(self, t: float) -> None:
        """Hands off: the leader stays where it was left (the intervention node has switched its torque off)."""
        self._events.append((self._hold_start, float(t), self._hold_reason))
        self._hold_start = None
        self._hand = None
        self._history.clear()  # watch afresh: the windows refill with what the policy does next
        self._watch_from = t + self.config.cooldown_s
