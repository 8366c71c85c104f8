"""``so101/Pick-v0``: the simulated SO-101 grasp task as a Gymnasium environment, built from the actor's own modules.

One ``step`` is one actor control step, done the way the actor's control step does it (control_step.py), with the
one action mapping, preprocessing, state vector, frame stack and episode logic, so a policy trained here sees and
sends exactly what the actor does (test_pick_env checks it bit for bit). Success frames come from the physics'
ground truth or from a trained reward classifier. Curriculum stages (``stage``, 0-3): so101_driver.sim.curriculum,
which the sim node's ``curriculum_stage`` uses too.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from so101_contract.control import ACTION_DIM, CONTROL_PERIOD_S
from so101_contract.joints import JOINT_NAMES
from so101_contract.state import STATE_DIM
from so101_driver.model.joint_safety import JointCommandGuard
from so101_driver.sim.curriculum import check_stage, reset_stage
from so101_driver.sim.grasp_controller import ScriptedGrasp
from so101_driver.sim.world import SimConfig, SimWorld
from so101_driver.vision.preprocessing import DEFAULT_PREPROCESSING, ImagePreprocessing
from so101_hilserl_core.action_mapping import DEFAULT_ACTION_CONFIG, ActionConfig, PolicyActionMapper
from so101_hilserl_core.episode import EpisodeConfig, EpisodeTracker
from so101_hilserl_core.observation import FrameStack, StateBuilder
from so101_hilserl_core.semantics import PROJECT_SEMANTICS, SEMANTIC_FIELDS, check_semantic

MAX_SEED = 2**31 - 1


def semantics_of(source: Any) -> dict[str, str]:
    """The three semantic fields from a dict or a PolicyConfig; None = the project's semantics."""
    if source is None:
        return dict(PROJECT_SEMANTICS)
    get = source.get if isinstance(source, dict) else lambda name: getattr(source, name, None)
    return {name: check_semantic(name, get(name)) for name in SEMANTIC_FIELDS}


