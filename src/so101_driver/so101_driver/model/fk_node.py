"""fk_node: the follower's TCP pose for rviz2 and recorders (follower/joint_states -> follower/ee_pose).

A thin message converter: joints are matched by name, the pose comes from so101_driver.model.kinematics, and the pose
keeps the joint state's stamp so it lines up with the camera and the transitions in a bag.
"""

from __future__ import annotations

import so101_contract.quiet_interrupt  # noqa: F401  (first: Ctrl-C during the heavy imports below is quiet)

# isort: split
from dataclasses import dataclass

from geometry_msgs.msg import PoseStamped
from rclpy.node import Node
from sensor_msgs.msg import JointState

from so101_contract.joints import positions_by_name
from so101_contract.node_main import run_node
from so101_contract.parameters import ParameterError, declare_config
from so101_contract.qos import SENSOR_DATA
from so101_contract.settings import setting
from so101_driver.model.kinematics import Kinematics, quaternion_xyzw_from_matrix

WARN_THROTTLE_S = 5.0


@dataclass(frozen=True)
class FkConfig:
    """fk_node's settings (its parameters)."""

    urdf_path: str = setting("", "SO-101 URDF file; empty = the so101.urdf installed with so101_driver")
    frame_id: str = setting("base_link", "header.frame_id of the published pose (the URDF root it is expressed in)")


CONFIG = FkConfig


class FkNode(Node):
    def __init__(self):
        super().__init__("fk_node")
        self.config = config = declare_config(self, CONFIG)
        self._frame_id = config.frame_id
        try:
            self._kinematics = Kinematics(config.urdf_path)
        except FileNotFoundError as err:  # a urdf_path that names no file: exit 2 with one line, not a traceback
            raise ParameterError(f"parameter {err}") from None
        self._publisher = self.create_publisher(PoseStamped, "follower/ee_pose", 10)
        self._subscription = self.create_subscription(
            JointState, "follower/joint_states", self._on_joint_state, SENSOR_DATA
        )
        self.get_logger().info(f"fk_node: {self._kinematics.urdf_path}, TCP {self._kinematics.ee_frame}")

    def _on_joint_state(self, msg: JointState) -> None:
        q, missing = positions_by_name(msg.name, msg.position)
        if q is None:
            self.get_logger().warning(
                f"skipping a joint state without position(s) for {', '.join(missing)} (names: {list(msg.name)})",
                throttle_duration_sec=WARN_THROTTLE_S,
            )
            return
        position, rotation = self._kinematics.fk(q)
        x, y, z, w = quaternion_xyzw_from_matrix(rotation)
        pose = PoseStamped()
        pose.header.stamp = msg.header.stamp
        pose.header.frame_id = self._frame_id
        pose.pose.position.x, pose.pose.position.y, pose.pose.position.z = (float(v) for v in position)
        pose.pose.orientation.x, pose.pose.orientation.y = float(x), float(y)
        pose.pose.orientation.z, pose.pose.orientation.w = float(z), float(w)
        self._publisher.publish(pose)


def main(args=None) -> None:
    run_node(FkNode, args)


if __name__ == "__main__":
    main()
