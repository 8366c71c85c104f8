"""The QoS choices of docs/architecture.md hold, and the pairs that must match on the graph are compatible."""

from rclpy.qos import DurabilityPolicy, ReliabilityPolicy, qos_check_compatible

from so101_contract import qos


def test_design_profiles():
    assert qos.SENSOR_DATA.reliability == ReliabilityPolicy.BEST_EFFORT
    assert qos.COMMAND.reliability == ReliabilityPolicy.RELIABLE and qos.COMMAND.depth == 1
    assert qos.LATCHED.durability == DurabilityPolicy.TRANSIENT_LOCAL and qos.LATCHED.depth == 1
    assert qos.TRANSITIONS.reliability == ReliabilityPolicy.RELIABLE and qos.TRANSITIONS.depth >= 1000


def test_publisher_subscriber_pairs_are_compatible():
    for profile in (qos.SENSOR_DATA, qos.COMMAND, qos.LATCHED, qos.TRANSITIONS, qos.EVENTS):
        compatibility, reason = qos_check_compatible(profile, profile)
        assert compatibility.name != "ERROR", reason  # WARNING only flags system-default liveliness
    # A reliable publisher (e.g. a recorder republishing) may feed a sensor-data subscriber, never the reverse.
    assert qos_check_compatible(qos.COMMAND, qos.SENSOR_DATA)[0].name != "ERROR"
    assert qos_check_compatible(qos.SENSOR_DATA, qos.COMMAND)[0].name == "ERROR"
