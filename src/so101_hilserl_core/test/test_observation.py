import itertools

import numpy as np
import pytest

from so101_contract.state import EE_ORIENTATION, EE_POSITION, JOINT_POSITIONS, JOINT_VELOCITIES, STATE_DIM
from so101_driver.model.kinematics import HOME_SEED, Kinematics
from so101_driver.vision.image_messages import array_to_image_msg
from so101_driver.vision.preprocessing import ImagePreprocessing
from so101_hilserl_core.observation import FrameStack, StateBuilder, preprocess


@pytest.fixture(scope="module")
def kin():
    return Kinematics()


def _frame(value: int) -> np.ndarray:
    """An 84x84 RGB frame whose R, G, B planes hold value, value+1, value+2 (order is visible in the output)."""
    frame = np.empty((84, 84, 3), np.uint8)
    frame[..., 0], frame[..., 1], frame[..., 2] = value, value + 1, value + 2
    return frame


def _state(value: float) -> np.ndarray:
    return np.full(STATE_DIM, value, np.float32)


def test_state_layout_units_and_first_call_velocity(kin):
    builder = StateBuilder(kin, control_period_s=0.1)
    state = builder.build(HOME_SEED)
    assert state.dtype == np.float32 and state.shape == (18,)
    np.testing.assert_allclose(state[JOINT_POSITIONS], HOME_SEED, atol=1e-6)
    np.testing.assert_array_equal(state[JOINT_VELOCITIES], 0.0)
    # HOME_SEED puts the TCP at (0.25, 0, 0.07) m: metres, not millimetres.
    np.testing.assert_allclose(state[EE_POSITION], [0.25, 0.0, 0.07], atol=2e-3)
    position, _ = kin.fk(HOME_SEED)
    np.testing.assert_allclose(state[EE_POSITION], position, atol=1e-6)
    np.testing.assert_allclose(state[EE_ORIENTATION], 0.0, atol=1e-6)  # the project's orientation: 0 at home


def _pick101_euler(rotation: np.ndarray) -> np.ndarray:
    """pick-101's LiftCubeCartesianEnv._rotation_matrix_to_euler (non-singular branch), transcribed."""
    r = rotation
    return np.array(
        [
            np.arctan2(r[2, 1], r[2, 2]),
            np.arctan2(-r[2, 0], np.sqrt(r[0, 0] ** 2 + r[1, 0] ** 2)),
            np.arctan2(r[1, 0], r[0, 0]),
        ]
    )


def _around_home(count: int, scale: float, seed: int = 0) -> np.ndarray:
    return HOME_SEED + np.random.default_rng(seed).uniform(-scale, scale, (count, 6))


def test_raw_euler_reproduces_pick101s_state_with_its_jump_at_home(kin):
    builder = StateBuilder(kin, orientation="euler_zyx")
    poses = _around_home(40, 0.02)
    rolls = []
    for q in [HOME_SEED, *poses]:
        state = builder.build(q)
        np.testing.assert_allclose(state[EE_ORIENTATION], _pick101_euler(kin.fk(q)[1]), atol=1e-6)
        rolls.append(state[EE_ORIENTATION][0])
    # the checkpoints were trained on this: roll at +-pi, flipping sign between neighbouring poses
    assert np.all(np.abs(np.abs(rolls) - np.pi) < 0.1)
    assert min(rolls) < -3.0 and max(rolls) > 3.0


def test_project_orientation_is_continuous_across_the_home_pose(kin):
    """Small joint moves around home give small state changes (the raw euler of the same poses jumps by ~2 pi)."""
    project, raw = StateBuilder(kin), StateBuilder(kin, orientation="euler_zyx")
    poses = _around_home(200, 0.03, seed=1)
    raw_jump = 0.0
    for a, b in itertools.pairwise(poses):
        arm_change = np.abs(b - a)[:5].sum()  # the TCP rotates by at most the sum of the arm joints' changes
        change = project.build(b)[EE_ORIENTATION] - project.build(a)[EE_ORIENTATION]
        assert np.linalg.norm(change) <= 1.05 * arm_change + 1e-6
        raw_jump = max(raw_jump, np.abs(raw.build(b)[EE_ORIENTATION] - raw.build(a)[EE_ORIENTATION]).max())
    assert raw_jump > 6.0  # the same walk through raw euler: the discontinuity this replaces
    # a sweep of the pan joint straight through home changes the state smoothly, step by step
    builder, previous = StateBuilder(kin), None
    for pan in np.linspace(-0.3, 0.3, 61):
        q = HOME_SEED.copy()
        q[0] = pan
        orientation = builder.build(q)[EE_ORIENTATION]
        if previous is not None:
            assert np.linalg.norm(orientation - previous) < 0.011
        previous = orientation


def test_project_orientation_is_a_base_frame_rotation_vector(kin):
    builder = StateBuilder(kin)
    pan, flex = HOME_SEED.copy(), HOME_SEED.copy()
    pan[0] += 0.4  # shoulder_pan turns about -z of base_link
    flex[3] -= 0.7  # wrist_flex turns about +y of base_link (fingers down -> tilted)
    np.testing.assert_allclose(builder.build(pan)[EE_ORIENTATION], [0.0, 0.0, -0.4], atol=1e-4)
    np.testing.assert_allclose(builder.build(flex)[EE_ORIENTATION], [0.0, -0.7, 0.0], atol=1e-3)
    with pytest.raises(ValueError, match="PolicyConfig.orientation must be one of home_rotvec, euler_zyx"):
        StateBuilder(kin, orientation="sin_cos")


