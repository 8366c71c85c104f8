"""The one state-vector builder and the one frame stack (docs/architecture.md, "The observation and action contract").

Shared by the actor, the learner tools and the importers, so an observation is assembled exactly one way:
``StateBuilder`` turns freshly read joints into the 18-value state (so101_contract.state: positions, velocities in
rad/s, TCP position in m and orientation under the policy's semantics, semantics.ORIENTATIONS), ``FrameStack`` keeps
the last k preprocessed frames and states in the layout of the learner's ``Batch`` row, and ``preprocess`` applies
the one ImagePreprocessing to a camera message or array (rgb8 or bgr8 in, RGB out).
"""

from __future__ import annotations

from collections import deque

import numpy as np
import pinocchio as pin

from so101_contract.control import CONTROL_PERIOD_S
from so101_contract.joints import NUM_JOINTS
from so101_contract.state import (
    EE_ORIENTATION,
    EE_POSITION,
    JOINT_POSITIONS,
    JOINT_VELOCITIES,
    STATE_DIM,
)
from so101_driver.model.kinematics import HOME_SEED, Kinematics, euler_zyx_from_matrix
from so101_driver.vision.preprocessing import DEFAULT_PREPROCESSING, ImagePreprocessing
from so101_hilserl_core.semantics import check_semantic


def home_rotation(kinematics: Kinematics) -> np.ndarray:
    """The TCP rotation at the home pose (HOME_SEED: fingers straight down above the workspace), the reference of
    the "home_rotvec" orientation."""
    return kinematics.fk(HOME_SEED)[1]


def orientation_state(rotation: np.ndarray, orientation: str, home: np.ndarray) -> np.ndarray:
    """The TCP rotation (3x3, base frame) -> the state's 3 orientation values under the ``orientation`` semantics."""
    if orientation == "euler_zyx":
        return euler_zyx_from_matrix(rotation)
    check_semantic("orientation", orientation)
    return pin.log3(np.asarray(rotation, dtype=float) @ home.T)


class StateBuilder:
    """Joint positions -> the 18-value state; remembers the previous positions for the velocity.

    Velocities are by finite difference at the control period. ``orientation``: the policy's orientation semantics
    (its PolicyConfig.orientation, see semantics.ORIENTATIONS); the default is the project's. Call ``reset()`` at
    every episode start (the first state then has zero velocity: the arm was just placed and there is no previous
    reading of this episode to difference against).
    """

    def __init__(
        self, kinematics: Kinematics, control_period_s: float = CONTROL_PERIOD_S, orientation: str = "home_rotvec"
    ):
        if not control_period_s > 0:
            raise ValueError(f"control_period_s must be positive (seconds), got {control_period_s}")
        self.kinematics = kinematics
        self.control_period_s = float(control_period_s)
        self.orientation = check_semantic("orientation", orientation)
        self._home = home_rotation(kinematics)
        self._previous: np.ndarray | None = None

    def reset(self) -> None:
        self._previous = None

    def build(self, q: np.ndarray) -> np.ndarray:
        """(6,) joint positions in JOINT_NAMES order, radians -> float32[18]."""
        q = np.asarray(q, dtype=float)
        if q.shape != (NUM_JOINTS,):
            raise ValueError(f"q must hold {NUM_JOINTS} joint positions (rad), got shape {q.shape}")
        if not np.all(np.isfinite(q)):
            raise ValueError(f"q must be finite, got {q}")
        state = np.empty(STATE_DIM, dtype=np.float32)
        state[JOINT_POSITIONS] = q
        if self._previous is None:
            state[JOINT_VELOCITIES] = 0.0
        else:
            state[JOINT_VELOCITIES] = (q - self._previous) / self.control_period_s
        position, rotation = self.kinematics.fk(q)
        state[EE_POSITION] = position
        state[EE_ORIENTATION] = orientation_state(rotation, self.orientation, self._home)
        self._previous = q.copy()
        return state


