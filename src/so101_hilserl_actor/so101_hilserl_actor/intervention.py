"""When is a person driving, and what should the leader arm do meanwhile: the pure logic of the intervention node.

A person corrects the policy through the leader arm. While the policy drives, the leader's servos are powered with
low gains and commanded to the follower's joints, so the leader shadows the follower and the leader-follower
tracking error stays small and smooth. A hand that grabs the leader overpowers the low gains with a brisk pull: the
tracking error jumps. That jump is the automatic signal (devlog 022, LeRobot's
``GearedLeaderAutomaticControlWrapper``, seed-system-facts section 6):

- error = norm of the 5 arm joint differences follower - leader, in DEGREES (the gripper is left out: a person
  opens and closes it freely), one sample per control step (10 Hz) in a queue of 4;
- start when the variance of the last 2 errors exceeds 10 deg^2 (a jump of more than ~6.3 deg in one step);
- release when the variance of all 4 errors is below 0.01 deg^2 (the hand has let go: the leader is limp and still,
  the follower has caught up with it);
- the queue is cleared at every transition, so each decision looks only at samples of the new state.

On top of the seed's rule, two minimum durations stop flicker: an intervention lasts at least
``min_intervention_s`` and a new one cannot start sooner than ``min_release_gap_s`` after a release (the leader
needs that long to catch up with the follower once its torque is back on, which would otherwise look like a grab).

Manual override: a keyboard, pedal or joystick command (``force``) sets the state and pins it. A pinned state wins
over the automatic detector until the next manual command (which pins its own state) or the next episode
(``reset``); ``force(None)`` hands control back to the automatic detector at once. The automatic detector can be
switched off altogether (``DetectorConfig.auto_detect=False``): then only manual commands change the state.

The seed system really ran with the manual toggle (key 7); the automatic variant existed but was never configured.
Both are offered here; the simulated operator's closed-loop tests show the automatic one catches each correction
within one or two control periods.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

NUM_ARM = 5  # shoulder_pan .. wrist_roll: the joints whose tracking error counts


@dataclass(frozen=True)
class DetectorConfig:
    """Thresholds of the automatic detector. Queue lengths are in control steps (defaults for 10 Hz)."""

    queue_size: int = 4  # tracking-error samples kept
    start_window: int = 2  # the newest samples whose variance starts an intervention
    start_variance_deg2: float = 10.0  # var(last start_window errors) above this: a hand grabbed the leader
    release_variance_deg2: float = 0.01  # var(all queue_size errors) below this: the hand let go
    min_intervention_s: float = 0.3  # an automatic intervention lasts at least this long
    min_release_gap_s: float = 0.3  # no automatic start sooner than this after a release
    auto_detect: bool = True  # False: only manual commands (force) change the state

    def __post_init__(self) -> None:
        if self.queue_size < 2:
            raise ValueError(f"DetectorConfig.queue_size must be >= 2 samples, got {self.queue_size}")
        if not 2 <= self.start_window <= self.queue_size:
            raise ValueError(
                f"DetectorConfig.start_window must be in [2, queue_size={self.queue_size}], got {self.start_window}"
            )
        for name in ("start_variance_deg2", "release_variance_deg2"):
            if not getattr(self, name) > 0.0:
                raise ValueError(f"DetectorConfig.{name} must be > 0 deg^2, got {getattr(self, name)!r}")
        if not self.release_variance_deg2 < self.start_variance_deg2:
            raise ValueError(
                "DetectorConfig.release_variance_deg2 must be below start_variance_deg2 "
                f"({self.release_variance_deg2} >= {self.start_variance_deg2})"
            )
        for name in ("min_intervention_s", "min_release_gap_s"):
            if not getattr(self, name) >= 0.0:
                raise ValueError(f"DetectorConfig.{name} must be >= 0 s, got {getattr(self, name)!r}")


def tracking_error_deg(follower_q: Sequence[float], leader_q: Sequence[float]) -> float:
    """Norm of the 5 arm joint differences follower - leader (radians in, degrees out), as the seed system."""
    follower = np.asarray(follower_q, dtype=float)
    leader = np.asarray(leader_q, dtype=float)
    if follower.shape[0] < NUM_ARM or leader.shape[0] < NUM_ARM:
        raise ValueError(
            f"follower_q and leader_q need at least the {NUM_ARM} arm joints (JOINT_NAMES order), "
            f"got {follower.shape[0]} and {leader.shape[0]}"
        )
    return float(np.linalg.norm(np.rad2deg(follower[:NUM_ARM] - leader[:NUM_ARM])))


class InterventionDetector:
    """Is a person driving? ``update`` once per control step; ``force`` for manual commands; ``reset`` per episode."""

    def __init__(self, config: DetectorConfig | None = None):
        self.config = config or DetectorConfig()
        self.reset()

    def reset(self) -> None:
        """A new episode: not intervening, no manual override, empty queue, no minimum durations pending."""
        self._queue: deque[float] = deque(maxlen=self.config.queue_size)
        self._active = False
        self._override: bool | None = None
        self._changed_at = -np.inf  # time of the last transition (automatic or manual)
        self.last_error_deg = float("nan")

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

    def update(self, t: float, follower_q: Sequence[float], leader_q: Sequence[float]) -> bool:
        """One control step at time ``t`` (s, monotonic) with both arms' joints (rad); returns the state."""
        error = tracking_error_deg(follower_q, leader_q)
        self.last_error_deg = error
        self._queue.append(error)
        cfg = self.config
        if self._override is not None or not cfg.auto_detect or len(self._queue) < cfg.queue_size:
            return self._active
        since = float(t) - self._changed_at
        if not self._active:
            recent = list(self._queue)[-cfg.start_window :]
            if np.var(recent) > cfg.start_variance_deg2 and since >= cfg.min_release_gap_s - 1e-9:
                self._set(True, t)
        elif np.var(self._queue) < cfg.release_variance_deg2 and since >= cfg.min_intervention_s - 1e-9:
            self._set(False, t)
        return self._active

    def _set(self, active: bool, t: float | None) -> None:
        if active != self._active:
            self._queue.clear()
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
    """The leader's torque and commands, from the intervention state (seed ``BaseLeaderControlWrapper``).

    Policy driving: torque on, commanded to the follower's joints (all six, gripper included) every step, so the
    leader shadows the follower and a grab shows as a jump in the tracking error. Person driving: torque off, no
    commands (the leader is limp under the hand and stays where it is left). Torque changes are requested on
    transitions only, one call in flight at a time; a failed or unanswered call is retried at the next step.
    ``tracking=False``: the leader is neither commanded nor switched (a passive leader; the detector then only
    works with manual commands).
    """

    def __init__(self, tracking: bool = True):
        self.tracking = bool(tracking)
        self.torque: bool | None = None  # last confirmed torque state; None: unknown (at start, after a failure)
        self._pending: bool | None = None  # the request in flight

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
