"""When is a person driving, and what should the leader arm do meanwhile: the pure logic of the intervention node.

While the policy drives, the leader is powered with low gains and commanded to the follower's joints every control
step: it can only move toward its commands, and no faster than its servo lag. A hand moves it elsewhere, or faster.
So an intervention starts when the leader's motion that this shadowing cannot explain, summed over the last few
steps, exceeds a few degrees over the 5 arm joints; a leader that merely lags a fast follower does not start one. It
ends when the tracking error has settled (the hand let go, the follower caught up). Manual commands (``force``) pin
the state until the next manual command or episode.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from so101_contract.settings import setting

NUM_ARM = 5  # shoulder_pan .. wrist_roll: the joints that count (a person opens and closes the gripper freely)


@dataclass(frozen=True)
class DetectorConfig:
    """Thresholds of the automatic detector. Queue lengths are in control steps (defaults for 10 Hz)."""

    # No automatic decision before the queue is full again.
    queue_size: int = setting(4, "tracking-error samples kept (control steps)", (2, 10_000))
    start_window: int = setting(
        3, "newest steps whose leader motion unexplained by its shadowing is summed (<= queue_size)", (1, 10_000)
    )
    start_deviation_deg: float = setting(
        3.0, "start when that sum exceeds this (deg, norm over the 5 arm joints)", (1e-6, 1e6)
    )
    # The simulated leader's time constant is 0.15 s; motion toward the command faster than this lag allows counts
    # as a hand.
    leader_time_constant_s: float = setting(
        0.1, "fastest first-order lag of the powered leader toward its command (s)", (1e-3, 10.0)
    )
    release_variance_deg2: float = setting(
        0.01, "release when var(all queue_size tracking errors) is below this (deg^2)", (1e-9, 1e6)
    )
    min_intervention_s: float = setting(0.3, "an automatic intervention lasts at least this (s)", (0.0, 60.0))
    # (the leader catches up meanwhile)
    min_release_gap_s: float = setting(0.3, "no automatic start sooner than this after a release (s)", (0.0, 60.0))
    # False: only manual commands (force) change the state.
    auto_detect: bool = setting(True, "detect interventions from the leader's motion (else manual only)")

    def __post_init__(self) -> None:
        if self.queue_size < 2:
            raise ValueError(f"DetectorConfig.queue_size must be >= 2 samples, got {self.queue_size}")
        if not 1 <= self.start_window <= self.queue_size:
            raise ValueError(
                f"DetectorConfig.start_window must be in [1, queue_size={self.queue_size}], got {self.start_window}"
            )
        for name in ("start_deviation_deg", "leader_time_constant_s", "release_variance_deg2"):
            if not getattr(self, name) > 0.0:
                raise ValueError(f"DetectorConfig.{name} must be > 0, got {getattr(self, name)!r}")
        for name in ("min_intervention_s", "min_release_gap_s"):
            if not getattr(self, name) >= 0.0:
                raise ValueError(f"DetectorConfig.{name} must be >= 0 s, got {getattr(self, name)!r}")


def _arm(q: Sequence[float], name: str) -> np.ndarray:
    q = np.asarray(q, dtype=float)
    if q.ndim != 1 or q.shape[0] < NUM_ARM:
        raise ValueError(f"{name} needs at least the {NUM_ARM} arm joints (JOINT_NAMES order), got shape {q.shape}")
    return q[:NUM_ARM]


def tracking_error_deg(follower_q: Sequence[float], leader_q: Sequence[float]) -> float:
    """Norm of the 5 arm joint differences follower - leader (radians in, degrees out)."""
    follower = np.asarray(follower_q, dtype=float)
    leader = np.asarray(leader_q, dtype=float)
    if follower.shape[0] < NUM_ARM or leader.shape[0] < NUM_ARM:
        raise ValueError(
            f"follower_q and leader_q need at least the {NUM_ARM} arm joints (JOINT_NAMES order), "
            f"got {follower.shape[0]} and {leader.shape[0]}"
        )
    return float(np.linalg.norm(np.rad2deg(follower[:NUM_ARM] - leader[:NUM_ARM])))


def _nearest_in_triangle(p: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The point of the triangle with corners 0, a and b nearest to p (any dimension, degenerate triangles too)."""
    origin = np.zeros_like(p)
    candidates = []
    for u, v in ((origin, a), (origin, b), (a, b)):
        edge = v - u
        length2 = float(edge @ edge)
        s = 0.0 if length2 <= 1e-18 else min(1.0, max(0.0, float((p - u) @ edge) / length2))
        candidates.append(u + s * edge)
    aa, ab, bb = float(a @ a), float(a @ b), float(b @ b)
    det = aa * bb - ab * ab
    if det > 1e-12 * aa * bb:  # a proper triangle: the projection onto its plane, if it falls inside
        x = (bb * float(a @ p) - ab * float(b @ p)) / det
        y = (aa * float(b @ p) - ab * float(a @ p)) / det
        if x >= 0.0 and y >= 0.0 and x + y <= 1.0:
            candidates.append(x * a + y * b)
    return min(candidates, key=lambda c: float((p - c) @ (p - c)))


