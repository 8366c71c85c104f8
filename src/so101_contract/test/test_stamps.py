"""Stamps <-> integer nanoseconds, exact both ways (matching is by equal nanoseconds)."""

import pytest
from builtin_interfaces.msg import Time
from rclpy.time import Time as RclpyTime

from so101_contract.stamps import ns_to_stamp, stamp_to_ns


@pytest.mark.parametrize("ns", [0, 1, 999_999_999, 1_000_000_000, 1_732_000_000_123_456_789])
def test_round_trip_is_exact(ns):
    stamp = ns_to_stamp(ns)
    assert isinstance(stamp, Time) and 0 <= stamp.nanosec < 1_000_000_000
    assert stamp_to_ns(stamp) == ns


def test_every_stamp_kind():
    assert stamp_to_ns(Time(sec=2, nanosec=5)) == 2_000_000_005
    assert stamp_to_ns(RclpyTime(nanoseconds=7)) == 7
    assert stamp_to_ns(42) == 42
    with pytest.raises(TypeError, match="a stamp must be"):
        stamp_to_ns(1.5)