class FrameStack:
    """The last k (frame, state) pairs: the one frame stack of acting (the actor's control step, the pixel task, the
    Gymnasium environment).

    At episode start every slot holds the first observation (the learner's ReplayBuffer, which rebuilds stacks by
    index, repeats the earliest frame at a sequence start too; its tests check it equals this). ``pixels()`` and
    ``state()`` give exactly the layout of the learner's ``Batch`` row: (3k, 84, 84) uint8, frames oldest..newest,
    each frame's channels R, G, B; and float32[18k] oldest..newest. A pixels-only network (state_dim 0) passes no state.
    """

    def __init__(self, k: int = 3, frame_shape: tuple[int, int, int] = (84, 84, 3), state_dim: int = STATE_DIM):
        if k <= 0:
            raise ValueError(f"frame stack size k must be positive, got {k}")
        self.k = int(k)
        self.frame_shape = tuple(frame_shape)
        self.state_dim = int(state_dim)
        self._frames: deque[np.ndarray] = deque(maxlen=self.k)  # each (C, H, W) uint8
        self._states: deque[np.ndarray] = deque(maxlen=self.k)

    def _check(self, frame: np.ndarray, state: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        frame = np.asarray(frame)
        if state is None and self.state_dim == 0:  # a pixels-only network
            state = np.zeros(0, np.float32)
        if frame.dtype != np.uint8 or frame.shape != self.frame_shape:
            raise ValueError(
                f"frame must be uint8 HWC with shape {self.frame_shape} (the output of preprocess), got "
                f"{frame.dtype} {frame.shape}"
            )
        state = np.asarray(state, dtype=np.float32)
        if state.shape != (self.state_dim,):
            raise ValueError(f"state must have {self.state_dim} values (StateBuilder.build), got shape {state.shape}")
        return np.ascontiguousarray(frame.transpose(2, 0, 1)), state.copy()

    def reset(self, first_frame: np.ndarray, first_state: np.ndarray | None = None) -> None:
        """Start an episode: every slot holds the first observation."""
        frame, state = self._check(first_frame, first_state)
        self._frames.clear()
        self._states.clear()
        for _ in range(self.k):
            self._frames.append(frame)
            self._states.append(state)

    def push(self, frame: np.ndarray, state: np.ndarray | None = None) -> None:
        """Append the newest observation; the oldest drops out."""
        if not self._frames:
            raise RuntimeError("FrameStack.push before reset: call reset(first_frame, first_state) at episode start")
        frame, state = self._check(frame, state)
        self._frames.append(frame)
        self._states.append(state)

    def _require(self) -> None:
        if not self._frames:
            raise RuntimeError("FrameStack is empty: call reset(first_frame, first_state) at episode start")

    def pixels(self) -> np.ndarray:
        """(k*C, H, W) uint8: frames oldest..newest, each frame's channels in order (RGB)."""
        self._require()
        return np.concatenate(self._frames, axis=0)

    def state(self) -> np.ndarray:
        """float32[k*state_dim]: states oldest..newest."""
        self._require()
        return np.concatenate(self._states)

    def newest(self) -> tuple[np.ndarray, np.ndarray]:
        """The newest (frame HWC uint8, state) pair, e.g. for the Observation message of a transition."""
        self._require()
        return self._frames[-1].transpose(1, 2, 0), self._states[-1].copy()


def preprocess(image, preprocessing: ImagePreprocessing = DEFAULT_PREPROCESSING, encoding: str = "rgb8") -> np.ndarray:
    """A camera frame -> the policy/classifier frame (84x84x3 uint8 RGB, HWC).

    ``image`` is a sensor_msgs/Image (its own encoding, rgb8 or bgr8, is used) or an HxWx3 uint8 array whose channel
    order is ``encoding``.
    """
    if hasattr(image, "encoding") and hasattr(image, "data"):  # a sensor_msgs/Image
        from so101_driver.vision.image_messages import image_msg_to_array

        return preprocessing.apply(image_msg_to_array(image), encoding=image.encoding)
    return preprocessing.apply(np.asarray(image), encoding=encoding)
