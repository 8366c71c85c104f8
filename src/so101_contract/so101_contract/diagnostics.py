"""The one way a node reports its health on ``/diagnostics`` (diagnostic_msgs, as rqt_runtime_monitor and
diagnostic_aggregator read it): one status per device, values as strings, the worst condition decides the level."""

from __future__ import annotations

from collections.abc import Mapping

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue

TOPIC = "/diagnostics"  # absolute: the aggregator listens there whatever the robot's namespace
DEPTH = 10
OK, WARN, ERROR = DiagnosticStatus.OK, DiagnosticStatus.WARN, DiagnosticStatus.ERROR


def diagnostic_array(
    stamp, name: str, hardware_id: str, level: bytes, message: str, values: Mapping[str, object]
) -> DiagnosticArray:
    """A DiagnosticArray holding one status; ``values`` are turned into strings (KeyValue holds text only)."""
    status = DiagnosticStatus(level=level, name=name, message=message, hardware_id=str(hardware_id))
    status.values = [KeyValue(key=str(key), value=str(value)) for key, value in values.items()]
    array = DiagnosticArray(status=[status])
    array.header.stamp = stamp
    return array
