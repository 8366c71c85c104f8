"""Helpers for tests that run real ROS 2 graphs on one machine.

Every test process gets a private ROS_DOMAIN_ID (see :mod:`so101_testing.domain`) and keeps DDS discovery on
loopback; node processes are started in their own process group and always reaped
(:mod:`so101_testing.processes`); waiting on the graph always has a timeout (:mod:`so101_testing.graph`).
"""

from so101_testing.domain import claim_private_domain, isolate_ros_environment
from so101_testing.processes import NodeProcess, ProcessGroup

__all__ = ["NodeProcess", "ProcessGroup", "claim_private_domain", "isolate_ros_environment"]
