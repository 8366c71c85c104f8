"""The one place where the 4-D action meets the joints (DESIGN.md, "The observation and action contract").

Action = (dx, dy, dz, gripper) in [-1, 1]. The first three move the TCP (gripper_frame_link) in the base frame by
``step_m`` metres per unit; the gripper command opens (+1), closes (-1) or holds (0) the jaw by ``gripper_step_rad``
per unit. Both directions live here so they cannot drift apart:

* ``policy_action_to_joints``: action -> joint targets, as the seed system did it (seed-system-facts section 2):
  target = FK(freshly read q) + action * step_m, clipped to the workspace box; ONE damped-least-squares IK step from
  the read joints (never an accumulated target: devlog 024's drift); then every joint's change is limited per
  control step and everything is clamped to the joint limits.
* ``human_action_from_joints``: during an intervention the follower mirrors the leader's joints; the transition
  stores the human's action in the same space (section 6): xyz = clip(FK(leader) - FK(follower), +-step_m) / step_m,
  gripper = the leader jaw's change since the previous control step in action units, quantised to {-1, 0, +1}.

All joint arrays are (6,) in JOINT_NAMES order, radians. Pure functions; the Kinematics object is the caller's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from so101_driver.joints import JOINT_NAMES, NUM_JOINTS
from so101_driver.kinematics import Kinematics

ACTION_DIM = 4
GRIPPER = NUM_JOINTS - 1  # index of the gripper in JOINT_NAMES order

# No SO-101 joint can be beyond this (rad); a larger value is a unit mistake (degrees, servo ticks, 0..100 gripper).
_PLAUSIBLE_JOINT_RAD = 2.0 * math.pi


@dataclass(frozen=True)
class ActionConfig:
    """How an action maps to joints. Defaults: the seed system's final configuration, in radians and metres.

    gripper_step_rad: jaw change per action unit. The seed moved its 0..100 gripper by 50 per unit, i.e. one step
        crossed its whole used range; here one unit is ``gripper_step_rad`` and ``max_joint_step_rad`` also limits it.
    gripper_range: the jaw targets the policy may command (rad). 0 = closed (a 3 cm cube stops the jaw before 0, so a
        closed command squeezes); 1.0 rad opens wide enough to clear the cube (as the simulation's reset pose).
    max_joint_step_rad: the largest change of any joint target from the read position in one control step.
    gripper_quantisation_threshold: the human's jaw change, as a fraction of ``gripper_step_rad``, that counts as an
        open (+1) or close (-1) command (the seed system used 0.3 of its full scale).
    """

    step_m: float = 0.02
    workspace_min: tuple[float, float, float] = (0.10, -0.15, -0.02)
    workspace_max: tuple[float, float, float] = (0.35, 0.15, 0.25)
    ik_damping: float = 0.1
    ik_max_step_rad: float = 0.5
    gripper_step_rad: float = 0.3
    gripper_range: tuple[float, float] = (0.0, 1.0)
    max_joint_step_rad: float = 0.3
    gripper_quantisation_threshold: float = 0.3

    def __post_init__(self) -> None:
        for name in ("step_m", "ik_damping", "ik_max_step_rad", "gripper_step_rad", "max_joint_step_rad"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"ActionConfig.{name} must be a positive number, got {value}")
        if self.step_m > 0.1:
            raise ValueError(f"ActionConfig.step_m is {self.step_m} m per unit; it is metres (the seed used 0.02)")
        lo, hi = np.asarray(self.workspace_min, dtype=float), np.asarray(self.workspace_max, dtype=float)
        if lo.shape != (3,) or hi.shape != (3,) or not np.all(lo < hi):
            raise ValueError(
                f"ActionConfig.workspace_min {self.workspace_min} must be below workspace_max {self.workspace_max} "
                "on every axis (x, y, z in metres)"
            )
        g_lo, g_hi = self.gripper_range
        if not g_lo < g_hi:
            raise ValueError(
                f"ActionConfig.gripper_range {self.gripper_range} must be (closed, open) with closed < open"
            )
        if not 0.0 < self.gripper_quantisation_threshold <= 1.0:
            raise ValueError(
                f"ActionConfig.gripper_quantisation_threshold must be in (0, 1] (a fraction of gripper_step_rad), "
                f"got {self.gripper_quantisation_threshold}"
            )
        object.__setattr__(self, "workspace_min", tuple(float(v) for v in lo))
        object.__setattr__(self, "workspace_max", tuple(float(v) for v in hi))


DEFAULT_ACTION_CONFIG = ActionConfig()


def _joints(q: np.ndarray, name: str) -> np.ndarray:
    q = np.asarray(q, dtype=float)
    if q.shape != (NUM_JOINTS,):
        raise ValueError(f"{name} must hold {NUM_JOINTS} joint positions {JOINT_NAMES} in rad, got shape {q.shape}")
    if not np.all(np.isfinite(q)):
        raise ValueError(f"{name} must be finite, got {q}")
    if np.any(np.abs(q) > _PLAUSIBLE_JOINT_RAD):
        raise ValueError(f"{name} = {q} is not in radians (|value| > 2 pi): convert degrees or servo units first")
    return q


def policy_action_to_joints(
    action: np.ndarray, q_now: np.ndarray, kinematics: Kinematics, config: ActionConfig = DEFAULT_ACTION_CONFIG
) -> np.ndarray:
    """A 4-D action and the freshly read joints -> the (6,) joint target for this control step."""
    action = np.asarray(action, dtype=float)
    if action.shape != (ACTION_DIM,) or not np.all(np.isfinite(action)):
        raise ValueError(f"action must be {ACTION_DIM} finite values (dx, dy, dz, gripper), got {action}")
    q_now = _joints(q_now, "q_now")
    action = np.clip(action, -1.0, 1.0)

    tcp, _ = kinematics.fk(q_now)
    target = np.clip(tcp + action[:3] * config.step_m, config.workspace_min, config.workspace_max)
    q_target = kinematics.ik_step(q_now, target, damping=config.ik_damping, max_step=config.ik_max_step_rad)

    g_lo, g_hi = config.gripper_range
    q_target[GRIPPER] = min(max(q_now[GRIPPER] + action[3] * config.gripper_step_rad, g_lo), g_hi)

    np.clip(q_target, q_now - config.max_joint_step_rad, q_now + config.max_joint_step_rad, out=q_target)
    np.clip(q_target, kinematics.lower, kinematics.upper, out=q_target)
    return q_target


def quantise_gripper(delta_rad: float, config: ActionConfig = DEFAULT_ACTION_CONFIG) -> float:
    """A jaw change (rad) in one control step -> +1 (opened), -1 (closed) or 0 (held)."""
    units = delta_rad / config.gripper_step_rad
    if units >= config.gripper_quantisation_threshold:
        return 1.0
    if units <= -config.gripper_quantisation_threshold:
        return -1.0
    return 0.0


def human_action_from_joints(
    follower_q: np.ndarray,
    leader_q: np.ndarray,
    prev_leader_gripper: float,
    kinematics: Kinematics,
    config: ActionConfig = DEFAULT_ACTION_CONFIG,
) -> np.ndarray:
    """The human's action (float32[4]) while the follower mirrors the leader.

    ``prev_leader_gripper`` is the leader's jaw angle (rad) at the previous control step; at the first step of an
    intervention pass the current one (no gripper command yet).
    """
    follower_q = _joints(follower_q, "follower_q")
    leader_q = _joints(leader_q, "leader_q")
    prev = float(prev_leader_gripper)
    if not (math.isfinite(prev) and abs(prev) <= _PLAUSIBLE_JOINT_RAD):
        raise ValueError(f"prev_leader_gripper = {prev} must be a jaw angle in radians")
    follower_tcp, _ = kinematics.fk(follower_q)
    leader_tcp, _ = kinematics.fk(leader_q)
    action = np.empty(ACTION_DIM, dtype=np.float32)
    action[:3] = np.clip(leader_tcp - follower_tcp, -config.step_m, config.step_m) / config.step_m
    action[3] = quantise_gripper(leader_q[GRIPPER] - prev, config)
    return action
