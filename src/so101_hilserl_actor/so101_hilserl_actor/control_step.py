"""The actor's control step as plain Python: the node feeds it readings and sends what it returns.

One ``step(inputs)`` per control period (follower and leader joints, the wrist image and its stamp, the intervention
flag, the time) returns the joint target to send and, once known, the previous step's transition and, at an
episode's end, the episode record; reward signals, operator marks and new weights arrive in between from other
threads. The policy runs every step, intervention or not, and every action goes through the policy's action mapping,
so the stored action is the executed one; exploration follows the one schedule shared with the learner, and weights
are swapped by default only at an episode boundary (``ControlStep`` spells out the order inside a step and the rules).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import torch

from so101_contract.control import CONTROL_RATE_HZ
from so101_contract.settings import setting
from so101_driver.model.kinematics import Kinematics
from so101_driver.vision.preprocessing import ImagePreprocessing
from so101_hilserl_core.action_mapping import ActionConfig, HumanActionEncoder, PolicyActionMapper
from so101_hilserl_core.episode import EpisodeConfig, EpisodeTracker
from so101_hilserl_core.exploration import ExplorationConfig, act, default_schedule, validate_schedule
from so101_hilserl_core.observation import FrameStack, StateBuilder
from so101_hilserl_core.policy import Policy, PolicyConfig
from so101_hilserl_core.policy_io import (
    PolicyFormatError,
    policy_from_bytes,
    sha256_hex,
)
from so101_hilserl_core.weights_gate import refusal

SWAP_POINTS = ("episode", "step")


@dataclass(frozen=True)
class ControlConfig:
    """The control step's settings (the actor's parameters of these names) and the task's episode, action mapping
    and exploration."""

    control_rate_hz: float = setting(CONTROL_RATE_HZ, "control rate (Hz)", (1.0, 100.0))
    evaluation: bool = setting(False, "deterministic policy, no exploration; episodes flagged evaluation")
    swap_weights_at: str = setting(
        "episode", "when to take new weights: episode, or step (same learner epoch only)", SWAP_POINTS
    )
    use_reward_signal: bool = setting(True, "act on the newest image the classifier judged (reward/signal)")
    seed: int = setting(0, "seed of exploration noise, random actions and resets", (0, 2**31 - 1))
    first_episode_id: int = setting(1, "id of the first episode (a resumed run continues its ids)", (1, 10**12))
    exploration: ExplorationConfig = field(default_factory=ExplorationConfig)
    episode: EpisodeConfig = field(default_factory=EpisodeConfig)
    action: ActionConfig = field(default_factory=ActionConfig)

    def __post_init__(self) -> None:
        if self.first_episode_id < 1:
            raise ValueError(f"first_episode_id must be >= 1, got {self.first_episode_id}")
        if not self.control_rate_hz > 0:
            raise ValueError(f"ControlConfig.control_rate_hz must be positive (Hz), got {self.control_rate_hz}")
        if self.swap_weights_at not in SWAP_POINTS:
            raise ValueError(f"swap_weights_at must be one of {SWAP_POINTS}, got {self.swap_weights_at!r}")

    @property
    def period_s(self) -> float:
        return 1.0 / self.control_rate_hz

    @property
    def num_explore_steps(self) -> int:
        return self.exploration.num_explore_steps


class Observation(NamedTuple):
    frame: np.ndarray  # preprocessed, HWC uint8 RGB
    state: np.ndarray  # float32[18]
    stamp_ns: int  # the camera image's stamp


@dataclass(frozen=True)
class StepInputs:
    now_ns: int
    joints: np.ndarray  # follower, (6,) rad
    leader: np.ndarray  # (6,) rad
    image: np.ndarray  # the camera frame, HxWx3 uint8 in ``encoding``
    image_stamp_ns: int
    intervention: bool
    encoding: str = "rgb8"


@dataclass
class TransitionRecord:
    """The fields of one Transition message."""

    episode_id: int
    step: int
    observation: Observation
    action: np.ndarray
    policy_action: np.ndarray
    intervention: bool
    reward: float
    success_probability: float
    terminated: bool
    truncated: bool
    next_observation: Observation | None
    policy_version: int
    evaluation: bool
    action_time_ns: int  # when the action was commanded (the message's header stamp)


@dataclass
class EpisodeRecord:
    """The fields of one EpisodeSummary message."""

    episode_id: int
    steps: int
    episode_return: float
    success: bool
    intervention_steps: int
    interventions: int
    stale_frames: int
    end_reason: str
    policy_version: int
    evaluation: bool
    duration_s: float


@dataclass
class StepResult:
    command: np.ndarray | None = None  # joint target to send; None = send nothing (the episode just ended)
    transition: TransitionRecord | None = None
    episode: EpisodeRecord | None = None
    stale: bool = False
    policy_inputs: tuple[np.ndarray, np.ndarray] | None = None  # (pixels, state) the policy saw at this step
    step_index: int = -1  # the step (in its episode) of the action commanded now; -1 when none


@dataclass
class _Pending:
    observation: Observation
    action: np.ndarray
    policy_action: np.ndarray
    intervention: bool
    time_ns: int


@dataclass
class _Weights:
    version: int
    epoch: str
    tensors: dict
    config: PolicyConfig
    schedule: str
    environment_steps: int


class ControlStep:
    """One ``step(inputs)`` per control period; the classifier's reward signals, operator marks and new weights
    arrive in between through ``record_reward`` / ``mark_*`` / ``offer_weights``, from other threads.

    ``policy`` is the initial policy (its config's sizes must match ``policy_config`` of later weights);
    ``schedule``/``environment_steps``: the exploration carried by the initial checkpoint (None: the default for the
    start). Order inside one step:

    One ``step(inputs)`` per control period (inputs: follower joints, leader joints, the wrist image and its stamp, the
    intervention flag, the time; the classifier's reward signals, operator marks and new weights arrive in between
    through ``record_reward`` / ``mark_*`` / ``offer_weights``, from other threads). It returns the joint target to
    send and, once the previous step's outcome is known, that step's transition and, at an episode's end, the episode
    record. Order inside one step:

    1. A stale image (older than max_frame_age_s): count it, hold the arm (command the read joints), nothing else.
    2. The one preprocessing, the state, the frame stack (reset at the episode's first step, else pushed). With a
       previous step pending, its transition is now complete: o_{t+1} is this observation, the reward is the reward
       node's verdict on this image (episode.py). If that ends the episode, nothing is commanded.
    3. The policy runs on the stack, every step, intervention or not: ``policy_action`` is what it proposed, the noisy
       sample it would have executed (the exploration noise is part of the behaviour policy, so the proposal is the
       action it would have taken; in an evaluation episode: the mean). During an intervention ``action`` is the
       leader's pose as the policy's 4-D action (HumanActionEncoder), otherwise the proposal; either goes through the
       policy's action mapping (PolicyActionMapper), so the stored action is the executed one. Both, and the state's
       orientation (StateBuilder), follow the semantics of the policy in force (its PolicyConfig), which can change
       only at an episode boundary.

    Exploration: ONE schedule over environment steps, shared with the learner (exploration.py). The step is the
    ``environment_steps`` carried by the weights in force plus the training steps taken since they were taken; before
    any learner weights, the initial checkpoint's (metadata ``exploration``) or 0, with the default schedule for the
    start (pretrained or from scratch). Uniform random actions replace the policy while that step is below
    ``num_explore_steps`` for an actor started without weights (DrQ-v2's num_expl_steps).

    Weights (weights_gate.py): within one learner epoch only newer versions; a new epoch (a restarted learner, a new
    run dir) is taken although its version restarts, unless it starts in the future (beyond the gate's skew). They are
    validated when offered and swapped only at an episode boundary, or with ``swap_weights_at="step"`` between steps
    when the epoch and the semantics are unchanged.

    Evaluation is chosen per episode (``begin_episode(now_ns, evaluation=...)``; evaluation.py decides which):
    the policy's mean, no random actions, the episode and its transitions flagged ``evaluation``, its steps not counted
    as exploration steps, and weights not swapped within it (it measures one policy). ``ControlConfig.evaluation``
    makes every episode an evaluation episode.

    Shutdown: ``stop(inputs)`` finishes the pending step as truncated ("stopped"), so the episode is committed with
    its next observation instead of staying open in the learner.
    """

    def __init__(
        self,
        config: ControlConfig,
        policy: Policy,
        kinematics: Kinematics,
        preprocessing: ImagePreprocessing,
        *,
        pretrained: bool,
        schedule: str | None = None,
        environment_steps: int = 0,
    ):
        if preprocessing.output_size != policy.config.image_size:
            raise ValueError(
                f"preprocessing output_size {preprocessing.output_size} differs from the policy's image_size "
                f"{policy.config.image_size}: set network's image_size or preprocessing's output_size to match"
            )
        self.config = config
        self.kinematics = kinematics
        self.preprocessing = preprocessing
        self.pretrained = pretrained
        self.policy = policy.eval()
        self._inference = self.policy.traced()  # shares the policy's parameters: swaps update it too
        self.schedule = validate_schedule(schedule) if schedule else default_schedule(pretrained)
        self.weights_steps = int(environment_steps)  # environment_steps of the weights in force
        self.steps_since_weights = 0  # training steps taken since
        self.policy_version = 0
        self.epoch: str | None = None
        self.torch_rng = torch.Generator().manual_seed(config.seed)
        self.tracker = EpisodeTracker(config.episode)
        self.stack = FrameStack(policy.config.frame_stack, (policy.config.image_size,) * 2 + (3,))
        self._apply_semantics(policy.config)
        self.episode_id = config.first_episode_id - 1
        self.evaluating = config.evaluation  # whether the current episode is an evaluation episode
        self._episode_start_ns = 0
        self._pending: _Pending | None = None
        self._offered: _Weights | None = None
        self._lock = threading.Lock()  # inputs from callback threads vs the loop thread

    # ---- inputs from other threads ------------------------------------------------------------------------------
    def record_reward(self, stamp_ns: int, probability: float, success: bool) -> None:
        with self._lock:
            self.tracker.record_reward_signal(stamp_ns, min(max(float(probability), 0.0), 1.0), success)

    def mark_success(self) -> None:
        with self._lock:
            self.tracker.mark_success()

    def mark_failure(self) -> None:
        with self._lock:
            self.tracker.mark_failure()

    def offer_weights(
        self, version: int, epoch: str, data: bytes, sha256: str, schedule: str, environment_steps: int, now_ns: int
    ) -> str:
        """Validate learner weights and keep them for the next swap point. Returns '' or why they were refused.
        ``now_ns``: this machine's wall clock (ns since the Unix epoch), which the epoch's start time is read
        against (weights_gate)."""
        with self._lock:
            offered = self._offered
        current = (offered.epoch, offered.version) if offered else (self.epoch, self.policy_version or None)
        if problem := refusal(current[0], current[1], epoch, int(version), int(now_ns)):
            return problem
        if sha256_hex(data) != sha256:
            return "checksum mismatch"
        try:
            tensors, config = policy_from_bytes(data, expected=self.policy.config)
            schedule = validate_schedule(schedule) if schedule else self.schedule
        except (PolicyFormatError, ValueError) as err:
            return str(err)
        with self._lock:
            self._offered = _Weights(int(version), epoch, tensors, config, schedule, int(environment_steps))
        return ""

    @property
    def holds_learner_weights(self) -> bool:
        """Whether learner weights are in force or accepted for the next swap (a resumed actor waits for them)."""
        with self._lock:
            return self.epoch is not None or self._offered is not None

    # ---- the loop -------------------------------------------------------------------------------------------------
    @property
    def episode_open(self) -> bool:
        return self.tracker.episode_id is not None and not self.tracker.done

    def judged(self, stamp_ns: int) -> bool:
        """Whether the reward node's verdict on the image with this stamp has arrived."""
        with self._lock:
            return self.tracker.judged(stamp_ns)

    def choose_image(self, stamps_ns: list[int]) -> int:
        """Index of the image to act on: the newest the classifier has judged (when rewards are used; its reward is
        then known when the step's outcome is), else the newest."""
        if self.config.use_reward_signal:
            with self._lock:
                for index in range(len(stamps_ns) - 1, -1, -1):
                    if self.tracker.judged(stamps_ns[index]):
                        return index
        return len(stamps_ns) - 1

    def begin_episode(self, now_ns: int, evaluation: bool = False) -> int:
        """Start the next episode (after the scene was reset); the episode boundary where new weights are taken.
        ``evaluation``: an evaluation episode (always one with ``ControlConfig.evaluation``)."""
        self._swap_weights(boundary="episode")
        self.evaluating = self.config.evaluation or bool(evaluation)
        self.episode_id += 1
        with self._lock:
            self.tracker.reset(self.episode_id)
        self.state_builder.reset()
        self._pending = None
        self._episode_start_ns = int(now_ns)
        return self.episode_id

    def step(self, inputs: StepInputs) -> StepResult:
        if not self.episode_open:
            raise RuntimeError("ControlStep.step outside an episode: call begin_episode first")
        q = np.asarray(inputs.joints, dtype=float)
        if self.tracker.is_stale(inputs.image_stamp_ns, inputs.now_ns):
            self.tracker.stale_frames += 1
            return StepResult(command=q.copy(), stale=True)
        observation = self._observe(inputs)
        result = StepResult()
        if self._pending is None:
            self.stack.reset(observation.frame, observation.state)
            self.mapper.reset(q)
        else:
            self.stack.push(observation.frame, observation.state)
            result.transition, result.episode = self._finish(observation, inputs.now_ns)
            if result.episode is not None:
                return result
        if self.config.swap_weights_at == "step" and not self.evaluating:
            self._swap_weights(boundary="step")

        pixels, state = self.stack.pixels(), self.stack.state()
        proposal = self._propose(pixels, state)
        result.policy_inputs = (pixels, state)
        if inputs.intervention:  # the person's action goes through the policy's own channel: stored = executed
            action = self.encoder.encode(inputs.leader, q)
            self.mapper.reset(q)  # an accumulated EE target moves from where the arm is, not where the policy left it
        else:
            action = proposal
        target = self.mapper.to_joints(action, q)
        if not self.evaluating:
            self.steps_since_weights += 1
        self._pending = _Pending(observation, action, proposal, bool(inputs.intervention), int(inputs.now_ns))
        result.command, result.step_index = target, self.tracker.steps
        return result

    def stop(self, inputs: StepInputs | None) -> StepResult:
        """The actor stops: finish the pending step as truncated ("stopped") with this observation (stale or not:
        it is the last one there will be). Nothing to commit without a pending step (or without ``inputs``)."""
        if not self.episode_open or self._pending is None or inputs is None:
            return StepResult()
        with self._lock:
            self.tracker.stop()
        observation = self._observe(inputs)
        transition, episode = self._finish(observation, inputs.now_ns)
        return StepResult(transition=transition, episode=episode)

    @property
    def pending_stamp_ns(self) -> int:
        """Stamp of the image the pending (commanded, not yet committed) step acted on; -1 when none."""
        return -1 if self._pending is None else self._pending.observation.stamp_ns

    @property
    def exploration_step(self) -> int:
        return self.weights_steps + self.steps_since_weights

    # ---- internals ------------------------------------------------------------------------------------------------
    def _observe(self, inputs: StepInputs) -> Observation:
        frame = self.preprocessing.apply(inputs.image, inputs.encoding)
        state = self.state_builder.build(np.asarray(inputs.joints, dtype=float))
        return Observation(frame, state, int(inputs.image_stamp_ns))

    def _propose(self, pixels: np.ndarray, state: np.ndarray) -> np.ndarray:
        cfg = self.config

        def mean() -> torch.Tensor:
            return self._inference(torch.from_numpy(pixels).unsqueeze(0), torch.from_numpy(state).unsqueeze(0))

        with torch.no_grad():
            action = act(
                mean,
                (1, self.policy.config.action_dim),
                self.schedule,
                self.exploration_step,
                0 if self.pretrained else cfg.num_explore_steps,  # uniform only for an actor started without weights
                self.evaluating,
                self.torch_rng,
            )
        return action[0].numpy().astype(np.float32)

    def _apply_semantics(self, policy_config: PolicyConfig) -> None:
        self.mapper = PolicyActionMapper(self.kinematics, policy_config, self.config.action)
        self.encoder = HumanActionEncoder(self.kinematics, policy_config, self.config.action)
        self.state_builder = StateBuilder(self.kinematics, self.config.period_s, policy_config.orientation)

    def _finish(self, next_obs: Observation, now_ns: int) -> tuple[TransitionRecord, EpisodeRecord | None]:
        pending = self._pending
        with self._lock:
            outcome = self.tracker.step(next_obs.stamp_ns, intervention=pending.intervention)
        ended = outcome.terminated or outcome.truncated
        transition = TransitionRecord(
            episode_id=self.episode_id,
            step=self.tracker.steps - 1,
            observation=pending.observation,
            action=pending.action,
            policy_action=pending.policy_action,
            intervention=pending.intervention,
            reward=float(outcome.reward),
            success_probability=float(outcome.probability),
            terminated=outcome.terminated,
            truncated=outcome.truncated,
            next_observation=next_obs if ended else None,
            policy_version=self.policy_version,
            evaluation=self.evaluating,
            action_time_ns=pending.time_ns,
        )
        self._pending = None if ended else self._pending
        if not ended:
            return transition, None
        summary = self.tracker.summary()
        episode = EpisodeRecord(
            episode_id=self.episode_id,
            steps=summary["steps"],
            episode_return=float(summary["episode_return"]),
            success=bool(summary["success"]),
            intervention_steps=summary["intervention_steps"],
            interventions=summary["interventions"],
            stale_frames=summary["stale_frames"],
            end_reason=summary["end_reason"],
            policy_version=self.policy_version,
            evaluation=self.evaluating,
            duration_s=max(now_ns - self._episode_start_ns, 0) / 1e9,
        )
        return transition, episode

    def _swap_weights(self, boundary: str) -> None:
        with self._lock:
            offered = self._offered
            if offered is None:
                return
            if boundary == "step" and (
                offered.epoch != self.epoch or offered.config.semantics() != self.policy.config.semantics()
            ):
                return  # a new learner or new semantics: only between episodes
            self._offered = None
        self.policy.load_state_dict(offered.tensors, strict=True)
        if offered.config.semantics() != self.policy.config.semantics():
            self._apply_semantics(offered.config)  # only at an episode boundary (see above)
        self.policy.config = offered.config
        self.policy_version, self.epoch = offered.version, offered.epoch
        self.schedule = offered.schedule
        self.weights_steps, self.steps_since_weights = offered.environment_steps, 0
