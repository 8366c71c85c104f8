import numpy as np
import pytest

from so101_driver.image_messages import array_to_image_msg
from so101_driver.kinematics import HOME_SEED, Kinematics
from so101_driver.preprocessing import ImagePreprocessing
from so101_hilserl_actor.observation import FrameStack, StateBuilder, preprocess
from so101_hilserl_actor.state_vector import EE_EULER_ZYX, EE_POSITION, JOINT_POSITIONS, JOINT_VELOCITIES, STATE_DIM


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
    position, euler = kin.ee_pose(HOME_SEED)
    np.testing.assert_allclose(state[EE_POSITION], position, atol=1e-6)
    np.testing.assert_allclose(state[EE_EULER_ZYX], euler, atol=1e-6)
    assert np.all(np.abs(state[EE_EULER_ZYX]) <= np.pi + 1e-6)  # radians


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
