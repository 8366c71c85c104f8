"""A simulated person on a simulated leader arm: the stand-in for the human of HIL-SERL in simulation.

The person watches the follower and puts the leader where the follower should go next; the actor turns the leader's
pose into an action of the policy. Its only outputs are where its hand pushes the leader and, with a pedal, that it
is driving. ``LeaderArm`` is the leader's six joints as a powered, low-gain STS3215 leader behaves (tracking its
commands, limp without torque, following a hand with tremor); ``SimulatedOperator`` is the person, correcting the way
HIL-SERL's authors tell people to, or driving whole episodes as demonstrations.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np

from so101_contract.control import CONTROL_PERIOD_S
from so101_contract.joints import GRIPPER, NUM_ARM_JOINTS, NUM_JOINTS
from so101_contract.settings import setting
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

    Torque on and no hand: it tracks the last ``leader/joint_commands`` with a first-order lag and a little servo
    jitter; torque off and no hand: limp; a hand on it: the joints follow the hand quickly, with tremor.

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
    """When and how the simulated person helps. Times in seconds since the episode's first update.

    Trigger: after ``min_policy_time_s`` of the policy alone, the person takes over when over the last
    ``progress_window_s`` the TCP came less than ``progress_m`` closer to the grasp point (stalled) or went more
    than ``away_m`` further away (erring), and reacts after ``reaction_delay_s``. Taper: whether it helps at all in
    an episode is drawn at the episode's start with probability max(``min_help_probability``, 1 - the policy's own
    success rate over the last ``taper_episodes`` episodes). Skill: ``hand_speed_spread`` (each re-aim covers
    U(1 -+ spread) of the scripted step) and the scripted grasp's geometry.
    """

    mode: str = "correct"  # "correct", "demo" (drives the whole episode) or "none"
    min_policy_time_s: float = 2.5  # let the policy act 25 control steps first
    progress_window_s: float = 1.0
    progress_m: float = 0.01
    away_m: float = 0.02
    reaction_delay_s: float | tuple[float, float] = (0.3, 0.5)  # s between deciding and grabbing: fixed or (low, high)
    intervene_probability: float = 1.0  # scales the help probability (0: never helps)
    taper_episodes: int = 20
    min_help_probability: float = 0.1
    grab_pull_rad: float = 0.25  # norm (5 arm joints) of the brisk pull that starts a grab (0.25 rad = 14 deg)
    hand_speed_spread: float = 0.2
    plan_period_s: float = CONTROL_PERIOD_S  # how often the hand re-aims (the scripted steps are sized for 10 Hz)
    ik_iterations: int = 5  # IK steps that put the leader's TCP on the hand's target

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"OperatorConfig.mode must be one of {MODES}, got {self.mode!r}")
        for name in ("min_policy_time_s", "grab_pull_rad", "hand_speed_spread"):
            _non_negative(f"OperatorConfig.{name}", getattr(self, name))
        for name in ("progress_window_s", "progress_m", "away_m", "plan_period_s"):
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
        for name in ("intervene_probability", "min_help_probability"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"OperatorConfig.{name} must be in [0, 1], got {getattr(self, name)}")
        if self.hand_speed_spread >= 1.0:
            raise ValueError(f"OperatorConfig.hand_speed_spread must be in [0, 1), got {self.hand_speed_spread}")
        if self.taper_episodes < 1 or self.ik_iterations < 1:
            raise ValueError("OperatorConfig.taper_episodes and ik_iterations must be >= 1")


@dataclass(frozen=True)
class OperatorSettings:
    """The simulated operator as the sim node runs it (its ``operator_*`` parameters); ``config()`` is the
    OperatorConfig. The node's reaction delay is one fixed delay (a ROS parameter is one number), the middle of
    OperatorConfig's default range."""

    operator_mode: str = setting(OperatorConfig.mode, "simulated operator: correct, demo or none", MODES)
    operator_reaction_delay_s: float = setting(0.4, "operator's reaction delay (s)", (0.0, 10.0))
    operator_intervene_probability: float = setting(
        OperatorConfig.intervene_probability, "chance the operator corrects when due", (0.0, 1.0)
    )
    operator_pedal: bool = setting(
        False,
        "the simulated operator presses the intervention pedal (operator/commands) while its hand is on the leader",
    )
    operator_demo_episodes: int = setting(
        0, "the simulated operator drives the first N episodes whole (preloaded demonstrations, before the policy "
        "acts)", (0, 10**6)
    )  # fmt: skip

    def config(self) -> OperatorConfig:
        return OperatorConfig(
            mode=self.operator_mode,
            reaction_delay_s=self.operator_reaction_delay_s,
            intervene_probability=self.operator_intervene_probability,
        )


