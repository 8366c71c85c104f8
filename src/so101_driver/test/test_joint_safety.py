import numpy as np
import pytest

from so101_contract.joints import JOINT_NAMES
from so101_driver.model.joint_safety import JointCommandGuard

LOWER = np.array([-1.9, -1.7, -1.7, -1.6, -2.7, -0.17])
UPPER = np.array([1.9, 1.7, 1.7, 1.6, 2.8, 1.7])


def guard(**kwargs):
    return JointCommandGuard(JOINT_NAMES, LOWER, UPPER, **kwargs)


def test_in_range_command_passes_through_by_name():
    g, measured = guard(max_step=0.5), np.zeros(6)
    result = g.apply(["gripper", "shoulder_pan"], [0.3, -0.2], measured, now=0.0)
    np.testing.assert_allclose(result.target, [-0.2, 0, 0, 0, 0, 0.3])
    assert result.clamped_joints == () and not result.rejected


def test_limits_and_max_step_clamp_and_are_reported():
    g = guard(max_step=0.2)
    measured = np.array([1.8, 0, 0, 0, 0, 0])
    result = g.apply(list(JOINT_NAMES), [3.0, 57.3, 0.1, 0, 0, 0], measured, now=0.0)  # degrees sent as radians
    np.testing.assert_allclose(result.target, [1.9, 0.2, 0.1, 0, 0, 0])
    assert set(result.clamped_joints) == {"shoulder_pan", "shoulder_lift"}
    assert (result.target <= UPPER).all() and (np.abs(result.target - measured) <= 0.2 + 1e-12).all()


def test_unnamed_joints_keep_their_previous_target():
    g = guard(max_step=1.0)
    g.apply(list(JOINT_NAMES), [0.1, 0.2, 0.3, 0.4, 0.5, 0.6], np.zeros(6), now=0.0)
    result = g.apply(["elbow_flex"], [-0.3], np.zeros(6), now=0.1)
    np.testing.assert_allclose(result.target, [0.1, 0.2, -0.3, 0.4, 0.5, 0.6])


@pytest.mark.parametrize(
    ("names", "positions", "reason"),
    [
        (["elbow"], [0.1], "unknown joint"),
        (["elbow_flex"], [float("nan")], "non-finite"),
        (["elbow_flex", "gripper"], [0.1], "2 names but 1 positions"),
    ],
)
def test_bad_commands_are_rejected_whole(names, positions, reason):
    g = guard()
    result = g.apply(names, positions, np.zeros(6), now=0.0)
    assert result.target is None and reason in result.rejected and g.rejected == 1


def test_watchdog_holds_once_after_timeout_and_next_command_resumes():
    g = guard(timeout_s=0.5, max_step=1.0)
    assert g.check_watchdog(np.zeros(6), now=10.0) is None  # never commanded: nothing to hold
    g.apply(["shoulder_pan"], [0.5], np.zeros(6), now=0.0)
    assert g.check_watchdog(np.full(6, 0.1), now=0.4) is None
    hold = g.check_watchdog(np.full(6, 0.1), now=0.6)
    np.testing.assert_allclose(hold, np.full(6, 0.1))  # where the arm is, not where it was going
    assert g.holding and g.check_watchdog(np.full(6, 0.1), now=0.7) is None
    result = g.apply(["elbow_flex"], [0.2], np.full(6, 0.1), now=0.8)
    np.testing.assert_allclose(result.target, [0.1, 0.1, 0.2, 0.1, 0.1, 0.1])  # resumes from the hold pose
    assert not g.holding