class PickEnv(gym.Env):
    """The SO-101 grasp task.

    Observation: Dict(pixels uint8 (3*frame_stack, S, S), state float32 (18*frame_stack,)); action: Box(-1, 1, (4,)).
    One step:

        joints q   = the simulated follower's joints, freshly read
        target     = PolicyActionMapper(policy semantics).to_joints(action, q)   # the one action mapping
                     -> JointCommandGuard (as the sim node applies it) -> SimWorld.set_joint_targets
        physics    : CONTROL_PERIOD_S of MuJoCo
        frame      = ImagePreprocessing.apply(wrist render)                       # the one preprocessing
        state      = StateBuilder(orientation semantics).build(q')                # the one state vector
        obs        = FrameStack.push(frame, state) -> {"pixels": (3k, H, W) uint8, "state": float32[18k]}
        reward/end = EpisodeTracker (episode.py: success = N consecutive success frames after the minimum step
                     count, which ends the episode and alone pays +10; -0.05 every other step; timeout = truncated)

    Success frames come from the physics' ground truth (SimWorld.grasp_success: the cube pinched between the fingers
    with the servo squeezing), or, with ``classifier``, from a trained reward classifier's probability of the
    preprocessed frame at ``classifier_threshold`` (the reward node's one decision). ``info["grasp"]`` always carries
    the ground truth and ``info["is_success"]`` whether the episode ended in success.

    Seeds: ``reset(seed=s)`` gives bit-identical episodes for the same ``s`` (Gymnasium's np_random drives every
    draw). ``render_mode="rgb_array"``: ``render()`` returns the last raw wrist camera frame (H x W x 3 uint8 RGB).
    Small images for fast tests: pass an ``ImagePreprocessing`` with a smaller source and output size; the camera
    renders at its source size.
    """

    metadata: ClassVar[dict] = {"render_modes": ["rgb_array"], "render_fps": round(1.0 / CONTROL_PERIOD_S)}

    def __init__(
        self,
        stage: int = 3,
        render_mode: str | None = None,
        semantics: Any = None,
        frame_stack: int = 3,
        preprocessing: ImagePreprocessing = DEFAULT_PREPROCESSING,
        episode: EpisodeConfig | None = None,
        action: ActionConfig = DEFAULT_ACTION_CONFIG,
        sim: SimConfig | None = None,
        classifier: Callable[[np.ndarray], float] | None = None,
        classifier_threshold: float = 0.5,
        control_period_s: float = CONTROL_PERIOD_S,
    ):
        super().__init__()
        check_stage(stage)
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        if not 0.0 < classifier_threshold < 1.0:
            raise ValueError(f"classifier_threshold must be in (0, 1), got {classifier_threshold}")
        self.stage = int(stage)
        self.render_mode = render_mode
        self.semantics = semantics_of(semantics)
        self.preprocessing = preprocessing
        self.episode_config = episode or EpisodeConfig()
        self.action_config = action
        self.classifier = classifier
        self.classifier_threshold = float(classifier_threshold)
        self.control_period_s = float(control_period_s)
        sim = sim or SimConfig()
        sim = dataclasses.replace(
            sim, camera_width=preprocessing.source_width, camera_height=preprocessing.source_height
        )
        self.world = SimWorld(sim, seed=0)
        kinematics = self.world.kinematics
        self.mapper = PolicyActionMapper(kinematics, self.semantics, action)
        self.state_builder = StateBuilder(kinematics, self.control_period_s, self.semantics["orientation"])
        size = preprocessing.output_size
        self.stack = FrameStack(frame_stack, (size, size, 3), STATE_DIM)
        self.tracker = EpisodeTracker(self.episode_config)
        self._guard = JointCommandGuard(JOINT_NAMES, kinematics.lower, kinematics.upper, action.max_joint_step)
        self._grasp = ScriptedGrasp()
        self._episodes = 0
        self._raw: np.ndarray | None = None

        self.observation_space = spaces.Dict(
            {
                "pixels": spaces.Box(0, 255, (3 * frame_stack, size, size), np.uint8),
                "state": spaces.Box(-np.inf, np.inf, (STATE_DIM * frame_stack,), np.float32),
            }
        )
        self.action_space = spaces.Box(-1.0, 1.0, (ACTION_DIM,), np.float32)

    # ---- gymnasium API ------------------------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        reset_stage(self.world, self.stage, self.np_random, self._grasp)
        self._guard.target = None
        self._episodes += 1
        self.tracker.reset(self._episodes)
        self.state_builder.reset()
        q = self.world.joint_positions()
        frame, state = self._observe(q)
        self.stack.reset(frame, state)
        self.mapper.reset(q)
        return self._obs(), self._info(grasp=self.world.grasp_success(), probability=math.nan)

    def step(self, action):
        if self.tracker.episode_id is None:
            raise RuntimeError("PickEnv.step before reset: call reset() first")
        if self.tracker.done:
            raise RuntimeError(f"PickEnv.step after the episode ended ({self.tracker.end_reason}): call reset()")
        action = np.asarray(action, dtype=np.float32)
        if action.shape != (ACTION_DIM,) or not np.all(np.isfinite(action)):
            raise ValueError(f"action must be {ACTION_DIM} finite values in [-1, 1] (dx, dy, dz, gripper): {action}")
        q = self.world.joint_positions()
        command = self.mapper.to_joints(action, q)
        guarded = self._guard.apply(JOINT_NAMES, command, q, self.world.time).target
        self.world.set_joint_targets(guarded)
        self.world.step(self.control_period_s)

        q = self.world.joint_positions()
        frame, state = self._observe(q)
        self.stack.push(frame, state)
        grasp = self.world.grasp_success()
        if self.classifier is None:
            probability, success = float(grasp), grasp
        else:
            probability = min(max(float(self.classifier(frame)), 0.0), 1.0)
            success = probability >= self.classifier_threshold
        stamp_ns = round(self.world.time * 1e9)  # the image's stamp: simulated time since the reset
        self.tracker.record_reward_signal(stamp_ns, probability, success)
        outcome = self.tracker.step(stamp_ns)
        info = self._info(grasp=grasp, probability=probability)
        info["command"] = command
        return self._obs(), float(outcome.reward), outcome.terminated, outcome.truncated, info

    def render(self):
        if self.render_mode != "rgb_array":
            return None
        return None if self._raw is None else self._raw.copy()

    def close(self):
        self.world.close()
        super().close()

    # ---- internals ----------------------------------------------------------------------------------------------
    def _observe(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The wrist frame and the state of the freshly read joints, exactly as ControlStep._observe."""
        self._raw = self.world.render_wrist()
        return self.preprocessing.apply(self._raw, "rgb8"), self.state_builder.build(q)

    def _obs(self) -> dict[str, np.ndarray]:
        return {"pixels": self.stack.pixels(), "state": self.stack.state()}

    def _info(self, grasp: bool, probability: float) -> dict[str, Any]:
        return {
            "is_success": self.tracker.success,
            "grasp": bool(grasp),
            "probability": float(probability),
            "steps": self.tracker.steps,
            "end_reason": self.tracker.end_reason,
            "stage": self.stage,
        }
