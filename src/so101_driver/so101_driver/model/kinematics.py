"""Forward and inverse kinematics of the SO-101 (pinocchio on the project URDF).

One model serves three jobs: the end-effector part of the observation (TCP position + euler ZYX), the one
damped-least-squares IK step per 10 Hz control step (docs/architecture.md, "The observation and action contract"), and
the iterative IK of the episode reset. Arrays are in JOINT_NAMES order, radians; positions in metres in base_link; the
TCP is ``gripper_frame_link`` (its z axis points along the fingers). ik_step is on the control path, so one pinocchio
Data and the work buffers are allocated once and reused: a Kinematics object is not thread-safe (one per thread).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pinocchio as pin

from so101_contract.joints import JOINT_NAMES, NUM_ARM_JOINTS
from so101_driver.model.robot_model import resolve_urdf_path

# The seed system's reset EE target (its ik_reset_ee_pos): 7 cm above the table, 25 cm ahead.
HOME_EE_POSITION = np.array([0.25, 0.0, 0.07])

# A fixed IK seed for resets: the fingers-down pose at HOME_EE_POSITION (TCP (0.250, 0.000, 0.069) m, TCP z axis
# 0.05 degrees from straight down), wrist_roll 0 so the jaw opens along gripper_link x = (1.0, -0.05, 0.0): horizontal,
# pointing away from the base, as in the seed system, whose reset left the roll alone. Found with solve_ik from
# (0, -0.5, 0.5, 1.0, 0, 0). From here solve_ik reaches fingers-down targets across y -0.12..0.12 m, x 0.15..0.25 m,
# z 0.02..0.07 m in a few dozen iterations. Fingers straight down cannot go much higher: wrist_flex hits its limit
# (1.658 rad) at z ~ 0.07-0.09 m over that range, so higher targets need a tilted tool or no tool_direction.
HOME_SEED = np.array([0.0, 0.241, -0.276, 1.606, 0.0, 0.0])

# Straight down: the tool direction of a top grasp (TCP z axis = finger direction).
TOOL_DOWN = np.array([0.0, 0.0, -1.0])

# solve_ik: metres of position error that one unit of tool-direction error (|z - z_target|, ~ radians) is worth.
DIRECTION_WEIGHT_M = 0.1
# solve_ik stops when the tool direction is also within this angle (rad) of the target.
DIRECTION_TOL_RAD = 1e-3


def euler_zyx_from_matrix(rotation: np.ndarray) -> np.ndarray:
    """(roll, pitch, yaw) with R = Rz(yaw) Ry(pitch) Rx(roll): the seed system's rotation_matrix_to_euler.

    roll = atan2(R21, R22), pitch = atan2(-R20, sqrt(R00^2 + R10^2)), yaw = atan2(R10, R00); the checkpoints
    pretrained in simulation expect exactly this convention in the state vector.
    """
    r = np.asarray(rotation, dtype=float)
    if r.shape != (3, 3):
        raise ValueError(f"rotation must be a 3x3 matrix, got shape {r.shape}")
    (r00, _, _), (r10, _, _), (r20, r21, r22) = r.tolist()  # plain floats: math is ~5x faster than numpy scalars
    return np.array([math.atan2(r21, r22), math.atan2(-r20, math.hypot(r00, r10)), math.atan2(r10, r00)])


def quaternion_xyzw_from_matrix(rotation: np.ndarray) -> np.ndarray:
    """Unit quaternion (x, y, z, w) of a rotation matrix, the order of geometry_msgs/Quaternion."""
    return np.array(pin.Quaternion(np.asarray(rotation, dtype=float)).normalized().coeffs())


def _skew(v: np.ndarray) -> np.ndarray:
    return np.array([[0.0, -v[2], v[1]], [v[2], 0.0, -v[0]], [-v[1], v[0], 0.0]])


class Kinematics:
    """Pinocchio model of the SO-101 with the TCP frame ``ee_frame``; see the module docstring."""

    def __init__(self, urdf_path: str | Path | None = None, ee_frame: str = "gripper_frame_link"):
        self.urdf_path = resolve_urdf_path(urdf_path)
        self.model = pin.buildModelFromUrdf(str(self.urdf_path))
        self.data = self.model.createData()

        names = list(self.model.names)
        missing = [name for name in JOINT_NAMES if name not in names]
        if missing:
            raise ValueError(
                f"URDF {self.urdf_path} lacks joint(s) {', '.join(missing)}; the SO-101 model needs {list(JOINT_NAMES)}"
            )
        joints = [self.model.joints[self.model.getJointId(name)] for name in JOINT_NAMES]
        not_1dof = [name for name, j in zip(JOINT_NAMES, joints, strict=True) if j.nq != 1 or j.nv != 1]
        if not_1dof:
            raise ValueError(f"joint(s) {', '.join(not_1dof)} in {self.urdf_path} must be revolute or prismatic")
        self.joint_names: tuple[str, ...] = tuple(JOINT_NAMES)
        self._idx_q = np.array([j.idx_q for j in joints])
        self._idx_v_arm = np.array([j.idx_v for j in joints[:NUM_ARM_JOINTS]])

        self.lower = np.array(self.model.lowerPositionLimit[self._idx_q], dtype=float)
        self.upper = np.array(self.model.upperPositionLimit[self._idx_q], dtype=float)

        self.ee_frame = ee_frame
        self._ee_id = self._frame_id(ee_frame)
        # Work buffers reused on every call (control path).
        self._q_model = pin.neutral(self.model)
        self._eye_arm = np.eye(NUM_ARM_JOINTS)

    # ---- helpers -------------------------------------------------------------------------------------------------
    def _frame_id(self, frame: str) -> int:
        if not self.model.existFrame(frame):
            known = ", ".join(f.name for f in self.model.frames if f.name != "universe")
            raise ValueError(f"frame {frame!r} is not in URDF {self.urdf_path}; known frames: {known}")
        return self.model.getFrameId(frame)

    def _load(self, q: np.ndarray) -> np.ndarray:
        """Copy joint positions (JOINT_NAMES order; 5 arm joints or all 6) into the model configuration."""
        q = np.asarray(q, dtype=float)
        if q.shape == (NUM_ARM_JOINTS + 1,):
            self._q_model[self._idx_q] = q
        elif q.shape == (NUM_ARM_JOINTS,):  # arm only: the jaw (which never moves the TCP) is taken as closed
            self._q_model[self._idx_q[:NUM_ARM_JOINTS]] = q
            self._q_model[self._idx_q[NUM_ARM_JOINTS]] = 0.0
        else:
            raise ValueError(f"q must hold {len(JOINT_NAMES)} joint positions {JOINT_NAMES}, got shape {q.shape}")
        return self._q_model

    def _tcp_and_jacobian(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """TCP position, rotation and the (6, 5) world-aligned jacobian of the arm joints, from one pass."""
        q_model = self._load(q)
        jac6 = pin.computeFrameJacobian(self.model, self.data, q_model, self._ee_id, pin.LOCAL_WORLD_ALIGNED)
        pose = self.data.oMf[self._ee_id]  # updated by computeFrameJacobian
        return pose.translation, pose.rotation, jac6[:, self._idx_v_arm]

    # ---- public API ----------------------------------------------------------------------------------------------
    def clamp(self, q: np.ndarray) -> np.ndarray:
        """q clipped to the URDF joint limits (a new array)."""
        return np.clip(np.asarray(q, dtype=float), self.lower, self.upper)

    def frame_pose(self, q: np.ndarray, frame: str) -> tuple[np.ndarray, np.ndarray]:
        """Position (3,) and rotation (3, 3) of any URDF frame in base_link."""
        frame_id = self._ee_id if frame == self.ee_frame else self._frame_id(frame)
        pin.forwardKinematics(self.model, self.data, self._load(q))
        pose = pin.updateFramePlacement(self.model, self.data, frame_id)
        return pose.translation.copy(), pose.rotation.copy()

    def fk(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """TCP position (3,) and rotation (3, 3) in base_link; the gripper value does not move the TCP."""
        return self.frame_pose(q, self.ee_frame)

    def ee_pose(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """TCP position (3,) and euler ZYX (roll, pitch, yaw) (3,): the end-effector part of the state vector."""
        position, rotation = self.fk(q)
        return position, euler_zyx_from_matrix(rotation)

    def position_jacobian(self, q: np.ndarray) -> np.ndarray:
        """(3, 5) d(TCP position)/d(arm joints) in base_link."""
        _, _, jac = self._tcp_and_jacobian(q)
        return jac[:3].copy()

    def ik_step(
        self, q: np.ndarray, target_position: np.ndarray, damping: float = 0.1, max_step: float = 0.5
    ) -> np.ndarray:
        """One damped-least-squares step of the 5 arm joints toward ``target_position`` (the seed system's IK).

        dq = solve(J^T J + damping^2 I, J^T e) with e = target - tcp, each |dq_i| clipped to ``max_step`` rad, the
        arm joints clamped to the limits; the gripper (index 5) is returned unchanged. Returns a new (6,) array.
        """
        q = np.asarray(q, dtype=float)
        if q.shape != (len(JOINT_NAMES),):
            raise ValueError(f"q must hold {len(JOINT_NAMES)} joint positions {JOINT_NAMES}, got shape {q.shape}")
        tcp, _, jac = self._tcp_and_jacobian(q)
        jp = jac[:3]
        error = np.asarray(target_position, dtype=float) - tcp
        dq = np.linalg.solve(jp.T @ jp + (damping * damping) * self._eye_arm, jp.T @ error)
        np.clip(dq, -max_step, max_step, out=dq)
        out = q.copy()
        arm = out[:NUM_ARM_JOINTS]
        arm += dq
        np.clip(arm, self.lower[:NUM_ARM_JOINTS], self.upper[:NUM_ARM_JOINTS], out=arm)
        return out

    def solve_ik(
        self,
        q0: np.ndarray,
        target_position: np.ndarray,
        tool_direction: np.ndarray | None = None,
        tol: float = 1e-3,
        max_iters: int = 200,
        damping: float = 0.05,
    ) -> tuple[np.ndarray, float]:
        """Iterative IK for resets: TCP at ``target_position`` and, optionally, TCP z axis along ``tool_direction``.

        Damped least squares on the 5 arm joints from ``q0`` (clamped to the limits first), every iterate clamped
        to the limits, steps clipped to 0.5 rad. The direction error counts DIRECTION_WEIGHT_M metres per unit.
        Stops when the position error is below ``tol`` (and the direction within DIRECTION_TOL_RAD). Never raises
        for an unreachable target: it returns the closest configuration found and its position error (m), so the
        caller decides. The gripper value of q0 is kept.
        """
        q = self.clamp(q0)
        if q.shape != (len(JOINT_NAMES),):
            raise ValueError(f"q0 must hold {len(JOINT_NAMES)} joint positions {JOINT_NAMES}, got shape {q.shape}")
        target = np.asarray(target_position, dtype=float)
        direction = None
        if tool_direction is not None:
            direction = np.asarray(tool_direction, dtype=float)
            norm = np.linalg.norm(direction)
            if direction.shape != (3,) or norm < 1e-9:
                raise ValueError(f"tool_direction must be a non-zero 3-vector, got {tool_direction!r}")
            direction = direction / norm
        damp2 = damping * damping * self._eye_arm
        lower, upper = self.lower[:NUM_ARM_JOINTS], self.upper[:NUM_ARM_JOINTS]
        best_q, best_cost, best_error = q.copy(), np.inf, np.inf
        for _ in range(max_iters + 1):
            tcp, rotation, jac = self._tcp_and_jacobian(q)
            error = target - tcp
            position_error = float(np.linalg.norm(error))
            if direction is None:
                task_jac, task_error, direction_ok, cost = jac[:3], error, True, position_error
            else:
                z = rotation[:, 2]
                # dz/dt = w x z = -[z]x w: the tool-axis rows of the jacobian, weighted into metres.
                z_jac = -_skew(z) @ jac[3:]
                z_error = direction - z
                task_jac = np.vstack((jac[:3], DIRECTION_WEIGHT_M * z_jac))
                task_error = np.concatenate((error, DIRECTION_WEIGHT_M * z_error))
                angle = 2.0 * np.arcsin(min(1.0, 0.5 * float(np.linalg.norm(z_error))))
                direction_ok = angle < DIRECTION_TOL_RAD
                cost = float(np.linalg.norm(task_error))
            if cost < best_cost:
                best_q, best_cost, best_error = q.copy(), cost, position_error
            if position_error < tol and direction_ok:
                break
            dq = np.linalg.solve(task_jac.T @ task_jac + damp2, task_jac.T @ task_error)
            np.clip(dq, -0.5, 0.5, out=dq)
            q[:NUM_ARM_JOINTS] = np.clip(q[:NUM_ARM_JOINTS] + dq, lower, upper)
        return best_q, best_error
