"""rviz2 alone, to watch a running graph (here, or on another machine of the same ROS network):
`ros2 launch so101_bringup view.launch.py [namespace:=robot1] [robot_state_publisher:=false]`.

Starts robot_state_publisher with the project's URDF (TF from follower/joint_states) and rviz2 with config/so101.rviz:
the robot model, the FK end-effector pose (follower/ee_pose) and the wrist image. rviz2 has no display for a
std_msgs/Bool, so the intervention state is not drawn: watch it with `ros2 topic echo intervention` (or rqt's Topic
Monitor / Plot). Next to `hilserl.launch.py`, which already runs robot_state_publisher, pass
robot_state_publisher:=false. Both packages are checked before anything starts (so101_bringup.launch_checks).
"""

from pathlib import Path

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from so101_bringup.graph import config_path
from so101_bringup.launch_checks import VIEW_ARGUMENTS, check_installed, parse_arguments, view_packages


def _launch_setup(context, *args, **kwargs):
    # Everything that can refuse comes first: once an action is returned, launch starts it.
    values = {name: LaunchConfiguration(name).perform(context) for name, *_ in VIEW_ARGUMENTS}
    arg = parse_arguments(VIEW_ARGUMENTS, values)
    check_installed(view_packages(arg["robot_state_publisher"]))

    namespace = arg["namespace"]
    env = {"FASTRTPS_DEFAULT_PROFILES_FILE": str(config_path("fastdds.xml"))}
    actions = []
    if arg["robot_state_publisher"]:
        urdf = (Path(get_package_share_directory("so101_driver")) / "urdf" / "so101.urdf").read_text()
        actions.append(
            Node(
                package="robot_state_publisher",
                executable="robot_state_publisher",
                namespace=namespace,
                parameters=[{"robot_description": urdf}],
                remappings=[("joint_states", "follower/joint_states")],
                additional_env=env,
            )
        )
    actions.append(
        Node(
            package="rviz2",
            executable="rviz2",
            namespace=namespace,
            arguments=["-d", str(config_path("so101.rviz"))],
            additional_env=env,
        )
    )
    return actions


def generate_launch_description():
    declared = [
        DeclareLaunchArgument(name, default_value=default, description=doc) for name, default, _, doc in VIEW_ARGUMENTS
    ]
    return LaunchDescription([*declared, OpaqueFunction(function=_launch_setup)])
