"""Conversion between the project's Observation/Transition messages and numpy, with validation that names the field.

The actor packs what it observed; the learner and the bag importer unpack it. Both sides use these two functions,
so the byte layout (rgb8, HWC, uint8; 18 float32 state values) is defined once.
"""

from __future__ import annotations

import math

import numpy as np
from builtin_interfaces.msg import Time

from so101_contract.control import ACTION_DIM
from so101_contract.stamps import ns_to_stamp
from so101_contract.state import STATE_DIM
from so101_driver.vision.image_messages import array_to_image_msg, image_msg_to_array
from so101_hilserl_interfaces.msg import EpisodeSummary, Observation, Transition


class MessageFormatError(ValueError):
    """A message that cannot be turned into a correct observation; the text names the field and the problem."""


def observation_to_msg(
    image: np.ndarray, state: np.ndarray, stamp: Time | None = None, frame_id: str = ""
) -> Observation:
    """HxWx3 uint8 RGB image + 18 state values -> Observation."""
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise MessageFormatError(f"observation.image must be HxWx3 uint8, got {image.shape} {image.dtype}")
    state = np.asarray(state, dtype=np.float32)
    if state.shape != (STATE_DIM,):
        raise MessageFormatError(f"observation.state must have {STATE_DIM} values, got shape {state.shape}")
    msg = Observation()
    msg.image = array_to_image_msg(image, "rgb8", stamp, frame_id)  # the one Image <-> numpy conversion
    msg.state = state
    return msg


def observation_from_msg(msg: Observation, expected_size: int | None = None, field: str = "observation"):
    """Observation -> (image HxWx3 uint8 RGB, state float32[18]); raises MessageFormatError on any defect."""
    img = msg.image
    if img.encoding != "rgb8":
        raise MessageFormatError(f"{field}.image.encoding is {img.encoding!r}; the project sends rgb8")
    if expected_size is not None and (img.height, img.width) != (expected_size, expected_size):
        raise MessageFormatError(
            f"{field}.image is {img.width}x{img.height}, expected {expected_size}x{expected_size}: "
            "the actor's preprocessing output_size differs from the learner's"
        )
    if img.step != img.width * 3 or len(img.data) != img.height * img.step:
        raise MessageFormatError(
            f"{field}.image.data has {len(img.data)} bytes, step {img.step}; "
            f"{img.width}x{img.height} rgb8 needs {img.height * img.width * 3} bytes with step {img.width * 3}"
        )
    image = image_msg_to_array(img)  # the one Image <-> numpy conversion (a zero-copy view)
    state = np.asarray(msg.state, dtype=np.float32)
    if state.shape != (STATE_DIM,):
        raise MessageFormatError(f"{field}.state has {state.size} values, expected {STATE_DIM}")
    if not np.isfinite(state).all():
        bad = np.flatnonzero(~np.isfinite(state)).tolist()
        raise MessageFormatError(f"{field}.state has non-finite values at indices {bad}")
    return image, state


def _check_action(name: str, values, bounded: bool) -> None:
    action = np.asarray(values, dtype=np.float32)
    if action.shape != (ACTION_DIM,):
        raise MessageFormatError(f"{name} must have {ACTION_DIM} values, got {len(action)}")
    if not np.isfinite(action).all():
        bad = np.flatnonzero(~np.isfinite(action)).tolist()
        raise MessageFormatError(f"{name} has non-finite values at indices {bad}: {action.tolist()}")
    if bounded and np.abs(action).max() > 1.0 + 1e-6:
        raise MessageFormatError(f"{name} must lie in [-1, 1], got {action.tolist()}")


def check_transition(msg: Transition) -> None:
    """Field checks of one transition that need no history (order is checked by the learner's sequencer). Every
    float is checked: ``action`` (finite, in [-1, 1]), ``policy_action`` (finite), ``reward`` (finite),
    ``success_probability`` (NaN when no classifier judged the step, else in [0, 1]); the observations' states are
    checked by ``observation_from_msg``."""
    _check_action("action", msg.action, bounded=True)
    _check_action("policy_action", msg.policy_action, bounded=False)  # a record of the proposal, never trained on
    if not math.isfinite(msg.reward):
        raise MessageFormatError(f"reward is not finite ({msg.reward})")
    probability = float(msg.success_probability)
    if not (math.isnan(probability) or 0.0 <= probability <= 1.0):
        raise MessageFormatError(f"success_probability must be NaN (not judged) or in [0, 1], got {probability}")
    ends = msg.terminated or msg.truncated
    if ends != (len(msg.next_observation) == 1):
        raise MessageFormatError(
            "next_observation must be present exactly on the last step of an episode "
            f"(terminated={msg.terminated}, truncated={msg.truncated}, next_observation={len(msg.next_observation)})"
        )


def transition_to_msg(record, actor_id: str) -> Transition:
    """A control_step.TransitionRecord -> Transition (header stamp: when its action was commanded)."""
    msg = Transition(
        actor_id=actor_id,
        episode_id=record.episode_id,
        step=record.step,
        action=[float(v) for v in record.action],
        policy_action=[float(v) for v in record.policy_action],
        intervention=bool(record.intervention),
        reward=float(record.reward),
        success_probability=float(record.success_probability),
        terminated=bool(record.terminated),
        truncated=bool(record.truncated),
        policy_version=int(record.policy_version),
        evaluation=bool(record.evaluation),
    )
    msg.header.stamp, msg.header.frame_id = ns_to_stamp(record.action_time_ns), "base_link"
    obs = record.observation
    msg.observation = observation_to_msg(obs.frame, obs.state, ns_to_stamp(obs.stamp_ns))
    if record.next_observation is not None:
        nxt = record.next_observation
        msg.next_observation = [observation_to_msg(nxt.frame, nxt.state, ns_to_stamp(nxt.stamp_ns))]
    return msg


def episode_to_msg(record, actor_id: str, stamp_ns: int) -> EpisodeSummary:
    """A control_step.EpisodeRecord -> EpisodeSummary stamped ``stamp_ns`` (when the episode ended)."""
    msg = EpisodeSummary(
        actor_id=actor_id,
        episode_id=record.episode_id,
        steps=record.steps,
        episode_return=float(record.episode_return),
        success=bool(record.success),
        intervention_steps=record.intervention_steps,
        interventions=record.interventions,
        stale_frames=record.stale_frames,
        policy_version=int(record.policy_version),
        end_reason=record.end_reason,
        evaluation=bool(record.evaluation),
        duration=float(record.duration_s),
    )
    msg.header.stamp = ns_to_stamp(stamp_ns)
    return msg
