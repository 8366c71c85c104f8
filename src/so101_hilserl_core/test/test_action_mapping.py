import numpy as np
import pytest

from so101_contract.joints import GRIPPER
from so101_driver.model.kinematics import HOME_SEED, Kinematics
from so101_hilserl_core.action_mapping import (
    ActionConfig,
    HumanActionEncoder,
    PolicyActionMapper,
    absolute_gripper_command,
    absolute_gripper_position,
    policy_action_to_joints,
)
from so101_hilserl_core.policy import PolicyConfig
from so101_hilserl_core.semantics import ABSOLUTE_GRIPPER_RANGE, PICK101_SEMANTICS

CFG = ActionConfig()
# The jaw free over pick-101's whole range and no per-step limit: the gripper mapping shows undisturbed.
WIDE = ActionConfig(gripper_range=ABSOLUTE_GRIPPER_RANGE, max_joint_step=5.0)
PROJECT = PolicyConfig()
PICK101 = PolicyConfig(**PICK101_SEMANTICS)


def _mapper(kin, ee_target="reread", gripper_action="delta", config=CFG):
    return PolicyActionMapper(kin, {"gripper_action": gripper_action, "ee_target": ee_target}, config)


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
    tight = ActionConfig(max_joint_step=0.01)
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


def _human(kin, leader, follower, semantics=PROJECT, config=CFG):
    return HumanActionEncoder(kin, semantics, config).encode(leader, follower)


def test_human_action_is_in_action_units_of_metres(kin, home):
    """A leader 1 cm ahead in x and 0.5 cm to the left gives (0.5, 0.25, 0): metres / step_m, not degrees."""
    target = _tcp(kin, home) + np.array([0.01, 0.005, 0.0])
    leader = _reach(kin, home, target)
    leader[GRIPPER] = home[GRIPPER]
    action = _human(kin, leader, home)
    assert action.dtype == np.float32 and action.shape == (4,)
    np.testing.assert_allclose(action, [0.5, 0.25, 0.0, 0.0], atol=0.02)


def test_human_action_saturates_and_is_not_zero_for_a_real_motion(kin, home):
    leader = _reach(kin, home, _tcp(kin, home) + np.array([-0.05, 0.0, 0.04]))
    action = _human(kin, leader, home)
    np.testing.assert_allclose(action[:3], [-1.0, 0.0, 1.0], atol=0.02)
    # A joint-space motion that moves the TCP a few mm must show up (not be lost to a zero default).
    leader = home.copy()
    leader[0] += 0.02  # shoulder_pan 0.02 rad: ~4 mm sideways at 21 cm from the pan axis
    action = _human(kin, leader, home)
    expected = (_tcp(kin, leader) - _tcp(kin, home)) / CFG.step_m
    assert abs(expected[1]) > 0.15
    np.testing.assert_allclose(action[:3], expected, atol=1e-6)


def test_human_action_degrees_mistake_is_caught(kin, home):
    leader = home.copy()
    leader[0] += 0.02
    with pytest.raises(ValueError, match="not in radians"):
        _human(kin, np.degrees(leader), home)
    with pytest.raises(ValueError, match="not in radians"):
        _human(kin, leader, np.degrees(home))


def test_human_gripper_is_the_commanded_jaw_change(kin, home):
    """The delta gripper label is the change toward the leader's jaw, in action units: a person closing the jaw
    stores a closing action, and the mapper then commands the leader's jaw (within one step)."""
    step = CFG.gripper_step_rad
    for delta, expected in [(0.0, 0.0), (0.1, 0.1 / step), (-0.15, -0.15 / step), (0.4, 1.0), (-0.5, -1.0)]:
        leader = home.copy()
        leader[GRIPPER] = home[GRIPPER] + delta
        action = _human(kin, leader, home)
        assert action[3] == pytest.approx(expected, abs=1e-6), delta
        jaw = policy_action_to_joints(action, home, kin, CFG)[GRIPPER]
        assert jaw == pytest.approx(home[GRIPPER] + float(np.clip(delta, -step, step)), abs=1e-6)
    # The label is relative to the follower's jaw: a leader at the follower's jaw commands nothing.
    follower = home.copy()
    follower[GRIPPER] = 0.2
    leader = home.copy()
    leader[GRIPPER] = 0.2
    assert _human(kin, leader, follower)[3] == 0.0
    assert _human(kin, home, follower)[3] == 1.0  # leader 0.3 rad more open than the follower: open one full step


