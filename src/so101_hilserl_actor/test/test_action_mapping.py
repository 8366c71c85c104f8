import numpy as np
import pytest

from so101_driver.kinematics import HOME_SEED, Kinematics
from so101_hilserl_actor.action_mapping import (
    GRIPPER,
    ActionConfig,
    human_action_from_joints,
    policy_action_to_joints,
    quantise_gripper,
)

CFG = ActionConfig()


@pytest.fixture(scope="module")
def kin():
    return Kinematics()


@pytest.fixture
def home():
    q = HOME_SEED.copy()
    q[GRIPPER] = 0.5
    return q


def _tcp(kin, q):
    return kin.fk(q)[0]


def _reach(kin, q0, target):
    q, error = kin.solve_ik(q0, target, tol=1e-6, max_iters=500)
    assert error < 1e-5
    return q


def test_defaults_are_the_seed_system_in_si():
    assert CFG.step_m == 0.02
    assert CFG.workspace_min == (0.10, -0.15, -0.02) and CFG.workspace_max == (0.35, 0.15, 0.25)
    assert CFG.ik_damping == 0.1 and CFG.ik_max_step_rad == 0.5
    assert CFG.gripper_quantisation_threshold == 0.3


@pytest.mark.parametrize("axis", [0, 1, 2])
@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_each_axis_moves_the_tcp_that_way_by_about_step_m(kin, home, axis, sign):
    action = np.zeros(4)
    action[axis] = sign * 0.5
    q_target = policy_action_to_joints(action, home, kin, CFG)
    moved = _tcp(kin, q_target) - _tcp(kin, home)
    # One DLS step (damping 0.1) covers most (~80 %) of a 1 cm request, never more; other axes barely move.
    assert 0.006 < sign * moved[axis] <= 0.0105
    assert np.linalg.norm(np.delete(moved, axis)) < 0.002
    assert q_target[GRIPPER] == home[GRIPPER]


def test_zero_action_holds_the_pose(kin, home):
    q_target = policy_action_to_joints(np.zeros(4), home, kin, CFG)
    np.testing.assert_allclose(q_target, home, atol=1e-9)


def test_action_is_clipped_to_unit_range(kin, home):
    big = policy_action_to_joints(np.array([5.0, 0, 0, 0]), home, kin, CFG)
    unit = policy_action_to_joints(np.array([1.0, 0, 0, 0]), home, kin, CFG)
    np.testing.assert_allclose(big, unit)


def test_target_is_clipped_to_the_workspace_box(kin):
    # Put the TCP 5 mm above the workspace floor; asking to go 2 cm down may only reach the floor (-0.02 m).
    q = _reach(kin, HOME_SEED, [0.25, 0.0, -0.015])
    q_target = policy_action_to_joints(np.array([0.0, 0.0, -1.0, 0.0]), q, kin, CFG)
    z = _tcp(kin, q_target)[2]
    assert z >= -0.0205
    assert z < -0.015  # it did move down, but only to the box
    # And the same for the x max face, from 5 mm inside.
    q = _reach(kin, HOME_SEED, [0.345, 0.0, 0.07])
    x = _tcp(kin, policy_action_to_joints(np.array([1.0, 0, 0, 0]), q, kin, CFG))[0]
    assert 0.345 < x <= 0.3505
    # Outside the box already: the step pulls it back in rather than further out.
    q = _reach(kin, HOME_SEED, [0.25, 0.17, 0.07])
    y = _tcp(kin, policy_action_to_joints(np.array([0.0, 1.0, 0, 0]), q, kin, CFG))[1]
    assert y < 0.17


def test_per_step_joint_change_is_clamped(kin, home):
    tight = ActionConfig(max_joint_step_rad=0.01)
    q_target = policy_action_to_joints(np.array([1.0, 1.0, 1.0, 1.0]), home, kin, tight)
    change = np.abs(q_target - home)
    assert change.max() <= 0.01 + 1e-12
    assert change.max() == pytest.approx(0.01)  # the clamp was active, not a no-op
    assert change[GRIPPER] == pytest.approx(0.01)


def test_joint_limits_hold(kin):
    q = HOME_SEED.copy()
    q[3] = kin.upper[3]  # wrist_flex at its limit
    q[GRIPPER] = kin.upper[GRIPPER]
    for action in np.random.default_rng(0).uniform(-1, 1, (20, 4)):
        q_target = policy_action_to_joints(action, q, kin, CFG)
        assert np.all(q_target >= kin.lower - 1e-12) and np.all(q_target <= kin.upper + 1e-12)


def test_gripper_semantics_open_close_hold_and_range(kin, home):
    step = CFG.gripper_step_rad
    assert policy_action_to_joints(np.array([0, 0, 0, 1.0]), home, kin, CFG)[GRIPPER] == pytest.approx(0.5 + step)
    assert policy_action_to_joints(np.array([0, 0, 0, -1.0]), home, kin, CFG)[GRIPPER] == pytest.approx(0.5 - step)
    assert policy_action_to_joints(np.array([0, 0, 0, 0.5]), home, kin, CFG)[GRIPPER] == pytest.approx(0.5 + 0.5 * step)
    assert policy_action_to_joints(np.array([0, 0, 0, 0.0]), home, kin, CFG)[GRIPPER] == 0.5
    nearly_open, nearly_closed = home.copy(), home.copy()
    nearly_open[GRIPPER], nearly_closed[GRIPPER] = CFG.gripper_range[1] - 0.05, CFG.gripper_range[0] + 0.05
    assert policy_action_to_joints(np.array([0, 0, 0, 1.0]), nearly_open, kin, CFG)[GRIPPER] == CFG.gripper_range[1]
    assert policy_action_to_joints(np.array([0, 0, 0, -1.0]), nearly_closed, kin, CFG)[GRIPPER] == CFG.gripper_range[0]