def unexplained_motion_deg(
    previous_q: Sequence[float],
    leader_q: Sequence[float],
    commands: tuple[Sequence[float] | None, Sequence[float] | None],
    dt: float,
    time_constant_s: float,
) -> np.ndarray:
    """The leader's motion over ``dt`` (5 arm joints, deg) that shadowing its commands cannot explain.

    Shadowing: a first-order lag, no faster than ``time_constant_s``, toward the command, which switched from
    ``commands[0]`` (in force at ``previous_q``) to ``commands[1]`` (the newest) at some instant of the step. Every
    displacement this produces lies in the triangle with corners 0, k (c0 - q0) and k (c1 - q0), k = 1 - exp(-dt /
    time_constant_s), and so do those of a slower lag, a late command or torque, a stalled leader. A command None:
    the leader is not commanded (limp, or passive) and should not move by itself. Returns the motion minus the
    nearest displacement of that triangle (zero when shadowing explains it all).
    """
    q0 = np.rad2deg(_arm(previous_q, "previous_q"))
    motion = np.rad2deg(_arm(leader_q, "leader_q")) - q0
    k = -math.expm1(-float(dt) / float(time_constant_s))
    corners = [np.zeros(NUM_ARM) if c is None else k * (np.rad2deg(_arm(c, "leader command")) - q0) for c in commands]
    return motion - _nearest_in_triangle(motion, *corners)


class InterventionDetector:
    """Is a person driving? ``update`` once per control step; ``force`` for manual commands; ``reset`` per episode.

    Start: the norm of the summed unexplained leader motion of the last ``start_window`` steps
    (``unexplained_motion_deg``) exceeds ``start_deviation_deg``. Release: the variance of the last ``queue_size``
    tracking errors is below ``release_variance_deg2``. Automatic decisions wait for a full queue of samples since
    the last transition or reset, and for the minimum durations. A pinned manual state wins until the next manual
    command or ``reset``; ``force(None)`` unpins at once.
    """

    def __init__(self, config: DetectorConfig | None = None):
        self.config = config or DetectorConfig()
        self.reset()

    def reset(self) -> None:
        """A new episode: not intervening, no manual override, empty queues, no minimum durations pending."""
        self._queue: deque[float] = deque(maxlen=self.config.queue_size)
        self._unexplained: deque[np.ndarray] = deque(maxlen=self.config.start_window)
        self._previous: tuple[float, np.ndarray, np.ndarray | None] | None = None  # (t, leader arm, command arm)
        self._active = False
        self._override: bool | None = None
        self._changed_at = -np.inf  # time of the last transition (automatic or manual)
        self.last_error_deg = float("nan")
        self.last_deviation_deg = float("nan")  # the start rule's statistic at the last update

    @property
    def active(self) -> bool:
        return self._active

    @property
    def override(self) -> bool | None:
        """The pinned manual state, or None while the automatic detector decides."""
        return self._override

    def force(self, active: bool | None, t: float | None = None) -> bool:
        """A manual command: pin the state to ``active`` (None: unpin, the automatic detector decides again).

        The pinned state holds until the next manual command or ``reset``. ``t`` (s, the clock of ``update``)
        starts the minimum durations from the manual transition too. Returns the (new) state.
        """
        if active is None:
            self._override = None
            return self._active
        self._override = bool(active)
        self._set(bool(active), t)
        return self._active

    def update(
        self,
        t: float,
        follower_q: Sequence[float],
        leader_q: Sequence[float],
        leader_command: Sequence[float] | None = None,
    ) -> bool:
        """One control step at time ``t`` (s, monotonic) with both arms' joints (rad); returns the state.

        ``leader_command``: the newest joint command sent to the leader before this step (rad), None when the
        leader is not commanded (torque off, or a passive leader).
        """
        error = tracking_error_deg(follower_q, leader_q)
        self.last_error_deg = error
        self._queue.append(error)
        leader = _arm(leader_q, "leader_q").copy()
        command = None if leader_command is None else _arm(leader_command, "leader_command").copy()
        if self._previous is not None and float(t) > self._previous[0]:
            t0, q0, c0 = self._previous
            motion = unexplained_motion_deg(
                q0, leader, (c0, command), float(t) - t0, self.config.leader_time_constant_s
            )
            self._unexplained.append(motion)
        self._previous = (float(t), leader, command)
        self.last_deviation_deg = float(np.linalg.norm(np.sum(self._unexplained, axis=0))) if self._unexplained else 0.0
        cfg = self.config
        if self._override is not None or not cfg.auto_detect or len(self._queue) < cfg.queue_size:
            return self._active
        since = float(t) - self._changed_at
        if not self._active:
            if self.last_deviation_deg > cfg.start_deviation_deg and since >= cfg.min_release_gap_s - 1e-9:
                self._set(True, t)
        elif np.var(self._queue) < cfg.release_variance_deg2 and since >= cfg.min_intervention_s - 1e-9:
            self._set(False, t)
        return self._active

    def _set(self, active: bool, t: float | None) -> None:
        if active != self._active:
            self._queue.clear()
            self._unexplained.clear()
            if t is not None:
                self._changed_at = float(t)
        self._active = active


