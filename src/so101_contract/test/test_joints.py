import numpy as np

from so101_contract.joints import JOINT_NAMES, positions_by_name


def test_matched_by_name_not_by_index():
    names = list(reversed(JOINT_NAMES))
    q, missing = positions_by_name(names, [6.0, 5.0, 4.0, 3.0, 2.0, 1.0])
    np.testing.assert_array_equal(q, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    assert missing == []


def test_missing_nan_and_length_mismatch_are_named():
    assert positions_by_name(list(JOINT_NAMES[:5]), [0.0] * 5) == (None, ["gripper"])
    q, bad = positions_by_name(list(JOINT_NAMES), [0.0, float("nan"), 0.0, 0.0, 0.0, 0.0])
    assert q is None and bad == ["shoulder_lift"]
    assert positions_by_name(list(JOINT_NAMES), [0.0] * 5)[0] is None
