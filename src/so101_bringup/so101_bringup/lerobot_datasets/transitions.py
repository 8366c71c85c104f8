"""LeRobot episodes -> the project's transitions, as the actor would have recorded them at the 10 Hz control step.

Two kinds of dataset come in. A **recording** (``lerobot-record``: the follower's joints and a camera, any rate >=
10 Hz) is resampled to the control period; each step's action is what the policy's action channel needs to make the
follower's next pose (the HumanActionEncoder, as an intervention is stored), so stored = executed. A **transition**
dataset (LeRobot's HIL-SERL recordings, this project's exports: 10 Hz, a 4-D action, ``next.reward``) keeps its
actions, the gripper class 0 close / 1 stay / 2 open becoming -1 / 0 / +1. Either way the state is rebuilt by the one
StateBuilder, the image goes through the one preprocessing, and rewards follow the actor's episode rules.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace

import cv2
import numpy as np

from so101_bringup.lerobot_datasets.layout import (
    ACTION,
    INTERVENTION,
    JOINT_FEATURE_NAMES,
    REWARD,
    ROBOT_TYPES,
    STATE,
    DatasetError,
)
from so101_bringup.lerobot_datasets.reader import DatasetReader, EpisodeEntry
from so101_contract.control import ACTION_DIM, CONTROL_RATE_HZ
from so101_contract.joints import JOINT_NAMES
from so101_driver.hardware.calibration import LEROBOT_UNITS, JointConversion, lerobot_values_to_radians
from so101_driver.model.kinematics import Kinematics
from so101_driver.vision.preprocessing import ImagePreprocessing
from so101_hilserl_core.action_mapping import HumanActionEncoder
from so101_hilserl_core.episode import EpisodeConfig
from so101_hilserl_core.observation import StateBuilder
from so101_hilserl_core.policy import PolicyConfig
from so101_reward.model_config import RewardModelConfig

EXPORT_MARK = "so101_hilserl"  # key in a video feature's info: {"output_size": N, "scale": k} of this project's export
JOINT_MARGIN_RAD = 0.2  # beyond the URDF limits by more than this, a value is a unit mistake, not a real pose
LEROBOT_GRIPPER_OFFSET = 1.0  # LeRobot's gripper classes 0, 1, 2 are the project's -1, 0, +1


@dataclass(frozen=True)
class Step:
    """One transition: observation (preprocessed image, 18-value state), action, reward and how the step ended."""

    image: np.ndarray
    state: np.ndarray
    action: np.ndarray
    reward: float
    terminated: bool
    truncated: bool
    next_image: np.ndarray | None = None
    next_state: np.ndarray | None = None
    stamp_s: float = 0.0
    intervention: bool = True  # a person drove this step (every step of a recording: a demonstration)


@dataclass
class EpisodeResult:
    index: int
    steps: list[Step] = field(default_factory=list)
    success: bool = False
    skipped: str = ""  # why the episode was left out ("" = imported)


@dataclass(frozen=True)
class ImportOptions:
    """How a dataset becomes transitions. ``units``: LEROBOT_UNITS or None (only a dataset that says its units may
    leave it out); ``success``: episode indices the user declares successful, None = all (for recordings) or
    as the dataset's rewards say (transition datasets); ``classifier``: P(success) of preprocessed frames (N, S, S,
    3) -> (N,), which then decides success and the episode end; ``include_failures``: import unsuccessful episodes
    too (truncated at their end)."""

    camera: str = "observation.images.wrist"
    units: str | None = None
    calibration: JointConversion | None = None
    success: frozenset[int] | None = None
    classifier: Callable[[np.ndarray], np.ndarray] | None = None
    classifier_threshold: float = RewardModelConfig.threshold
    include_failures: bool = False
    preprocessing: ImagePreprocessing | None = None
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    episode: EpisodeConfig = field(default_factory=EpisodeConfig)


def check_dataset(reader: DatasetReader, options: ImportOptions) -> str:
    """Refuse what cannot be imported faithfully (robot, joint names, camera, units, rate); returns the kind,
    "recording" or "transitions"."""
    info, features, where = reader.info, reader.features, reader.root / "meta/info.json"
    robot = info.get("robot_type")
    if robot is not None and robot not in ROBOT_TYPES:
        raise DatasetError(f"{where}: robot_type {robot!r} is not an SO-101 follower ({', '.join(ROBOT_TYPES)})")
    if options.camera not in features:
        cameras = ", ".join(reader.camera_keys) or "none"
        raise DatasetError(f"{where}: no camera {options.camera}; its cameras: {cameras} (choose one with --camera)")
    state = features.get(STATE)
    names = list((state or {}).get("names") or [])
    missing = [n for n in JOINT_FEATURE_NAMES if n not in names]
    if missing:
        raise DatasetError(
            f"{where}: {STATE} names {names or 'nothing'}; an SO-101 follower's are {', '.join(JOINT_FEATURE_NAMES)} "
            f"(missing {', '.join(missing)})"
        )
    if _units(reader, options) == "range_m100" and options.calibration is None:
        raise DatasetError(f"{where}: range_m100 values need the follower's calibration file: pass --calibration")
    action = features.get(ACTION, {})
    if list(action.get("shape") or []) == [ACTION_DIM]:
        if not math.isclose(reader.fps, CONTROL_RATE_HZ):
            raise DatasetError(
                f"{where}: 4-D actions at {reader.fps:g} fps; their steps are only the policy's at "
                f"{CONTROL_RATE_HZ:g} Hz (record at 10 fps, or import the follower's poses from a recording)"
            )
        return "transitions"
    if reader.fps < CONTROL_RATE_HZ:
        raise DatasetError(f"{where}: fps {reader.fps:g} is below the control rate {CONTROL_RATE_HZ:g} Hz")
    return "recording"


def _units(reader: DatasetReader, options: ImportOptions) -> str:
    marked = (reader.features.get(STATE, {}).get("info") or {}).get(f"{EXPORT_MARK}.units")
    units = options.units or marked
    if units is None:
        raise DatasetError(
            f"{reader.root / 'meta/info.json'}: {STATE} does not say its units: LeRobot >= 0.4.4 records the arm "
            "joints in degrees, older versions in -100..100 of the calibrated range; pass --units degrees or "
            "--units range_m100 --calibration FILE"
        )
    if units not in LEROBOT_UNITS:
        raise DatasetError(f"--units {units!r}: choose one of {', '.join(LEROBOT_UNITS)}")
    return units


def control_indices(length: int, fps: float) -> np.ndarray:
    """The frames nearest the 10 Hz control steps k / 10 s (every frame at 10 fps)."""
    ratio = fps / CONTROL_RATE_HZ
    count = math.floor((length - 1) / ratio + 1e-9) + 1
    return np.minimum(np.rint(np.arange(count) * ratio).astype(int), length - 1)


class EpisodeConverter:
    """Converts the dataset's episodes one at a time (``convert``); holds the kinematics and the encoders."""

    def __init__(self, reader: DatasetReader, options: ImportOptions, kinematics: Kinematics | None = None):
        self.reader, self.options = reader, options
        self.kind = check_dataset(reader, options)
        self.units = _units(reader, options)
        self.kinematics = kinematics or Kinematics()
        self.encoder = HumanActionEncoder(self.kinematics, options.policy)
        self.states = StateBuilder(self.kinematics, orientation=options.policy.orientation)
        names = list(reader.features[STATE]["names"])
        self.joint_columns = [names.index(n) for n in JOINT_FEATURE_NAMES]
        video_info = reader.features[options.camera].get("info") or {}
        self.export_mark = video_info.get(EXPORT_MARK)

    def joints(self, episode: EpisodeEntry, values: np.ndarray) -> np.ndarray:
        """The episode's follower joints (frames, 6) in radians, checked finite and inside the joint limits."""
        raw = np.asarray(values, dtype=np.float64)[:, self.joint_columns]
        where = f"{self.reader.root}: episode {episode.index}"
        bad = np.argwhere(~np.isfinite(raw))
        if len(bad):
            frame, joint = bad[0]
            raise DatasetError(f"{where}: {JOINT_NAMES[joint]} is {raw[frame, joint]} at frame {frame}; not a pose")
        q = lerobot_values_to_radians(raw, self.units, self.options.calibration)
        low, high = self.kinematics.lower - JOINT_MARGIN_RAD, self.kinematics.upper + JOINT_MARGIN_RAD
        outside = np.argwhere((q < low) | (q > high))
        if len(outside):
            frame, joint = outside[0]
            raise DatasetError(
                f"{where}: {JOINT_NAMES[joint]} = {raw[frame, joint]:g} at frame {frame} is {q[frame, joint]:.2f} rad "
                f"as {self.units}, outside the joint's {low[joint]:.2f}..{high[joint]:.2f} rad: wrong --units?"
            )
        return q

    def image(self, frame: np.ndarray) -> np.ndarray:
        size = self.options.policy.image_size
        if self.export_mark:  # this project's export: the policy's frames, scaled up for the codec's chroma
            if int(self.export_mark.get("output_size", -1)) != size:
                raise DatasetError(
                    f"{self.reader.root}: exported with {self.export_mark.get('output_size')}-pixel frames; the "
                    f"learner's network takes {size} (--network)"
                )
            return cv2.resize(frame, (size, size), interpolation=cv2.INTER_AREA)
        pre = self.options.preprocessing or ImagePreprocessing(output_size=size)
        height, width = frame.shape[:2]
        if (width, height) != (pre.source_width, pre.source_height):
            raise DatasetError(
                f"{self.reader.root}: {self.options.camera} frames are {width}x{height} but the preprocessing expects "
                f"{pre.source_width}x{pre.source_height}: pass --preprocessing with source_width, source_height and "
                "the crop box for this camera"
            )
        return pre.apply(frame, "rgb8")

    def convert(self, episode: EpisodeEntry) -> EpisodeResult:
        result = EpisodeResult(episode.index)
        columns = [STATE] + ([ACTION, REWARD] if self.kind == "transitions" else [])
        if self.kind == "transitions" and INTERVENTION in self.reader.features:
            columns.append(INTERVENTION)
        values = self.reader.columns(episode, columns)
        q = self.joints(episode, np.stack(values[STATE]))
        if self.kind == "transitions":
            return self._transitions(episode, q, values, result)
        picks = control_indices(episode.length, self.reader.fps)
        if len(picks) < 2:
            result.skipped = f"{episode.length} frames: shorter than one control step"
            return result
        images = self.reader.images(episode, self.options.camera, picks)
        frames = [self.image(images[int(i)]) for i in picks]
        end, success = self._end(episode, frames, len(picks) - 1)
        if not success and not self.options.include_failures:
            result.skipped = "not successful"
            return result
        states = self._states(q[picks[: end + 1]])
        actions = [self.encoder.encode(q[picks[t + 1]], q[picks[t]]) for t in range(end)]
        result.steps = self._steps(frames, states, actions, end, success, picks / self.reader.fps)
        result.success = success
        return result

    def _transitions(self, episode: EpisodeEntry, q, values, result: EpisodeResult) -> EpisodeResult:
        rewards = np.asarray(values[REWARD], dtype=np.float64).reshape(-1)
        positive = np.flatnonzero(rewards > 0)
        success = bool(len(positive)) if self.options.success is None else episode.index in self.options.success
        last = int(positive[0]) if len(positive) and success else episode.length - 1
        if not success and not self.options.include_failures:
            result.skipped = "not successful"
            return result
        actions = np.stack(values[ACTION]).astype(np.float64)[: last + 1]
        actions[:, 3] -= LEROBOT_GRIPPER_OFFSET
        if not np.isfinite(actions).all() or np.abs(actions).max() > 1.0 + 1e-6:
            raise DatasetError(
                f"{self.reader.root}: episode {episode.index}: {ACTION} leaves [-1, 1] x3, [0, 2] (or is not finite)"
            )
        images = self.reader.images(episode, self.options.camera, range(last + 1))
        frames = [self.image(images[t]) for t in range(last + 1)]
        states = self._states(q[: last + 1])
        # LeRobot stores no observation after the last action: the last frame stands for it (as LeRobot's buffer does)
        steps = self._steps(frames + frames[-1:], states + states[-1:], list(actions.astype(np.float32)),
                            last + 1, success, np.arange(last + 2) / self.reader.fps)  # fmt: skip
        if INTERVENTION in values:  # who drove each step, where the dataset says (LeRobot's learner, this project)
            flags = np.asarray(values[INTERVENTION]).reshape(-1) > 0.5
            steps = [replace(step, intervention=bool(flag)) for step, flag in zip(steps, flags, strict=False)]
        result.steps = steps
        result.success = success
        return result

    def _end(self, episode: EpisodeEntry, frames: list[np.ndarray], last: int) -> tuple[int, bool]:
        """(index of the final observation, success): the user's flag, or the classifier's first success."""
        if self.options.classifier is None:
            declared = self.options.success
            return last, declared is None or episode.index in declared
        cfg = self.options.episode
        probabilities = self.options.classifier(np.stack(frames))
        streak = 0
        for k, p in enumerate(probabilities):
            streak = streak + 1 if p >= self.options.classifier_threshold else 0
            if k >= 1 and streak >= cfg.consecutive_success_frames and k >= cfg.min_steps_before_success:
                return k, True
        return last, False

    def _states(self, q: np.ndarray) -> list[np.ndarray]:
        self.states.reset()
        return [self.states.build(row) for row in q]

    def _steps(self, frames, states, actions, end: int, success: bool, times) -> list[Step]:
        cfg = self.options.episode
        steps = []
        for t in range(end):
            final = t == end - 1
            steps.append(Step(
                image=frames[t], state=states[t], action=np.asarray(actions[t], dtype=np.float32),
                reward=cfg.success_reward if final and success else cfg.step_penalty,
                terminated=final and success, truncated=final and not success,
                next_image=frames[t + 1] if final else None, next_state=states[t + 1] if final else None,
                stamp_s=float(times[t]),
            ))  # fmt: skip
        return steps


def convert_all(converter: EpisodeConverter) -> Iterator[EpisodeResult]:
    for episode in converter.reader.episodes:
        yield converter.convert(episode)
