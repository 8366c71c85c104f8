"""The one place where the 4-D action meets the joints, in both directions so they cannot drift apart.

Action = (dx, dy, dz, gripper) in [-1, 1]: the first three move the TCP (gripper_frame_link) in the base frame by
``step_m`` metres per unit; where that delta is added and what the gripper command means is the policy's semantics
(semantics.py). ``PolicyActionMapper`` turns a policy's action into joint targets, ``HumanActionEncoder`` turns the
leader's pose during an intervention into the same 4-D action (so the stored action is the executed one), and
``policy_action_to_joints`` is the mapper's stateless re-read/delta form. All joint arrays are (6,) in JOINT_NAMES
order, radians; the Kinematics object is the caller's (not thread-safe).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from so101_contract.control import ACTION_DIM
from so101_contract.joints import GRIPPER, JOINT_NAMES, NUM_JOINTS
from so101_contract.settings import setting
from so101_driver.model.joint_safety import CommandLimits
from so101_driver.model.kinematics import Kinematics
from so101_hilserl_core.semantics import ABSOLUTE_GRIPPER_RANGE, check_semantic

# No SO-101 joint can be beyond this (rad); a larger value is a unit mistake (degrees, servo ticks, 0..100 gripper).
_PLAUSIBLE_JOINT_RAD = 2.0 * math.pi


@dataclass(frozen=True)
class ActionConfig:
    """How an action maps to joints. Defaults: the seed system's final configuration, in radians and metres.

    gripper_step_rad: jaw change per action unit. The seed moved its 0..100 gripper by 50 per unit, i.e. one step
        crossed its whole used range; here one unit is ``gripper_step_rad`` and ``max_joint_step`` also limits it.
    gripper_range: the jaw targets the policy may command (rad). 0 = closed (a 3 cm cube stops the jaw before 0, so a
        closed command squeezes); 1.0 rad opens wide enough to clear the cube (as the simulation's reset pose).
    max_joint_step: the largest change of any joint target (rad) from the read position in one control step (the
        actor's parameter of that name).
    """

    step_m: float = 0.02
    workspace_min: tuple[float, float, float] = (0.10, -0.15, -0.02)
    workspace_max: tuple[float, float, float] = (0.35, 0.15, 0.25)
    ik_damping: float = 0.1
    ik_max_step_rad: float = 0.5
    gripper_step_rad: float = 0.3
    gripper_range: tuple[float, float] = (0.0, 1.0)
    max_joint_step: float = setting(CommandLimits.max_joint_step, "per-step joint change (rad)", (0.001, 1.0))

    def __post_init__(self) -> None:
        for name in ("step_m", "ik_damping", "ik_max_step_rad", "gripper_step_rad", "max_joint_step"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"ActionConfig.{name} must be a positive number, got {value}")
        if self.step_m > 0.1:
            raise ValueError(f"ActionConfig.step_m is {self.step_m} per action unit; it is metres, not centimetres")
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


def _action(action: np.ndarray) -> np.ndarray:
    action = np.asarray(action, dtype=float)
    if action.shape != (ACTION_DIM,) or not np.all(np.isfinite(action)):
        raise ValueError(f"action must be {ACTION_DIM} finite values (dx, dy, dz, gripper), got {action}")
    return np.clip(action, -1.0, 1.0)


def absolute_gripper_position(command: float) -> float:
    """An absolute gripper command in [-1, 1] -> jaw angle (rad): linear onto ABSOLUTE_GRIPPER_RANGE (pick-101's
    ``(a + 1) / 2 * (hi - lo) + lo``)."""
    lo, hi = ABSOLUTE_GRIPPER_RANGE
    return (min(max(float(command), -1.0), 1.0) + 1.0) / 2.0 * (hi - lo) + lo


def absolute_gripper_command(position_rad: float) -> float:
    """A jaw angle (rad) -> the absolute gripper command in [-1, 1] that asks for it (absolute_gripper_position^-1,
    clipped to the range)."""
    lo, hi = ABSOLUTE_GRIPPER_RANGE
    return min(max(2.0 * (float(position_rad) - lo) / (hi - lo) - 1.0, -1.0), 1.0)


def _joint_target(
    q_now: np.ndarray, ee_target: np.ndarray, jaw: float, kinematics: Kinematics, config: ActionConfig
) -> np.ndarray:
    """One IK step toward ee_target (already in the workspace box), the jaw in its range, step and joint limits."""
    q_target = kinematics.ik_step(q_now, ee_target, damping=config.ik_damping, max_step=config.ik_max_step_rad)
    g_lo, g_hi = config.gripper_range
    q_target[GRIPPER] = min(max(jaw, g_lo), g_hi)
    np.clip(q_target, q_now - config.max_joint_step, q_now + config.max_joint_step, out=q_target)
    np.clip(q_target, kinematics.lower, kinematics.upper, out=q_target)
    return q_target


def policy_action_to_joints(
    action: np.ndarray, q_now: np.ndarray, kinematics: Kinematics, config: ActionConfig = DEFAULT_ACTION_CONFIG
) -> np.ndarray:
    """A 4-D action and the freshly read joints -> the (6,) joint target, re-read EE target and delta gripper (the
    project's semantics; PolicyActionMapper applies any policy's)."""
    action = _action(action)
    q_now = _joints(q_now, "q_now")
    tcp, _ = kinematics.fk(q_now)
    target = np.clip(tcp + action[:3] * config.step_m, config.workspace_min, config.workspace_max)
    return _joint_target(q_now, target, q_now[GRIPPER] + action[3] * config.gripper_step_rad, kinematics, config)


def _semantic(source, name: str) -> str:
    """A semantic field from a PolicyConfig (or anything with the attribute), or a dict of them."""
    value = source.get(name) if isinstance(source, dict) else getattr(source, name, None)
    return check_semantic(name, value)


class PolicyActionMapper:
    """A policy's actions -> joint targets under its semantics.

    ee_target "reread": target = FK(freshly read q) + action * step_m; "accumulate" (pick-101's simulation):
    target += action * step_m from the EE position at ``reset``. Either is clipped to the workspace box, then ONE
    damped-least-squares IK step from the read joints. gripper_action "delta": jaw = read jaw + action *
    gripper_step_rad; "absolute": [-1, 1] linearly onto ABSOLUTE_GRIPPER_RANGE. For every semantics the jaw is then
    kept in ``gripper_range``, each joint's change is limited per control step and all are clamped to the joint limits.

    ``semantics``: the policy's PolicyConfig (or a dict with gripper_action and ee_target). Call ``reset(joints)``
    at every episode start and on every step the policy does not drive the arm (an intervention): an accumulated
    target then restarts at the arm's EE position, as pick-101's reset did, instead of pulling the arm back to
    where the policy last left it. With ee_target "reread" reset only re-anchors ``target``, which is then unused.
    """

    def __init__(self, kinematics: Kinematics, semantics, config: ActionConfig = DEFAULT_ACTION_CONFIG):
        self.kinematics = kinematics
        self.config = config
        self.gripper_action = _semantic(semantics, "gripper_action")
        self.ee_target = _semantic(semantics, "ee_target")
        self._target: np.ndarray | None = None

    @property
    def target(self) -> np.ndarray | None:
        """The accumulated EE target (m, base frame), or None before the first reset."""
        return None if self._target is None else self._target.copy()

    def reset(self, joints: np.ndarray) -> None:
        """Episode start (or an intervention step): the EE target restarts at FK(joints), clipped to the box."""
        tcp, _ = self.kinematics.fk(_joints(joints, "joints"))
        self._target = np.clip(tcp, self.config.workspace_min, self.config.workspace_max)

    def to_joints(self, action: np.ndarray, joints: np.ndarray) -> np.ndarray:
        """The policy's 4-D action and the freshly read joints -> the (6,) joint target for this control step."""
        action = _action(action)
        q_now = _joints(joints, "joints")
        cfg = self.config
        if self.ee_target == "accumulate":
            if self._target is None:
                raise RuntimeError("PolicyActionMapper.to_joints before reset(joints): call reset at episode start")
            # pick-101 clips the accumulated target itself, so it never winds up beyond the box
            self._target = np.clip(self._target + action[:3] * cfg.step_m, cfg.workspace_min, cfg.workspace_max)
            target = self._target
        else:
            tcp, _ = self.kinematics.fk(q_now)
            target = np.clip(tcp + action[:3] * cfg.step_m, cfg.workspace_min, cfg.workspace_max)
        if self.gripper_action == "absolute":
            jaw = absolute_gripper_position(action[3])
        else:
            jaw = q_now[GRIPPER] + action[3] * cfg.gripper_step_rad
        return _joint_target(q_now, target, jaw, self.kinematics, cfg)


class HumanActionEncoder:
    """The person's action during an intervention: the leader's pose as a 4-D action in the policy's semantics,
    clipped to its bounds. Stateless; the caller executes it with the policy's mapper.

    xyz = clip(FK(leader) - FK(follower), +-step_m) / step_m; gripper "delta": clip((leader jaw - follower jaw) /
    gripper_step_rad, +-1) (a person closing stores a closing action); "absolute": the leader's jaw mapped into
    [-1, 1] (the inverse of the mapper's). The follower thus converges on the leader by at most one action step per
    control period and never jumps, however far the leader is.
    """

    def __init__(self, kinematics: Kinematics, semantics, config: ActionConfig = DEFAULT_ACTION_CONFIG):
        self.kinematics = kinematics
        self.config = config
        self.gripper_action = _semantic(semantics, "gripper_action")

    def encode(self, leader: np.ndarray, follower: np.ndarray) -> np.ndarray:
        """(leader joints, follower joints) -> float32[4] in [-1, 1]: the action that moves the follower toward the
        leader by at most one step."""
        leader = _joints(leader, "leader")
        follower = _joints(follower, "follower")
        cfg = self.config
        leader_tcp, _ = self.kinematics.fk(leader)
        follower_tcp, _ = self.kinematics.fk(follower)
        action = np.empty(ACTION_DIM, dtype=np.float32)
        action[:3] = np.clip((leader_tcp - follower_tcp) / cfg.step_m, -1.0, 1.0)
        if self.gripper_action == "absolute":
            action[3] = absolute_gripper_command(leader[GRIPPER])
        else:
            action[3] = np.clip((leader[GRIPPER] - follower[GRIPPER]) / cfg.gripper_step_rad, -1.0, 1.0)
        return action
