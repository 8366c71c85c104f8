"""The launch actions both launch files start beside the graph, built once: robot_state_publisher with the
project's URDF, rviz2 with config/so101.rviz, and the launch description around an OpaqueFunction. Imported only by
the launch files (it needs launch and launch_ros, which a machine without a ROS install does not have)."""

from __future__ import annotations

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch_ros.actions import Node

from so101_bringup.graph import config_path


def project_urdf() -> str:
    """The installed so101_driver URDF (the model rviz2 draws and robot_state_publisher publishes), found as the nodes
    find it: a missing file is one launch error naming where it looked and the fix."""
    from so101_driver.model.robot_model import default_urdf_path

    return default_urdf_path().read_text()


def robot_state_publisher(namespace: str, description: str, env: dict[str, str], use_sim_time: bool) -> Node:
    """TF of the follower from follower/joint_states, and the latched robot_description topic."""
    return Node(
        package="robot_state_publisher",
        executable="robot_state_publisher",
        namespace=namespace,
        parameters=[{"robot_description": description, "use_sim_time": use_sim_time}],
        remappings=[("joint_states", "follower/joint_states")],
        additional_env=env,
    )


def rviz(namespace: str, env: dict[str, str], use_sim_time: bool) -> Node:
    """rviz2 with the project's displays; on simulated time when it watches a simulation (else its TF lookups at
    wall-clock instants find nothing)."""
    return Node(
        package="rviz2",
        executable="rviz2",
        namespace=namespace,
        arguments=["-d", str(config_path("so101.rviz"))],
        parameters=[{"use_sim_time": use_sim_time}],
        additional_env=env,
    )


def description(arguments, setup) -> LaunchDescription:
    """Declared arguments ((name, default, kind, doc) rows of so101_bringup.launch_checks), then ``setup`` in an
    OpaqueFunction so everything follows the resolved arguments (and may refuse before any action exists)."""
    declared = [
        DeclareLaunchArgument(name, default_value=default, description=doc) for name, default, _, doc in arguments
    ]
    return LaunchDescription([*declared, OpaqueFunction(function=setup)])
