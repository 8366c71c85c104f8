"""leader: the SO-101 leader arm on its Feetech bus (the node is so101_driver.hardware.arm_node.ArmNode, role "leader").

ros2 run so101_driver leader_node --ros-args -p port:=/dev/serial/by-id/... -p robot_id:=my_leader
"""

import so101_contract.quiet_interrupt  # noqa: F401  (first: Ctrl-C during the heavy imports below is quiet)

# isort: split
from so101_contract.node_main import run_node
from so101_driver.hardware.arm import LeaderConfig
from so101_driver.hardware.arm_node import LeaderNode

CONFIG = LeaderConfig


def main(args=None) -> None:
    run_node(LeaderNode, args)


if __name__ == "__main__":
    main()
