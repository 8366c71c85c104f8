import numpy as np
import pytest

from so101_driver.vision.image_messages import (
    ImageConversionError,
    array_to_image_msg,
    image_msg_to_array,
    pinhole_camera_info,
)


@pytest.mark.parametrize(("encoding", "shape"), [("rgb8", (48, 64, 3)), ("bgr8", (48, 64, 3)), ("mono8", (48, 64))])
def test_round_trip_is_exact(encoding, shape):
    array = np.random.default_rng(1).integers(0, 256, shape, dtype=np.uint8)
    msg = array_to_image_msg(array, encoding, frame_id="cam")
    assert (msg.width, msg.height, msg.encoding, msg.header.frame_id) == (64, 48, encoding, "cam")
    np.testing.assert_array_equal(image_msg_to_array(msg), array)


def test_padded_rows_are_read_correctly():
    array = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    msg = array_to_image_msg(array)
    padded = bytearray()
    for row in range(2):
        padded += bytes(msg.data[row * 9 : (row + 1) * 9]) + b"\xff\xff\xff"
    msg.step, msg.data = 12, bytes(padded)
    np.testing.assert_array_equal(image_msg_to_array(msg), array)


def test_bad_input_is_named():
    with pytest.raises(ImageConversionError, match="unsupported encoding"):
        array_to_image_msg(np.zeros((2, 2, 3), np.uint8), "yuv422")
    msg = array_to_image_msg(np.zeros((4, 4, 3), np.uint8))
    msg.data = bytes(msg.data)[:10]
    with pytest.raises(ImageConversionError, match="needs step"):
        image_msg_to_array(msg)


def test_camera_info_matrices():
    info = pinhole_camera_info(640, 480, 339.6, 339.6, 320.0, 240.0, "wrist_camera_optical_frame")
    assert list(info.k) == [339.6, 0.0, 320.0, 0.0, 339.6, 240.0, 0.0, 0.0, 1.0]
    assert info.p[3] == 0.0 and info.p[0] == 339.6 and info.header.frame_id == "wrist_camera_optical_frame"
