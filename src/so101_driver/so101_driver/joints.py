"""The SO-101 joint names, in the one order used by every array in the project (URDF names, LeRobot motor ids 1..6)."""

JOINT_NAMES: tuple[str, ...] = (
    "shoulder_pan",
    "shoulder_lift",
    "elbow_flex",
    "wrist_flex",
    "wrist_roll",
    "gripper",
)
ARM_JOINT_NAMES: tuple[str, ...] = JOINT_NAMES[:5]
NUM_JOINTS = len(JOINT_NAMES)