@pytest.mark.parametrize("offset", [[0.015, 0.0, 0.0], [0.0, -0.012, 0.008], [-0.03, 0.02, -0.02]])
def test_round_trip_human_action_moves_toward_the_leader(kin, home, offset):
    leader = _reach(kin, home, _tcp(kin, home) + np.array(offset))
    leader[GRIPPER] = home[GRIPPER] - 0.2  # the human closes the jaw
    action = _human(kin, leader, home)
    q_next = policy_action_to_joints(action, home, kin, CFG)
    before = np.linalg.norm(_tcp(kin, leader) - _tcp(kin, home))
    after = np.linalg.norm(_tcp(kin, leader) - _tcp(kin, q_next))
    assert after < 0.5 * before
    assert action[3] < 0 and q_next[GRIPPER] == pytest.approx(leader[GRIPPER], abs=1e-6)


def test_a_far_leader_is_approached_one_step_at_a_time(kin, home):
    """The follower converges on a leader far away and never jumps: each step moves the TCP at most step_m per
    axis (plus the IK step's error) and the distance shrinks every step."""
    leader = _reach(kin, home, _tcp(kin, home) + np.array([0.08, -0.06, 0.05]))
    q = home.copy()
    distance = np.linalg.norm(_tcp(kin, leader) - _tcp(kin, q))
    for _ in range(15):
        q_next = policy_action_to_joints(_human(kin, leader, q), q, kin, CFG)
        assert np.all(np.abs(_tcp(kin, q_next) - _tcp(kin, q)) <= CFG.step_m * 1.1)
        assert np.all(np.abs(q_next - q) <= CFG.max_joint_step + 1e-12)
        new_distance = np.linalg.norm(_tcp(kin, leader) - _tcp(kin, q_next))
        assert new_distance < distance or new_distance < 0.002
        q, distance = q_next, new_distance
    assert distance < 0.005


# ------------------------------------------------------------------------- the policy's semantics, applied


def test_mapper_with_project_semantics_is_policy_action_to_joints(kin, home):
    mapper = PolicyActionMapper(kin, PROJECT)
    assert (mapper.gripper_action, mapper.ee_target) == ("delta", "reread")
    rng = np.random.default_rng(3)
    q = home.copy()
    for _ in range(5):  # stateless: no reset needed, each step from the read joints
        action = rng.uniform(-1, 1, 4)
        expected = policy_action_to_joints(action, q, kin, CFG)
        q_target = mapper.to_joints(action, q)
        np.testing.assert_array_equal(q_target, expected)
        q = q_target


def test_accumulated_target_remembers_what_the_arm_did_not_reach(kin, home):
    """The arm is held (it reads the same joints every step): a re-read target asks for the same 2 cm again each
    step and a zero action holds; an accumulated target keeps growing by 2 cm per +x step, and a zero action keeps
    pulling toward where the policy last sent it."""
    reread, accumulate = _mapper(kin, "reread"), _mapper(kin, "accumulate")
    for mapper in (reread, accumulate):
        mapper.reset(home)
    tcp0 = _tcp(kin, home)
    np.testing.assert_allclose(accumulate.target, tcp0)
    plus_x, zero = np.array([1.0, 0, 0, 0]), np.zeros(4)
    first_reread, first_accumulate = reread.to_joints(plus_x, home), accumulate.to_joints(plus_x, home)
    np.testing.assert_allclose(first_reread, first_accumulate)  # the same first step from the same pose
    np.testing.assert_allclose(reread.to_joints(plus_x, home), first_reread)  # re-read: the same request again
    second = accumulate.to_joints(plus_x, home)
    np.testing.assert_allclose(accumulate.target, tcp0 + np.array([0.04, 0, 0]), atol=1e-12)
    assert _tcp(kin, second)[0] > _tcp(kin, first_accumulate)[0] + 0.005  # asks for 4 cm now
    np.testing.assert_array_equal(reread.to_joints(zero, home), home)  # re-read: zero action holds
    held = accumulate.to_joints(zero, home)
    np.testing.assert_allclose(held, second)  # accumulated: still pulling toward +4 cm
    np.testing.assert_allclose(accumulate.target, tcp0 + np.array([0.04, 0, 0]), atol=1e-12)