# ---- the leader arm ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LeaderAction:
    """What to do with the leader this control step."""

    target: np.ndarray | None  # joint command (the follower's joints, all six), or None: send nothing
    torque: bool | None  # switch the torque to this now (one service call), or None: no call


class LeaderManager:
    """The leader's torque and commands, from the intervention state.

    Policy driving: torque on, commanded to the follower's joints (all six, gripper included) every step, so the
    leader shadows the follower and a hand shows as motion that shadowing cannot explain. Person driving: torque
    off, no commands (the leader is limp under the hand and stays where it is left). Torque changes are requested on
    transitions only, one call in flight at a time; a failed or unanswered call is retried at the next step.
    ``tracking=False``: the leader is neither commanded nor switched (a passive leader: the detector then reads any
    motion of it as a hand).
    """

    def __init__(self, tracking: bool = True):
        self.tracking = bool(tracking)
        self.torque: bool | None = None  # last confirmed torque state; None: unknown (at start, after a failure)
        self._pending: bool | None = None  # the request in flight
        self.command: np.ndarray | None = None  # the newest target sent, which the leader follows; None once limp

    def step(self, intervening: bool, follower_q: Sequence[float] | None) -> LeaderAction:
        """The action for this step; ``follower_q`` None (no follower state yet) sends no command."""
        if not self.tracking:
            return LeaderAction(target=None, torque=None)
        want = not intervening
        target = None
        if want and follower_q is not None:
            target = np.array(follower_q, dtype=float)
        torque = None
        if self._pending is None and self.torque != want:
            torque = want
            self._pending = want
        if target is not None:
            self.command = target
        if torque is False:  # limp from now on: it follows no command
            self.command = None
        return LeaderAction(target=target, torque=torque)

    def torque_done(self, requested: bool, ok: bool) -> None:
        """The answer to a torque request: confirmed (``ok``), or failed, which leaves the state unknown."""
        if self._pending == requested:
            self._pending = None
        self.torque = bool(requested) if ok else None

    @property
    def pending(self) -> bool | None:
        return self._pending


# ---- joystick buttons --------------------------------------------------------------------------------------------


class ButtonEdges:
    """Press edges of joystick buttons: a button counts once when it goes down, not while it is held.

    Buttons missing from the previous message count as released, so the very first message's pressed buttons are
    presses (joy drivers that publish on change only would otherwise lose the first press).
    """

    def __init__(self):
        self._previous: list[int] = []

    def pressed(self, buttons: Sequence[int]) -> set[int]:
        now = [int(b) for b in buttons]
        edges = {i for i, down in enumerate(now) if down and not (i < len(self._previous) and self._previous[i])}
        self._previous = now
        return edges
