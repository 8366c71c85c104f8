"""The shared constants agree with each other and with docs/architecture.md's contract."""

from diagnostic_msgs.msg import DiagnosticStatus

from so101_contract import control, diagnostics, joints, state


def test_joint_indices():
    assert joints.JOINT_NAMES[joints.GRIPPER] == "gripper"
    assert joints.NUM_ARM_JOINTS == joints.NUM_JOINTS - 1 and "gripper" not in joints.ARM_JOINT_NAMES


def test_state_layout_covers_the_vector_once():
    covered = []
    for part in (state.JOINT_POSITIONS, state.JOINT_VELOCITIES, state.EE_POSITION, state.EE_ORIENTATION):
        covered += list(range(state.STATE_DIM))[part]
    assert covered == list(range(state.STATE_DIM)) == list(range(18))


def test_control_interface():
    assert control.ACTION_DIM == 4
    assert control.CONTROL_PERIOD_S * control.CONTROL_RATE_HZ == 1.0 and control.CONTROL_RATE_HZ == 10.0


def test_diagnostic_array_holds_one_status_with_text_values():
    stamp = diagnostics.DiagnosticArray().header.stamp
    stamp.sec = 3
    array = diagnostics.diagnostic_array(stamp, "so101 follower bus", 7, diagnostics.WARN, "hot", {"temp": 61})
    (status,) = array.status
    assert array.header.stamp.sec == 3
    assert (status.level, status.name, status.hardware_id, status.message) == (
        DiagnosticStatus.WARN,
        "so101 follower bus",
        "7",
        "hot",
    )
    assert [(kv.key, kv.value) for kv in status.values] == [("temp", "61")]
