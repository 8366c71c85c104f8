"""follower: the SO-101 follower arm on its Feetech bus.

The node is so101_driver.hardware.arm_node.ArmNode, role "follower".

ros2 run so101_driver follower_node --ros-args -p port:=/dev/serial/by-id/... -p robot_id:=my_follower
"""

import so101_contract.quiet_interrupt  # noqa: F401  (first: Ctrl-C during the heavy imports below is quiet)

# isort: split
from so101_contract.node_main import run_node
from so101_driver.hardware.arm import ArmConfig
from so101_driver.hardware.arm_node import FollowerNode

CONFIG = ArmConfig


def main(args=None) -> None:
    run_node(FollowerNode, args)


if __name__ == "__main__":
    main()
