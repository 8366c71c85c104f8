"""rviz2 alone, to watch a running graph (here, or on another machine of the same ROS network):
`ros2 launch so101_bringup view.launch.py [namespace:=robot1]`.

Starts robot_state_publisher with the project's URDF (TF from follower/joint_states) and rviz2 with config/so101.rviz:
the robot model, the FK end-effector pose (follower/ee_pose) and the wrist image. rviz2 has no display for a
std_msgs/Bool, so the intervention state is not drawn: watch it with `ros2 topic echo intervention` (or rqt's Topic
Monitor / Plot). Do not start this next to `hilserl.launch.py rviz:=true`, which already runs robot_state_publisher.
"""

from pathlib import Path

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from so101_bringup.graph import config_path


def generate_launch_description():
    namespace = LaunchConfiguration("namespace")
    urdf = (Path(get_package_share_directory("so101_driver")) / "urdf" / "so101.urdf").read_text()
    env = {"FASTRTPS_DEFAULT_PROFILES_FILE": str(config_path("fastdds.xml"))}
    return LaunchDescription(
        [
            DeclareLaunchArgument("namespace", default_value="", description="namespace of the robot to watch"),
            Node(
                package="robot_state_publisher",
                executable="robot_state_publisher",
                namespace=namespace,
                parameters=[{"robot_description": urdf}],
                remappings=[("joint_states", "follower/joint_states")],
                additional_env=env,
            ),
            Node(
                package="rviz2",
                executable="rviz2",
                namespace=namespace,
                arguments=["-d", str(config_path("so101.rviz"))],
                additional_env=env,
            ),
        ]
    )