@pytest.mark.parametrize("direction", [[1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0], [0, -0.5, -0.5]])
def test_an_arm_that_follows_lags_with_reread_and_catches_up_with_accumulate(kin, home, direction):
    """The arm reaches each joint target: one damped IK step falls short every step, and a re-read target builds
    on where the arm got to, so its error adds up; an accumulated target asks for the remaining error again."""
    action = np.array([*direction, 0.0])
    goal = _tcp(kin, home) + 5 * CFG.step_m * np.array(direction)
    errors = {}
    for ee_target in ("reread", "accumulate"):
        mapper = _mapper(kin, ee_target)
        mapper.reset(home)
        q = home.copy()
        for _ in range(5):
            q = mapper.to_joints(action, q)
        errors[ee_target] = np.linalg.norm(_tcp(kin, q) - goal)
    np.testing.assert_allclose(mapper.target, goal, atol=1e-12)
    assert errors["accumulate"] < 0.5 * errors["reread"], errors


def test_accumulated_target_stays_in_the_box_and_restarts_at_reset(kin, home):
    mapper = _mapper(kin, "accumulate")
    mapper.reset(home)
    for _ in range(30):  # far beyond the box: the target stops at its face, it does not wind up
        mapper.to_joints(np.array([1.0, 0, 1.0, 0]), home)
    assert mapper.target[0] == CFG.workspace_max[0] and mapper.target[2] == CFG.workspace_max[2]
    mapper.to_joints(np.array([-1.0, 0, 0, 0]), home)
    assert mapper.target[0] == pytest.approx(CFG.workspace_max[0] - CFG.step_m)
    moved = _reach(kin, home, _tcp(kin, home) + np.array([-0.03, 0.02, 0.01]))
    mapper.reset(moved)  # episode start or an intervention step
    np.testing.assert_allclose(mapper.target, _tcp(kin, moved))
    np.testing.assert_allclose(mapper.to_joints(np.zeros(4), moved)[:GRIPPER], moved[:GRIPPER], atol=1e-9)


def test_accumulate_needs_a_reset_and_semantics_are_checked(kin, home):
    with pytest.raises(RuntimeError, match="before reset"):
        _mapper(kin, "accumulate").to_joints(np.zeros(4), home)
    with pytest.raises(ValueError, match=r"PolicyConfig.ee_target must be one of reread, accumulate; got 'reread '"):
        _mapper(kin, "reread ")
    with pytest.raises(ValueError, match=r"PolicyConfig.gripper_action must be one of delta, absolute; got None"):
        HumanActionEncoder(kin, {})


