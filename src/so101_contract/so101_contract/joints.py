"""The SO-101 joint names, in the one order used by every array in the project (URDF names, LeRobot motor ids 1..6),
and the one way to read a sensor_msgs/JointState into that order (joints are matched by name, never by index)."""

from collections.abc import Sequence

import numpy as np

JOINT_NAMES: tuple[str, ...] = (
    "shoulder_pan",
    "shoulder_lift",
    "elbow_flex",
    "wrist_flex",
    "wrist_roll",
    "gripper",
)
ARM_JOINT_NAMES: tuple[str, ...] = JOINT_NAMES[:5]  # the joints that move the tool centre point
NUM_JOINTS = len(JOINT_NAMES)
NUM_ARM_JOINTS = len(ARM_JOINT_NAMES)
GRIPPER = JOINT_NAMES.index("gripper")  # the jaw's index in every joint array (not the arm-joint count by chance)


def positions_by_name(names: Sequence[str], positions: Sequence[float]) -> tuple[np.ndarray | None, list[str]]:
    """JointState (name, position) in JOINT_NAMES order; (None, the missing names) if the message lacks any or its
    arrays disagree in length, or has a non-finite position (then the second item names those joints)."""
    if len(positions) != len(names):
        return None, list(JOINT_NAMES)
    index = {name: i for i, name in enumerate(names)}
    missing = [name for name in JOINT_NAMES if name not in index]
    if missing:
        return None, missing
    q = np.array([positions[index[name]] for name in JOINT_NAMES], dtype=float)
    if not np.isfinite(q).all():
        return None, [name for name, value in zip(JOINT_NAMES, q, strict=True) if not np.isfinite(value)]
    return q, []