def test_bad_inputs_are_refused(kin, home):
    with pytest.raises(ValueError, match="4 finite"):
        policy_action_to_joints(np.zeros(3), home, kin, CFG)
    with pytest.raises(ValueError, match="4 finite"):
        policy_action_to_joints(np.array([np.nan, 0, 0, 0]), home, kin, CFG)
    with pytest.raises(ValueError, match="not in radians"):
        policy_action_to_joints(np.zeros(4), np.degrees(home) + 10.0, kin, CFG)
    with pytest.raises(ValueError, match="workspace_min"):
        ActionConfig(workspace_min=(0.4, -0.15, -0.02))
    with pytest.raises(ValueError, match="metres"):
        ActionConfig(step_m=2.0)  # centimetres by mistake


def test_human_action_is_in_action_units_of_metres(kin, home):
    """A leader 1 cm ahead in x and 0.5 cm to the left gives (0.5, 0.25, 0): metres / step_m, not degrees."""
    target = _tcp(kin, home) + np.array([0.01, 0.005, 0.0])
    leader = _reach(kin, home, target)
    action = human_action_from_joints(home, leader, leader[GRIPPER], kin, CFG)
    assert action.dtype == np.float32 and action.shape == (4,)
    np.testing.assert_allclose(action, [0.5, 0.25, 0.0, 0.0], atol=0.02)


def test_human_action_saturates_and_is_not_zero_for_a_real_motion(kin, home):
    leader = _reach(kin, home, _tcp(kin, home) + np.array([-0.05, 0.0, 0.04]))
    action = human_action_from_joints(home, leader, leader[GRIPPER], kin, CFG)
    np.testing.assert_allclose(action[:3], [-1.0, 0.0, 1.0], atol=0.02)
    # A joint-space motion that moves the TCP a few mm must show up (not be lost to a zero default).
    leader = home.copy()
    leader[0] += 0.02  # shoulder_pan 0.02 rad: ~4 mm sideways at 21 cm from the pan axis
    action = human_action_from_joints(home, leader, leader[GRIPPER], kin, CFG)
    expected = (_tcp(kin, leader) - _tcp(kin, home)) / CFG.step_m
    assert abs(expected[1]) > 0.15
    np.testing.assert_allclose(action[:3], expected, atol=1e-6)


def test_human_action_degrees_mistake_is_caught(kin, home):
    leader = home.copy()
    leader[0] += 0.02
    with pytest.raises(ValueError, match="not in radians"):
        human_action_from_joints(np.degrees(home), np.degrees(leader), np.degrees(leader[GRIPPER]), kin, CFG)
    with pytest.raises(ValueError, match="jaw angle in radians"):
        human_action_from_joints(home, leader, 50.0, kin, CFG)  # a 0..100 gripper value


def test_human_gripper_is_quantised(kin, home):
    step, thr = CFG.gripper_step_rad, CFG.gripper_quantisation_threshold
    for delta, expected in [
        (0.0, 0.0),
        (0.9 * thr * step, 0.0),
        (-0.9 * thr * step, 0.0),
        (1.1 * thr * step, 1.0),
        (-1.1 * thr * step, -1.0),
        (0.4, 1.0),
        (-0.4, -1.0),
    ]:
        leader = home.copy()
        leader[GRIPPER] = home[GRIPPER] + delta
        action = human_action_from_joints(home, leader, home[GRIPPER], kin, CFG)
        assert action[3] == expected, delta
    assert quantise_gripper(0.2, CFG) == 1.0 and quantise_gripper(-0.2, CFG) == -1.0
    # The follower's own jaw does not matter, only the leader's change since the previous step.
    follower = home.copy()
    follower[GRIPPER] = 0.0
    assert human_action_from_joints(follower, home, home[GRIPPER], kin, CFG)[3] == 0.0


@pytest.mark.parametrize("offset", [[0.015, 0.0, 0.0], [0.0, -0.012, 0.008], [-0.03, 0.02, -0.02]])
def test_round_trip_human_action_moves_toward_the_leader(kin, home, offset):
    leader = _reach(kin, home, _tcp(kin, home) + np.array(offset))
    leader[GRIPPER] = home[GRIPPER] - 0.2  # the human closes the jaw
    action = human_action_from_joints(home, leader, home[GRIPPER], kin, CFG)
    q_next = policy_action_to_joints(action, home, kin, CFG)
    before = np.linalg.norm(_tcp(kin, leader) - _tcp(kin, home))
    after = np.linalg.norm(_tcp(kin, leader) - _tcp(kin, q_next))
    assert after < 0.5 * before
    assert action[3] == -1.0 and q_next[GRIPPER] < home[GRIPPER]
