"""Kinematics against the official model's reference poses, an independent euler construction, finite differences
and the reset workspace."""

import itertools
from pathlib import Path

import numpy as np
import pinocchio as pin
import pytest

from so101_contract.joints import JOINT_NAMES
from so101_driver.model.kinematics import (
    HOME_EE_POSITION,
    HOME_SEED,
    TOOL_DOWN,
    Kinematics,
    euler_zyx_from_matrix,
    quaternion_xyzw_from_matrix,
)
from so101_driver.model.robot_model import default_urdf_path, resolve_urdf_path

# gripper_frame_link in base_link, from /work/shared/reference/so101-kinematics.md (pinocchio on so101_new_calib.urdf).
REFERENCE_POSES = [
    ([0, 0, 0, 0, 0, 0], (0.391361, -0.000009, 0.226470), (0.017206, 0.706894, 0.017214, 0.706900)),
    ([0.5, -0.3, 0.4, 0.2, 0.1, 0.0], (0.309112, -0.148563, 0.169542), (0.179042, 0.784666, -0.161536, 0.571095)),
    (
        [0.5236, -0.7854, 1.0472, -0.34907, 1.5708, 0.17453],
        (0.260729, -0.137437, 0.199818),
        (0.323458, -0.593123, 0.629339, -0.384074),
    ),
    ([0, -1.74533, 1.69, 0, 0, 0], (0.247339, -0.000010, 0.138196), (0.016724, 0.687070, 0.017683, 0.726184)),
]

# Fingers-down targets inside the reset workspace that the arm reaches with wrist_roll near 0 (see HOME_SEED).
REACHABLE_DOWN_TARGETS = [
    (x, y, z)
    for x in (0.15, 0.20, 0.25)
    for y in (-0.12, 0.0, 0.12)
    for z in (0.02, 0.045, 0.07)
    if (x, z) != (0.25, 0.07)
] + [(0.25, 0.0, 0.07), (0.25, -0.06, 0.07), (0.27, 0.0, 0.045), (0.18, 0.08, 0.03)]


@pytest.fixture(scope="module")
def kin() -> Kinematics:
    return Kinematics()


def _rx(a):
    c, s = np.cos(a), np.sin(a)
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


def _ry(a):
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def _rz(a):
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


def _angle_from_down_deg(rotation: np.ndarray) -> float:
    return float(np.degrees(np.arccos(np.clip(rotation[:, 2] @ TOOL_DOWN, -1.0, 1.0))))


# ---- model and URDF ----------------------------------------------------------------------------------------------
def test_default_urdf_exists_and_resolves():
    path = default_urdf_path()
    assert path.is_file() and path.name == "so101.urdf"
    assert resolve_urdf_path(None) == path
    assert resolve_urdf_path("") == path
    assert resolve_urdf_path(str(path)) == path


def test_missing_urdf_path_is_named(tmp_path):
    missing = tmp_path / "nope.urdf"
    with pytest.raises(FileNotFoundError, match="nope.urdf"):
        resolve_urdf_path(missing)


def test_joint_names_and_limits(kin):
    assert kin.joint_names == JOINT_NAMES
    np.testing.assert_allclose(kin.lower, [-1.91986, -1.74533, -1.69, -1.65806, -2.74385, -0.174533])
    np.testing.assert_allclose(kin.upper, [1.91986, 1.74533, 1.69, 1.65806, 2.84121, 1.74533])
    q = np.array([5.0, -5.0, 0.1, 2.0, -3.0, 0.5])
    np.testing.assert_allclose(kin.clamp(q), [1.91986, -1.74533, 0.1, 1.65806, -2.74385, 0.5])


def test_urdf_missing_a_joint_is_a_value_error_naming_it(tmp_path):
    text = default_urdf_path().read_text()
    assert '<joint name="wrist_flex" type="revolute">' in text
    broken = tmp_path / "broken.urdf"
    broken.write_text(text.replace('<joint name="wrist_flex"', '<joint name="wrist_bend"'))
    with pytest.raises(ValueError, match="wrist_flex"):
        Kinematics(broken)


def test_unknown_frame_is_a_value_error(kin):
    with pytest.raises(ValueError, match="no_such_frame"):
        kin.frame_pose(np.zeros(6), "no_such_frame")


# ---- forward kinematics ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("q, position, quat_xyzw", REFERENCE_POSES)
def test_fk_matches_reference_poses(kin, q, position, quat_xyzw):
    p, rotation = kin.fk(np.array(q, dtype=float))
    np.testing.assert_allclose(p, position, atol=1e-4)
    quat = quaternion_xyzw_from_matrix(rotation)
    ref = np.array(quat_xyzw)
    assert min(np.abs(quat - ref).max(), np.abs(quat + ref).max()) < 1e-4, (quat, ref)
    np.testing.assert_allclose(rotation @ rotation.T, np.eye(3), atol=1e-9)


