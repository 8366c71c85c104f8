"""A private ROS_DOMAIN_ID per test process (so101_contract.ros_domain, shared with the runs it must not meet)."""

from so101_contract.ros_domain import DOMAIN_RANGE, LOCK_DIR, claim_private_domain, isolate_ros_environment

__all__ = ["DOMAIN_RANGE", "LOCK_DIR", "claim_private_domain", "isolate_ros_environment"]
