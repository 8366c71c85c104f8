"""Episode logic of the actor: reward from the classifier, success, timeout, operator marks and the episode counters.

A step's reward is the classifier's verdict on the image it led to, matched by that image's exact stamp; no verdict
(late or dropped) is a negative frame, so success is never granted on frames nobody judged. Success alone ends the
episode with a positive reward (``consecutive_success_frames`` in a row, after ``min_steps_before_success``); every
other step pays ``step_penalty``, so keeping a grasp alive never pays more than finishing. ``max_steps`` without
success truncate (the learner bootstraps), and so does a failure mark unless ``failure_penalty`` > 0 (a V=0 terminal
would make giving up better than continuing). Pure logic, no ROS: stamps are integer ns or ROS time objects.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass
from typing import NamedTuple

from so101_contract.settings import setting
from so101_contract.stamps import stamp_to_ns

SUCCESS = "success"
TIMEOUT = "timeout"
SUCCESS_MARK = "success_mark"
FAILURE_MARK = "failure_mark"
STOPPED = "stopped"
END_REASONS = (SUCCESS, TIMEOUT, SUCCESS_MARK, FAILURE_MARK, STOPPED)


@dataclass(frozen=True)
class EpisodeConfig:
    """Defaults suit the 10 Hz simulation; the seed system's real-robot values are noted where they differ.

    consecutive_success_frames: seed 10 (its classifier ran on a real camera at 10 Hz).
    min_steps_before_success: seed 30.
    max_frame_age_s: an observation whose newest image is older than this at the control step counts as stale.
    reward_cache_size: how many recent classifier outputs are kept for matching (a few seconds at 10-30 Hz).
    """

    max_steps: int = setting(100, "steps per episode (10 s at 10 Hz)", (1, 100_000))
    consecutive_success_frames: int = setting(3, "frames in a row the reward node calls success", (1, 10_000))
    min_steps_before_success: int = setting(10, "no success before this step", (0, 100_000))
    success_reward: float = 10.0
    step_penalty: float = -0.05
    failure_penalty: float = setting(
        0.0, "failure mark: 0 = truncated (bootstrapped); > 0 = terminal, reward -penalty", (0.0, 1000.0)
    )
    max_frame_age_s: float = setting(0.25, "older images are stale: counted, and the arm holds", (0.001, 10.0))
    reward_cache_size: int = 128

    def __post_init__(self) -> None:
        for name in ("max_steps", "consecutive_success_frames", "reward_cache_size"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"EpisodeConfig.{name} must be at least 1, got {getattr(self, name)}")
        if self.min_steps_before_success < 0:
            raise ValueError(
                f"EpisodeConfig.min_steps_before_success must be >= 0, got {self.min_steps_before_success}"
            )
        if not (math.isfinite(self.failure_penalty) and self.failure_penalty >= 0.0):
            raise ValueError(
                f"EpisodeConfig.failure_penalty must be >= 0 (0 = a failure mark truncates), got {self.failure_penalty}"
            )
        if not self.max_frame_age_s > 0:
            raise ValueError(f"EpisodeConfig.max_frame_age_s must be positive (seconds), got {self.max_frame_age_s}")


class StepOutcome(NamedTuple):
    reward: float
    probability: float  # NaN when no classifier output matched the image
    matched: bool
    terminated: bool  # success, a success mark, or a failure mark with a failure penalty: no bootstrap
    truncated: bool  # timeout, stop, or a failure mark without penalty: the learner bootstraps
    end_reason: str  # "" while the episode goes on, else one of END_REASONS


class EpisodeTracker:
    """One episode at a time: ``reset``, then one ``step`` per control step until it returns an end."""

    def __init__(self, config: EpisodeConfig | None = None):
        self.config = config or EpisodeConfig()
        self._signals: OrderedDict[int, tuple[float, bool]] = OrderedDict()
        self.episode_id: int | None = None
        self._clear()

    def _clear(self) -> None:
        self.steps = 0
        self.episode_return = 0.0
        self.intervention_steps = 0
        self.interventions = 0
        self.stale_frames = 0
        self.reward_misses = 0
        self.streak = 0
        self.end_reason = ""
        self._pending_mark = ""
        self._stopping = False
        self._last_intervention = False

    # ---- episode ---------------------------------------------------------------------------------------------
    def reset(self, episode_id: int) -> None:
        """Start episode ``episode_id``; counters go to zero. Classifier outputs already received are kept (one
        for the new episode's first image may arrive before this call)."""
        self.episode_id = int(episode_id)
        self._clear()

    @property
    def done(self) -> bool:
        return bool(self.end_reason)

    @property
    def success(self) -> bool:
        return self.end_reason in (SUCCESS, SUCCESS_MARK)

    def mark_success(self) -> None:
        """Operator: the task succeeded; the episode ends at the next step, terminated with the success reward."""
        self._pending_mark = SUCCESS_MARK

    def mark_failure(self) -> None:
        """Operator: the attempt failed; the episode ends at the next step."""
        self._pending_mark = FAILURE_MARK

    def stop(self) -> None:
        """The actor stops mid-episode (shutdown, torque off): the episode ends at the next step, truncated, as
        "stopped" (an operator mark already pending keeps its own verdict)."""
        self._stopping = True

    # ---- reward ----------------------------------------------------------------------------------------------
    def record_reward_signal(self, stamp, probability: float, success: bool) -> None:
        """A classifier output for the image with ``stamp``: its probability and the reward node's verdict."""
        probability = float(probability)
        if not (math.isfinite(probability) and 0.0 <= probability <= 1.0):
            raise ValueError(f"reward signal probability must be in [0, 1], got {probability}")
        key = stamp_to_ns(stamp)
        self._signals[key] = (probability, bool(success))
        self._signals.move_to_end(key)
        while len(self._signals) > self.config.reward_cache_size:
            self._signals.popitem(last=False)

    def verdict(self, image_stamp) -> tuple[float, bool]:
        """(probability, positive) of the classifier's output for the image with this exact stamp; (NaN, False)
        when none arrived. No side effects."""
        return self._signals.get(stamp_to_ns(image_stamp), (math.nan, False))

    def judged(self, image_stamp) -> bool:
        """Whether a classifier output for the image with this stamp has arrived."""
        return stamp_to_ns(image_stamp) in self._signals

    def is_stale(self, image_stamp, now) -> bool:
        """Whether the image with ``image_stamp`` is older than max_frame_age_s at time ``now``."""
        return (stamp_to_ns(now) - stamp_to_ns(image_stamp)) > self.config.max_frame_age_s * 1e9

    # ---- step ------------------------------------------------------------------------------------------------
    def step(self, image_stamp, intervention: bool = False, stale_frame: bool = False) -> StepOutcome:
        """Account one control step whose resulting observation has image ``image_stamp``.

        ``intervention``: the step's action was the human's. ``stale_frame``: that observation's image was stale.
        """
        if self.episode_id is None:
            raise RuntimeError("EpisodeTracker.step before reset: call reset(episode_id) at episode start")
        if self.done:
            raise RuntimeError(f"episode {self.episode_id} already ended ({self.end_reason}); call reset first")
        cfg = self.config
        probability, positive = self.verdict(image_stamp)
        matched = not math.isnan(probability)
        reward = cfg.step_penalty  # every step that does not finish the episode, a positive frame included

        self.steps += 1
        if not matched:
            self.reward_misses += 1
        self.streak = self.streak + 1 if positive else 0
        if intervention:
            self.intervention_steps += 1
            if not self._last_intervention:
                self.interventions += 1
        self._last_intervention = bool(intervention)
        if stale_frame:
            self.stale_frames += 1

        terminated = truncated = False
        if self._pending_mark == SUCCESS_MARK:
            self.end_reason, terminated, reward = SUCCESS_MARK, True, cfg.success_reward
        elif self._pending_mark == FAILURE_MARK:
            self.end_reason = FAILURE_MARK
            if cfg.failure_penalty > 0:
                terminated, reward = True, -cfg.failure_penalty
            else:
                truncated = True
        elif self._stopping:
            self.end_reason, truncated = STOPPED, True
        elif self.streak >= cfg.consecutive_success_frames and self.steps >= cfg.min_steps_before_success:
            self.end_reason, terminated, reward = SUCCESS, True, cfg.success_reward
        elif self.steps >= cfg.max_steps:
            self.end_reason, truncated = TIMEOUT, True
        self.episode_return += reward
        return StepOutcome(float(reward), probability, matched, terminated, truncated, self.end_reason)

    def summary(self) -> dict:
        """The EpisodeSummary fields this tracker owns (plus reward_misses, for diagnostics)."""
        return {
            "episode_id": self.episode_id,
            "steps": self.steps,
            "episode_return": self.episode_return,
            "success": self.success,
            "intervention_steps": self.intervention_steps,
            "interventions": self.interventions,
            "stale_frames": self.stale_frames,
            "end_reason": self.end_reason,
            "reward_misses": self.reward_misses,
        }