def test_gripper_value_does_not_move_the_tcp_but_moves_the_jaw(kin):
    q = np.array([0.3, -0.2, 0.4, 0.5, 0.6, 0.0])
    q_open = q.copy()
    q_open[5] = 1.5
    np.testing.assert_allclose(kin.fk(q)[0], kin.fk(q_open)[0], atol=1e-12)
    np.testing.assert_allclose(kin.fk(q[:5])[0], kin.fk(q)[0], atol=1e-12)
    jaw, jaw_rot = kin.frame_pose(q, "moving_jaw_so101_v1_link")
    jaw_open, jaw_open_rot = kin.frame_pose(q_open, "moving_jaw_so101_v1_link")
    np.testing.assert_allclose(jaw, jaw_open, atol=1e-12)  # the jaw frame origin lies on its own joint axis
    assert not np.allclose(jaw_rot, jaw_open_rot)  # but the jaw turns with the gripper value


def test_fk_results_are_not_aliased_to_later_calls(kin):
    p1, r1 = kin.fk(np.zeros(6))
    kin.fk(np.array([0.5, -0.3, 0.4, 0.2, 0.1, 0.0]))
    np.testing.assert_allclose(p1, REFERENCE_POSES[0][1], atol=1e-4)
    assert r1[0, 0] == pytest.approx(kin.fk(np.zeros(6))[1][0, 0])


def test_frame_pose_tcp_is_gripper_link_offset(kin):
    q = np.array([0.2, -0.4, 0.6, 0.3, -0.7, 0.2])
    g_pos, g_rot = kin.frame_pose(q, "gripper_link")
    tcp_pos, tcp_rot = kin.fk(q)
    np.testing.assert_allclose(tcp_pos, g_pos + g_rot @ [-0.0079, -0.000218121, -0.0981274], atol=1e-9)
    np.testing.assert_allclose(tcp_rot[:, 2], -g_rot[:, 2], atol=1e-5)  # fingers along gripper_link -z
    cam_pos, cam_rot = kin.frame_pose(q, "wrist_camera_optical_frame")
    np.testing.assert_allclose(cam_rot @ cam_rot.T, np.eye(3), atol=1e-9)
    assert 0.0 < np.linalg.norm(cam_pos - g_pos) < 0.1


def test_ee_pose_is_position_and_euler_of_fk(kin):
    q = np.array(REFERENCE_POSES[1][0], dtype=float)
    p, euler = kin.ee_pose(q)
    p_fk, rotation = kin.fk(q)
    np.testing.assert_allclose(p, p_fk)
    np.testing.assert_allclose(_rz(euler[2]) @ _ry(euler[1]) @ _rx(euler[0]), rotation, atol=1e-9)


# ---- euler convention --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "roll, pitch, yaw",
    [(0.0, 0.0, 0.0), (0.3, -0.2, 1.1), (-2.5, 1.2, -3.0), (3.0, -1.4, 0.5), (0.1, 0.0, np.pi - 0.01)],
)
def test_euler_zyx_recovers_angles_of_rz_ry_rx(roll, pitch, yaw):
    rotation = _rz(yaw) @ _ry(pitch) @ _rx(roll)
    np.testing.assert_allclose(euler_zyx_from_matrix(rotation), [roll, pitch, yaw], atol=1e-12)


def test_euler_zyx_matches_the_seed_formula_and_pinocchio_rpy():
    rng = np.random.default_rng(3)
    for _ in range(20):
        rotation = pin.Quaternion(*rng.normal(size=4)).normalized().toRotationMatrix()
        r = rotation
        seed = [
            np.arctan2(r[2, 1], r[2, 2]),
            np.arctan2(-r[2, 0], np.sqrt(r[0, 0] ** 2 + r[1, 0] ** 2)),
            np.arctan2(r[1, 0], r[0, 0]),
        ]
        np.testing.assert_allclose(euler_zyx_from_matrix(rotation), seed, atol=1e-12)
        np.testing.assert_allclose(euler_zyx_from_matrix(rotation), pin.rpy.matrixToRpy(rotation), atol=1e-9)


def test_euler_rejects_non_3x3():
    with pytest.raises(ValueError, match="3x3"):
        euler_zyx_from_matrix(np.eye(4))


# ---- jacobian ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("q", [np.array(p[0], dtype=float) for p in REFERENCE_POSES[1:]] + [HOME_SEED])
def test_position_jacobian_matches_finite_differences(kin, q):
    jac = kin.position_jacobian(q)
    assert jac.shape == (3, 5)
    h = 1e-6
    numeric = np.zeros((3, 5))
    for i in range(5):
        dq = np.zeros(6)
        dq[i] = h
        numeric[:, i] = (kin.fk(q + dq)[0] - kin.fk(q - dq)[0]) / (2 * h)
    np.testing.assert_allclose(jac, numeric, atol=1e-8)


