"""ROS time stamps <-> integer nanoseconds, the project's one time unit for matching (an image and its reward
signal, a transition and its frame are paired by equal nanoseconds, never by float seconds)."""

from __future__ import annotations

from builtin_interfaces.msg import Time

NS_PER_S = 1_000_000_000


def stamp_to_ns(stamp) -> int:
    """Integer nanoseconds of a stamp (int ns, builtin_interfaces/Time such as a header stamp, or rclpy Time)."""
    if isinstance(stamp, int):
        return stamp
    if hasattr(stamp, "sec") and hasattr(stamp, "nanosec"):
        return int(stamp.sec) * NS_PER_S + int(stamp.nanosec)
    if hasattr(stamp, "nanoseconds"):
        return int(stamp.nanoseconds)
    raise TypeError(f"a stamp must be int nanoseconds, builtin_interfaces/Time or rclpy Time, got {type(stamp)}")


def ns_to_stamp(ns: int) -> Time:
    """The builtin_interfaces/Time of ``ns`` nanoseconds since the epoch."""
    sec, nanosec = divmod(int(ns), NS_PER_S)
    return Time(sec=sec, nanosec=nanosec)