def test_absolute_gripper_is_pick101s_linear_map_and_ignores_the_read_jaw(kin, home):
    lo, hi = ABSOLUTE_GRIPPER_RANGE
    assert (lo, hi) == (-0.1745, 1.7453)
    for command, jaw in [(-1.0, lo), (1.0, hi), (0.0, (lo + hi) / 2), (0.5, lo + 0.75 * (hi - lo)), (3.0, hi)]:
        assert absolute_gripper_position(command) == pytest.approx(jaw)
        assert absolute_gripper_command(jaw) == pytest.approx(min(command, 1.0))
    absolute, delta = _mapper(kin, gripper_action="absolute", config=WIDE), _mapper(kin, config=WIDE)
    for read_jaw in (0.0, 0.5, 1.5):
        q = home.copy()
        q[GRIPPER] = read_jaw
        for command in (-1.0, -0.2, 0.0, 0.7, 1.0):
            action = np.array([0, 0, 0, command])
            assert absolute.to_joints(action, q)[GRIPPER] == pytest.approx(absolute_gripper_position(command))
            expected_delta = np.clip(read_jaw + command * WIDE.gripper_step_rad, lo, hi)
            assert delta.to_joints(action, q)[GRIPPER] == pytest.approx(expected_delta)
    # zero is "hold" for a delta policy but "half open" (0.785 rad) for an absolute one
    assert absolute.to_joints(np.zeros(4), home)[GRIPPER] == pytest.approx(0.78540, abs=1e-5)
    assert delta.to_joints(np.zeros(4), home)[GRIPPER] == home[GRIPPER]


def test_absolute_gripper_keeps_the_robots_jaw_range_and_rate_limit(kin, home):
    mapper = PolicyActionMapper(kin, PICK101)  # default ActionConfig: jaw 0..1 rad, 0.3 rad per step
    q = home.copy()
    q[GRIPPER] = 0.9
    assert mapper.gripper_action == "absolute" and mapper.ee_target == "accumulate"
    mapper.reset(q)
    assert mapper.to_joints(np.array([0, 0, 0, 1.0]), q)[GRIPPER] == CFG.gripper_range[1]
    assert mapper.to_joints(np.array([0, 0, 0, -1.0]), q)[GRIPPER] == pytest.approx(0.9 - CFG.max_joint_step)


# ------------------------------------------------------------------------- the human's action, encoded


@pytest.mark.parametrize("semantics", [PROJECT, PICK101], ids=["project", "pick101"])
@pytest.mark.parametrize("offset", [[0.012, 0.0, 0.0], [0.0, -0.01, 0.008], [-0.006, 0.009, -0.012]])
def test_human_action_decoded_by_the_mapper_reproduces_the_leaders_motion(kin, home, semantics, offset):
    """Encoded under the policy's semantics, then applied by the policy's mapper from the follower's pose: the TCP
    moves the way the leader's is offset (sign and scale: the mapper undoes the encoder's 1/step_m) and the jaw
    follows the leader's."""
    follower = home.copy()
    leader = _reach(kin, home, _tcp(kin, home) + np.array(offset))
    leader[GRIPPER] = home[GRIPPER] + 0.25  # the human opens the jaw
    encoder = HumanActionEncoder(kin, semantics, WIDE)
    mapper = PolicyActionMapper(kin, semantics, WIDE)
    action = encoder.encode(leader, follower)
    assert action.dtype == np.float32 and np.all(np.abs(action) <= 1.0)
    np.testing.assert_allclose(action[:3] * WIDE.step_m, offset, atol=1e-6)  # the offset is within one step
    mapper.reset(follower)  # intervention steps re-anchor an accumulated target at the follower
    q_next = mapper.to_joints(action, follower)
    moved = _tcp(kin, q_next) - _tcp(kin, follower)
    along = moved @ np.array(offset) / np.linalg.norm(offset)
    assert 0.6 * np.linalg.norm(offset) < along < 1.2 * np.linalg.norm(offset)
    assert np.linalg.norm(moved - np.array(offset)) < 0.45 * np.linalg.norm(offset)
    if semantics.gripper_action == "absolute":
        assert action[3] == pytest.approx(absolute_gripper_command(leader[GRIPPER]))
        assert q_next[GRIPPER] == pytest.approx(leader[GRIPPER], abs=1e-6)
    else:
        assert action[3] == pytest.approx(0.25 / WIDE.gripper_step_rad)
        assert q_next[GRIPPER] == pytest.approx(leader[GRIPPER], abs=1e-6)