# ---- IK ----------------------------------------------------------------------------------------------------------
def test_ik_step_reduces_error_and_keeps_gripper(kin):
    q = HOME_SEED.copy()
    q[5] = 0.8
    target = HOME_EE_POSITION + np.array([0.02, -0.015, 0.01])
    errors = [np.linalg.norm(kin.fk(q)[0] - target)]
    for _ in range(5):
        q_next = kin.ik_step(q, target)
        assert q_next.shape == (6,) and q_next is not q
        assert q_next[5] == 0.8
        assert np.all(np.abs(q_next[:5] - q[:5]) <= 0.5 + 1e-12)
        q = q_next
        errors.append(np.linalg.norm(kin.fk(q)[0] - target))
    assert all(b < a for a, b in itertools.pairwise(errors)), errors
    assert errors[-1] < 0.2 * errors[0]


def test_ik_step_matches_the_damped_least_squares_formula(kin):
    q = np.array([0.2, -0.3, 0.5, 0.9, 0.1, 0.3])
    target = np.array([0.22, 0.05, 0.08])
    jac = kin.position_jacobian(q)
    e = target - kin.fk(q)[0]
    dq = np.linalg.solve(jac.T @ jac + 0.1**2 * np.eye(5), jac.T @ e)
    np.testing.assert_allclose(kin.ik_step(q, target)[:5], q[:5] + np.clip(dq, -0.5, 0.5), atol=1e-12)
    small = kin.ik_step(q, target, max_step=0.01)
    np.testing.assert_allclose(small[:5], q[:5] + np.clip(dq, -0.01, 0.01), atol=1e-12)


def test_ik_step_never_leaves_the_limits(kin):
    rng = np.random.default_rng(7)
    for _ in range(50):
        q = rng.uniform(kin.lower, kin.upper)
        target = rng.uniform(-0.6, 0.6, size=3)
        for _ in range(3):
            q = kin.ik_step(q, target, damping=0.01)
            assert np.all(q[:5] >= kin.lower[:5]) and np.all(q[:5] <= kin.upper[:5])


def test_home_seed_points_down_at_home_with_horizontal_jaw(kin):
    p, rotation = kin.fk(HOME_SEED)
    np.testing.assert_allclose(p, HOME_EE_POSITION, atol=2e-3)
    assert _angle_from_down_deg(rotation) < 1.0
    _, gripper_rot = kin.frame_pose(HOME_SEED, "gripper_link")
    assert abs(gripper_rot[2, 0]) < 0.02  # the jaw opening direction (gripper_link x) is horizontal


@pytest.mark.parametrize("seed", [HOME_SEED, np.array([0.0, -0.5, 0.5, 1.0, 0.0, 0.0])])
def test_solve_ik_reaches_fingers_down_targets(kin, seed):
    for target in REACHABLE_DOWN_TARGETS:
        q, error = kin.solve_ik(seed, target, tool_direction=TOOL_DOWN)
        p, rotation = kin.fk(q)
        assert error < 1e-3, (target, error)
        assert np.linalg.norm(p - target) == pytest.approx(error, abs=1e-12)
        assert _angle_from_down_deg(rotation) < 2.0, (target, _angle_from_down_deg(rotation))
        assert np.all(q >= kin.lower) and np.all(q <= kin.upper)
        assert q[5] == seed[5]


def test_solve_ik_position_only(kin):
    q, error = kin.solve_ik(HOME_SEED, [0.2, 0.1, 0.15])
    assert error < 1e-3
    np.testing.assert_allclose(kin.fk(q)[0], [0.2, 0.1, 0.15], atol=1e-3)


def test_solve_ik_unreachable_target_returns_large_error_within_limits(kin):
    q0 = HOME_SEED.copy()
    q, error = kin.solve_ik(q0, [1.0, 0.0, 0.3], tool_direction=TOOL_DOWN)
    assert error > 0.4
    assert np.all(q >= kin.lower) and np.all(q <= kin.upper)
    q, error = kin.solve_ik(q0, [0.0, 0.0, -1.0])
    assert error > 0.5
    assert np.all(q >= kin.lower) and np.all(q <= kin.upper)
    np.testing.assert_array_equal(q0, HOME_SEED)  # the seed is not modified


def test_solve_ik_rejects_zero_tool_direction(kin):
    with pytest.raises(ValueError, match="tool_direction"):
        kin.solve_ik(HOME_SEED, HOME_EE_POSITION, tool_direction=np.zeros(3))


def test_wrong_q_length_is_a_value_error(kin):
    with pytest.raises(ValueError, match="joint positions"):
        kin.fk(np.zeros(4))
    with pytest.raises(ValueError, match="joint positions"):
        kin.ik_step(np.zeros(5), HOME_EE_POSITION)


def test_custom_urdf_path_is_used(tmp_path):
    copy = tmp_path / "copy.urdf"
    copy.write_text(default_urdf_path().read_text())
    kin = Kinematics(copy)
    assert kin.urdf_path == Path(copy)
    np.testing.assert_allclose(kin.fk(np.zeros(6))[0], REFERENCE_POSES[0][1], atol=1e-4)