Event = tuple[float, float | None, str]  # (start_time, end_time or None while holding, reason)


class SimulatedOperator:
    """A person who watches the follower and helps through the leader.

    In "correct" mode it lets the policy act first (``min_policy_time_s``), takes over when the policy makes no
    progress toward the grasp or moves away from it, then drives through to success without undoing the policy's
    progress (the scripted grasp resumes from where the arm is) and holds until the episode ends. Early on it helps
    in every episode where the policy stalls; its help tapers as the policy's own success over the last episodes
    rises. In "demo" mode it drives the whole episode (demonstrations).

    ``update`` is called once per tick with the follower's joints and the cube, and returns the hand target for
    ``LeaderArm.step`` (None = hands off). ``end_episode(success)`` tells it how the episode ended (what a person
    sees), which drives the taper. Deterministic for a given seed.
    """

    def __init__(
        self, kinematics: Kinematics, grasp: ScriptedGrasp, config: OperatorConfig | None = None, seed: int = 0
    ):
        self.kinematics = kinematics
        self.grasp = grasp
        self.config = config or OperatorConfig()
        self.mode = self.config.mode
        self._outcomes: deque[bool] = deque(maxlen=self.config.taper_episodes)  # the policy succeeded alone
        self.reset(seed)

    # ---- episodes ------------------------------------------------------------------------------------------------
    def reset(self, seed: int | None = None) -> None:
        """Start a new episode: hands off; ``seed`` reseeds the decisions. Draws whether it helps this episode."""
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        elif not hasattr(self, "_rng"):
            self._rng = np.random.default_rng(0)
        if self.mode not in MODES:
            raise ValueError(f"SimulatedOperator.mode must be one of {MODES}, got {self.mode!r}")
        self._t0: float | None = None
        self._history: deque[tuple[float, float]] = deque()  # (t, TCP distance to the grasp point)
        self._events: list[Event] = []
        self._grab_at: float | None = None
        self._pending_reason = ""
        self._hold_start: float | None = None
        self._hold_reason = ""
        self._hand: np.ndarray | None = None
        self._follower_q: np.ndarray | None = None
        self._last_plan = -math.inf
        self.last_phase: str | None = None
        self.helps = bool(self._rng.random() < self.help_probability)
        self.grasp.reset()

    @property
    def help_probability(self) -> float:
        """Chance to help in the next episode: tapers as the policy succeeds alone."""
        cfg = self.config
        rate = sum(self._outcomes) / len(self._outcomes) if self._outcomes else 0.0
        return cfg.intervene_probability * max(cfg.min_help_probability, 1.0 - rate)

    def end_episode(self, success: bool) -> None:
        """How the episode ended: a success without the person's hand counts for the policy (the taper)."""
        if self._t0 is not None:  # an episode ran (evaluation episodes, hands off, count too)
            self._outcomes.append(bool(success) and not self._events and self._hold_start is None)

    @property
    def holding(self) -> bool:
        return self._hold_start is not None

    @property
    def events(self) -> list[Event]:
        """Takeovers so far: (start_time, end_time, reason); end_time is None for the one in progress."""
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
        """The hand target (6,) for the leader this tick, or None for hands off. ``leader_q``: the leader's
        reading (the hand moves the leader from where it is); None = the follower's joints."""
        _positive("dt", dt)
        follower_q = _joint_vector("follower_q", follower_q)
        leader_q = follower_q if leader_q is None else _joint_vector("leader_q", leader_q)
        cube = np.asarray(cube_position, dtype=float)
        if cube.shape != (3,):
            raise ValueError(f"cube_position must be (x, y, z), got shape {cube.shape}")
        if self._t0 is None:
            self._t0 = float(t)
        if self.mode == "none":
            return None
        self._follower_q = follower_q
        if self.holding:
            return self._steer(t, leader_q, cube)
        if self.mode == "demo":
            return self._grab(t, leader_q, cube, "demo")
        tcp, rotation = self.kinematics.fk(follower_q)
        distance = float(np.linalg.norm(self.grasp.grasp_tcp_position(cube, rotation) - np.asarray(tcp)))
        self._history.append((float(t), distance))
        while self._history and self._history[0][0] < t - self.config.progress_window_s - 1e-9:
            self._history.popleft()
        if self._grab_at is not None:
            return self._grab(t, leader_q, cube, self._pending_reason) if t >= self._grab_at - 1e-9 else None
        cfg = self.config
        if not self.helps or grasp_success or t - self._t0 < cfg.min_policy_time_s - 1e-9:
            return None
        reason = self._trigger(t)
        if reason is None:
            return None
        low, high = cfg.reaction_delay_s
        self._grab_at, self._pending_reason = t + float(self._rng.uniform(low, high)), reason
        return self._grab(t, leader_q, cube, reason) if self._grab_at <= t + 1e-9 else None

    def _trigger(self, t: float) -> str | None:
        """'stalled', 'away' or None from the distance history (the window must be covered)."""
        cfg = self.config
        oldest_t, oldest = self._history[0]
        if oldest_t > t - cfg.progress_window_s + 1e-9:
            return None
        now = self._history[-1][1]
        if now - min(d for _, d in self._history) > cfg.away_m:
            return "away"
        if oldest - now < cfg.progress_m:
            return "stalled"
        return None

    # ---- the hand ------------------------------------------------------------------------------------------------
    def _plan(self, leader_q: np.ndarray, cube: np.ndarray) -> np.ndarray:
        """One re-aim: the scripted grasp's next TCP target for the follower, as leader joints (IK from the leader's
        joints) and the jaw target. The person watches the follower: the grasp plans from its TCP and jaw."""
        cfg = self.config
        tcp, rotation = self.kinematics.fk(self._follower_q)
        tcp = np.asarray(tcp, dtype=float)
        target, jaw, phase = self.grasp.act(tcp, float(self._follower_q[GRIPPER]), cube, tcp_rotation=rotation)
        self.last_phase = phase
        spread = cfg.hand_speed_spread
        share = float(self._rng.uniform(1.0 - spread, 1.0 + spread)) if spread > 0 else 1.0
        target = tcp + share * (np.asarray(target, dtype=float) - tcp)
        hand = np.asarray(leader_q, dtype=float).copy()
        for _ in range(cfg.ik_iterations):
            hand = np.asarray(self.kinematics.ik_step(hand, target, damping=0.05, max_step=0.5), dtype=float)
        hand[GRIPPER] = float(jaw)
        return np.clip(hand, self.kinematics.lower, self.kinematics.upper)

    def _grab(self, t: float, leader_q: np.ndarray, cube: np.ndarray, reason: str) -> np.ndarray:
        """Take the leader with a brisk pull of at least ``grab_pull_rad`` toward the first target; the scripted
        grasp resumes from where the follower is (no undoing of the policy's progress)."""
        self._grab_at = None
        self._hold_start, self._hold_reason = float(t), reason
        tcp, rotation = self.kinematics.fk(self._follower_q)
        self.grasp.resume(np.asarray(tcp, dtype=float), float(self._follower_q[GRIPPER]), cube, rotation)
        hand = self._plan(leader_q, cube)
        self._last_plan = float(t)
        direction = hand[:NUM_ARM_JOINTS] - leader_q[:NUM_ARM_JOINTS]
        norm = float(np.linalg.norm(direction))
        if 1e-9 < norm < self.config.grab_pull_rad:
            pulled = leader_q[:NUM_ARM_JOINTS] + direction * (self.config.grab_pull_rad / norm)
            hand[:NUM_ARM_JOINTS] = np.clip(
                pulled, self.kinematics.lower[:NUM_ARM_JOINTS], self.kinematics.upper[:NUM_ARM_JOINTS]
            )
        self._hand = hand
        return self._hand.copy()

    def _steer(self, t: float, leader_q: np.ndarray, cube: np.ndarray) -> np.ndarray:
        if self._hand is None or t - self._last_plan >= self.config.plan_period_s - 1e-6:
            self._hand = self._plan(leader_q, cube)
            self._last_plan = float(t)
        return self._hand.copy()
