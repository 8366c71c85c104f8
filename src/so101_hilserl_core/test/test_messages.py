import numpy as np
import pytest

from so101_hilserl_core.messages import (
    MessageFormatError,
    check_transition,
    observation_from_msg,
    observation_to_msg,
)
from so101_hilserl_interfaces.msg import Observation, Transition


def _image(size=84, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)


def test_observation_round_trip_is_exact():
    image, state = _image(), np.linspace(-1, 1, 18, dtype=np.float32)
    image_back, state_back = observation_from_msg(observation_to_msg(image, state), expected_size=84)
    np.testing.assert_array_equal(image_back, image)
    np.testing.assert_array_equal(state_back, state)


def test_wrong_size_names_the_mismatch():
    msg = observation_to_msg(_image(64), np.zeros(18))
    with pytest.raises(MessageFormatError, match="64x64, expected 84x84"):
        observation_from_msg(msg, expected_size=84)


def test_truncated_pixels_and_bad_state_are_refused():
    msg = observation_to_msg(_image(), np.zeros(18))
    msg.image.data = bytes(msg.image.data)[:-3]
    with pytest.raises(MessageFormatError, match="image.data has"):
        observation_from_msg(msg)
    msg = observation_to_msg(_image(), np.zeros(18))
    msg.state[7] = float("nan")
    with pytest.raises(MessageFormatError, match=r"non-finite values at indices \[7\]"):
        observation_from_msg(msg)


def test_bgr_is_refused():
    msg = observation_to_msg(_image(), np.zeros(18))
    msg.image.encoding = "bgr8"
    with pytest.raises(MessageFormatError, match="encoding"):
        observation_from_msg(msg)


def test_transition_checks():
    msg = Transition(action=[0.1, -0.2, 1.0, -1.0], reward=-0.05)
    check_transition(msg)
    msg.action = [0.0, 0.0, 1.5, 0.0]
    with pytest.raises(MessageFormatError, match=r"\[-1, 1\]"):
        check_transition(msg)
    msg.action = [0.0, 0.0, 0.0, 0.0]
    msg.truncated = True  # the last step must carry o_{t+1}
    with pytest.raises(MessageFormatError, match="next_observation"):
        check_transition(msg)
    msg.next_observation = [Observation()]
    check_transition(msg)
