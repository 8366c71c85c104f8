import numpy as np
import pytest

from so101_driver.vision.preprocessing import DEFAULT_PREPROCESSING, ImagePreprocessing, PreprocessingError


def test_default_is_the_centre_square_of_640x480_to_84():
    frame = np.zeros((480, 640, 3), np.uint8)
    frame[:, :80] = 255  # left margin, outside the crop
    frame[:, 560:] = 255  # right margin, outside the crop
    out = DEFAULT_PREPROCESSING.apply(frame)
    assert out.shape == (84, 84, 3) and out.dtype == np.uint8
    assert out.max() == 0  # nothing of the margins leaks in


def test_area_resize_averages_and_keeps_uint8_scale():
    frame = np.zeros((480, 640, 3), np.uint8)
    frame[:, 80:320] = 200  # left half of the crop box
    out = DEFAULT_PREPROCESSING.apply(frame)
    assert (out[:, :42] == 200).all() and (out[:, 42:] == 0).all()  # no [0, 1] scaling, no blur across the edge

    frame[:] = 0
    frame[:, 80:83] = 200  # a 3 px stripe: one output pixel covers 480 / 84 = 5.71 px of it
    out = DEFAULT_PREPROCESSING.apply(frame)
    assert abs(int(out[0, 0, 0]) - round(3 * 200 / (480 / 84))) <= 1  # INTER_AREA averages; LINEAR would sample


def test_bgr_input_becomes_rgb():
    frame = np.zeros((480, 640, 3), np.uint8)
    frame[..., 0] = 255  # blue in BGR
    out = DEFAULT_PREPROCESSING.apply(frame, encoding="bgr8")
    assert (out[..., 2] == 255).all() and (out[..., :2] == 0).all()


def test_wrong_resolution_names_the_fix():
    with pytest.raises(PreprocessingError, match="1280x720.*640x480"):
        DEFAULT_PREPROCESSING.apply(np.zeros((720, 1280, 3), np.uint8))


def test_crop_outside_the_frame_is_refused():
    with pytest.raises(PreprocessingError, match="does not fit"):
        ImagePreprocessing(crop_x=200, crop_width=480)


def test_round_trip_through_dict_and_unknown_field():
    config = ImagePreprocessing(crop_x=40, output_size=64)
    assert ImagePreprocessing.from_dict(config.to_dict()) == config
    with pytest.raises(PreprocessingError, match="unknown"):
        ImagePreprocessing.from_dict({**config.to_dict(), "interpolation": "linear"})


def test_node_parameter_changes_fields_from_the_default_and_names_bad_values():
    assert ImagePreprocessing.from_parameter("") == ImagePreprocessing()
    assert ImagePreprocessing.from_parameter('{"crop_x": 40}') == ImagePreprocessing(crop_x=40)
    with pytest.raises(PreprocessingError, match="preprocessing=.*not JSON"):
        ImagePreprocessing.from_parameter("{crop_x: 40")
    with pytest.raises(PreprocessingError, match="unknown preprocessing field"):
        ImagePreprocessing.from_parameter('{"crop": 40}')
    with pytest.raises(PreprocessingError, match="JSON object"):
        ImagePreprocessing.from_parameter("[1, 2]")
