"""Layout of the 18-value per-frame state vector (docs/architecture.md, "The observation and action contract");
SI units.

[0:6]   joint positions (rad)            JOINT_NAMES order
[6:12]  joint velocities (rad/s)         finite difference at the control period
[12:15] end-effector xyz (m)             gripper_frame_link in base_link
[15:18] end-effector orientation (rad)   as the policy's orientation semantics says (see EE_ORIENTATION)
"""

from so101_contract.joints import NUM_JOINTS

STATE_DIM = 18
JOINT_POSITIONS = slice(0, NUM_JOINTS)
JOINT_VELOCITIES = slice(NUM_JOINTS, 2 * NUM_JOINTS)
EE_POSITION = slice(2 * NUM_JOINTS, 2 * NUM_JOINTS + 3)
# so101_hilserl_core/semantics.py decides: "home_rotvec" (the project's) is the rotation vector of R @ R_home^T in the
# base frame; "euler_zyx" (pick-101's) is the raw ZYX euler roll, pitch, yaw.
EE_ORIENTATION = slice(2 * NUM_JOINTS + 3, STATE_DIM)
