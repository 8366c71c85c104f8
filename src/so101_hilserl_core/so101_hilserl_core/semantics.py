"""What a policy's 4-D action and the orientation part of its state mean: the semantics a policy carries.

A policy is only right on the robot if its action is applied, and its state built, the way it was trained
(docs/architecture.md, "The observation and action contract"). So these travel with every policy and agent file and
with PolicyWeights.network_config, as three fields of PolicyConfig: ``gripper_action``, ``ee_target`` and
``orientation`` (their choices below, the project's first). Torch-free, so the action mapping and the state builder
can use it without the network code.
"""

from __future__ import annotations

# "delta": the gripper command moves the jaw from its read position by gripper_step_rad per unit; "absolute": it is a
# jaw position, [-1, 1] linearly onto ABSOLUTE_GRIPPER_RANGE.
GRIPPER_ACTIONS = ("delta", "absolute")
# "reread": target = FK(freshly read joints) + delta; "accumulate": target += delta each step, starting at the EE
# position of the episode start, clipped to the workspace box (pick-101's LiftCubeCartesianEnv).
EE_TARGETS = ("reread", "accumulate")
# "home_rotvec": state[15:18] = rotation vector (axis * angle, rad, base frame) of R @ R_home^T, 0 at the home pose
# and continuous for every orientation less than pi from it; "euler_zyx": the TCP's raw ZYX euler (roll, pitch, yaw),
# what pick-101 trained on, whose roll sits at +-pi at the home pose and so jumps by 2 pi between neighbouring poses.
ORIENTATIONS = ("home_rotvec", "euler_zyx")
SEMANTIC_FIELDS = ("gripper_action", "ee_target", "orientation")
_CHOICES = dict(zip(SEMANTIC_FIELDS, (GRIPPER_ACTIONS, EE_TARGETS, ORIENTATIONS), strict=True))

# The project's own policies (the PolicyConfig defaults).
PROJECT_SEMANTICS = {"gripper_action": "delta", "ee_target": "reread", "orientation": "home_rotvec"}
# pick-101's simulation, as its checkpoints were trained (import-robobase marks snapshots with these).
PICK101_SEMANTICS = {"gripper_action": "absolute", "ee_target": "accumulate", "orientation": "euler_zyx"}
# A policy file or checkpoint written before semantics were recorded: the project's code then applied every policy
# this way and built the state with raw euler, so that is what such a policy acted and was trained with.
LEGACY_SEMANTICS = {"gripper_action": "delta", "ee_target": "reread", "orientation": "euler_zyx"}

# pick-101's gripper actuator ctrlrange (rad); the absolute gripper action maps [-1, 1] linearly onto it.
ABSOLUTE_GRIPPER_RANGE = (-0.1745, 1.7453)


def check_semantic(name: str, value: object) -> str:
    """The value if it is one of the choices for field ``name``; else ValueError naming the field and the choices."""
    choices = _CHOICES[name]
    if value not in choices:
        raise ValueError(f"PolicyConfig.{name} must be one of {', '.join(choices)}; got {value!r}")
    return value  # type: ignore[return-value]