def test_velocity_is_finite_difference_at_the_control_period_and_reset_zeroes_it(kin):
    builder = StateBuilder(kin, control_period_s=0.1)
    builder.build(HOME_SEED)
    moved = HOME_SEED + np.array([0.01, -0.02, 0.03, 0.0, 0.05, 0.1])
    state = builder.build(moved)
    np.testing.assert_allclose(state[JOINT_VELOCITIES], [0.1, -0.2, 0.3, 0.0, 0.5, 1.0], rtol=1e-5)  # rad/s
    state = builder.build(moved)
    np.testing.assert_allclose(state[JOINT_VELOCITIES], 0.0, atol=1e-6)
    builder.reset()
    state = builder.build(HOME_SEED)
    np.testing.assert_array_equal(state[JOINT_VELOCITIES], 0.0)  # no difference across episodes

    slow = StateBuilder(kin, control_period_s=0.05)
    slow.build(HOME_SEED)
    np.testing.assert_allclose(slow.build(moved)[JOINT_VELOCITIES][0], 0.2, rtol=1e-5)


def test_state_builder_refuses_bad_input(kin):
    builder = StateBuilder(kin)
    with pytest.raises(ValueError, match="6 joint positions"):
        builder.build(np.zeros(5))
    with pytest.raises(ValueError, match="finite"):
        builder.build(np.array([0, 0, np.nan, 0, 0, 0]))
    with pytest.raises(ValueError, match="control_period_s"):
        StateBuilder(kin, control_period_s=0.0)


def test_frame_stack_is_filled_with_the_first_observation():
    stack = FrameStack(k=3)
    stack.reset(_frame(10), _state(1.0))
    pixels = stack.pixels()
    assert pixels.shape == (9, 84, 84) and pixels.dtype == np.uint8
    np.testing.assert_array_equal(pixels[:, 0, 0], [10, 11, 12] * 3)
    state = stack.state()
    assert state.shape == (54,) and state.dtype == np.float32
    np.testing.assert_array_equal(state, 1.0)


def test_frame_stack_order_is_oldest_to_newest_each_rgb():
    stack = FrameStack(k=3)
    stack.reset(_frame(0), _state(0.0))
    stack.push(_frame(100), _state(1.0))
    np.testing.assert_array_equal(stack.pixels()[:, 5, 7], [0, 1, 2, 0, 1, 2, 100, 101, 102])
    stack.push(_frame(200), _state(2.0))
    stack.push(_frame(50), _state(3.0))
    np.testing.assert_array_equal(stack.pixels()[:, 0, 0], [100, 101, 102, 200, 201, 202, 50, 51, 52])
    np.testing.assert_array_equal(stack.state().reshape(3, 18)[:, 0], [1.0, 2.0, 3.0])
    frame, state = stack.newest()
    np.testing.assert_array_equal(frame, _frame(50))
    np.testing.assert_array_equal(state, 3.0)
    # A new episode forgets the old frames.
    stack.reset(_frame(7), _state(9.0))
    np.testing.assert_array_equal(stack.pixels()[:, 0, 0], [7, 8, 9] * 3)


def test_frame_stack_matches_the_learner_batch_layout():
    """The actor's stack must equal the learner's Batch row for the same frames: each HWC frame transposed to CHW,
    frames concatenated oldest..newest (so101_hilserl_learner.replay.Batch; the learner's tests own the other side)."""
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (5, 84, 84, 3), dtype=np.uint8)
    states = rng.standard_normal((5, 18)).astype(np.float32)
    stack = FrameStack(k=3)
    stack.reset(frames[2], states[2])
    stack.push(frames[3], states[3])
    stack.push(frames[4], states[4])
    # The learner transposes each HWC frame to CHW and concatenates oldest..newest (Batch docstring).
    expected = np.concatenate([frames[i].transpose(2, 0, 1) for i in (2, 3, 4)])
    np.testing.assert_array_equal(stack.pixels(), expected)
    np.testing.assert_array_equal(stack.state(), states[2:5].ravel())


def test_frame_stack_refuses_misuse():
    stack = FrameStack(k=3)
    with pytest.raises(RuntimeError, match="reset"):
        stack.push(_frame(0), _state(0.0))
    with pytest.raises(RuntimeError, match="reset"):
        stack.pixels()
    with pytest.raises(ValueError, match="uint8 HWC"):
        stack.reset(np.zeros((3, 84, 84), np.uint8), _state(0.0))
    with pytest.raises(ValueError, match="uint8 HWC"):
        stack.reset(np.zeros((84, 84, 3), np.float32), _state(0.0))
    with pytest.raises(ValueError, match="18 values"):
        stack.reset(_frame(0), np.zeros(17))


def test_preprocess_message_and_array_give_rgb_84():
    raw_rgb = np.zeros((480, 640, 3), np.uint8)
    raw_rgb[..., 0] = 200  # pure red in RGB
    raw_rgb[:, :80] = 0  # outside the default crop: must not leak in
    pre = ImagePreprocessing()
    out = preprocess(raw_rgb, pre)
    assert out.shape == (84, 84, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(out[..., 0], 200)
    np.testing.assert_array_equal(out[..., 1:], 0)

    raw_bgr = raw_rgb[..., ::-1].copy()
    np.testing.assert_array_equal(preprocess(raw_bgr, pre, encoding="bgr8"), out)
    np.testing.assert_array_equal(preprocess(array_to_image_msg(raw_bgr, "bgr8"), pre), out)
    np.testing.assert_array_equal(preprocess(array_to_image_msg(raw_rgb, "rgb8"), pre), out)
