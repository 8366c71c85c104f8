"""fk_node in a real graph: joint states in (any name order), the TCP pose of Kinematics.fk out, stamp kept."""

import random

import numpy as np
from geometry_msgs.msg import PoseStamped
from sensor_msgs.msg import JointState

from so101_contract.joints import JOINT_NAMES
from so101_contract.qos import SENSOR_DATA
from so101_driver.model.kinematics import Kinematics, quaternion_xyzw_from_matrix
from so101_testing.graph import wait_until

TIMEOUT_S = 20.0


def _joint_state(names, positions, sec: int, nanosec: int) -> JointState:
    msg = JointState()
    msg.header.stamp.sec = sec
    msg.header.stamp.nanosec = nanosec
    msg.name = list(names)
    msg.position = [float(p) for p in positions]
    return msg


def test_fk_node_publishes_pose_of_joint_states_matched_by_name(processes, probe):
    node = processes.start_module("so101_driver.model.fk_node", "--ros-args", "-p", "frame_id:=so101_base", name="fk")
    poses = probe.subscribe(PoseStamped, "follower/ee_pose", 10)
    publisher = probe.publisher(JointState, "follower/joint_states", SENSOR_DATA)
    probe.wait_for_subscribers(publisher, timeout_s=TIMEOUT_S)
    probe.wait_for_publishers("follower/ee_pose", timeout_s=TIMEOUT_S)

    # A message without wrist_flex is skipped with a warning and publishes nothing.
    incomplete = [n for n in JOINT_NAMES if n != "wrist_flex"]

    def warned() -> bool:
        publisher.publish(_joint_state(incomplete, np.zeros(5), sec=1, nanosec=0))
        return "wrist_flex" in node.output()

    wait_until(warned, TIMEOUT_S, "fk_node's warning about the missing wrist_flex", period_s=0.1)
    assert node.alive(), node.output()

    q = np.array([0.5, -0.3, 0.4, 0.2, 0.1, 0.7])
    order = list(range(len(JOINT_NAMES)))
    random.Random(5).shuffle(order)
    assert order != sorted(order)
    shuffled = _joint_state([JOINT_NAMES[i] for i in order], q[order], sec=7, nanosec=123)

    def got_pose() -> bool:
        publisher.publish(shuffled)
        return len(poses) >= 1

    wait_until(got_pose, TIMEOUT_S, "a pose on follower/ee_pose", period_s=0.1)
    position, rotation = Kinematics().fk(q)
    quat = quaternion_xyzw_from_matrix(rotation)
    for pose in poses.messages:
        assert (pose.header.stamp.sec, pose.header.stamp.nanosec) == (7, 123)  # never the skipped message
        assert pose.header.frame_id == "so101_base"
        p = pose.pose.position
        np.testing.assert_allclose([p.x, p.y, p.z], position, atol=1e-9)
        np.testing.assert_allclose([p.x, p.y, p.z], (0.309112, -0.148563, 0.169542), atol=1e-4)
        o = pose.pose.orientation
        got = np.array([o.x, o.y, o.z, o.w])
        assert min(np.abs(got - quat).max(), np.abs(got + quat).max()) < 1e-9
        reference = np.array([0.179042, 0.784666, -0.161536, 0.571095])
        assert min(np.abs(got - reference).max(), np.abs(got + reference).max()) < 1e-4
