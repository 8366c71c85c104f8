"""A private ROS_DOMAIN_ID per test process: so101_contract.ros_domain's lock, shared with the runs it must not meet.

so101_testing imports so101_contract without declaring it in package.xml: so101_contract's own tests depend on
so101_testing, and colcon refuses the cycle. Both live in this workspace, always built together.
"""

from so101_contract.ros_domain import (
    DOMAIN_RANGE,
    LOCK_DIR,
    TEST_CLAIM_ENV,
    claim_private_domain,
    isolate_ros_environment,
)

__all__ = ["DOMAIN_RANGE", "LOCK_DIR", "TEST_CLAIM_ENV", "claim_private_domain", "isolate_ros_environment"]
