"""HIL-SERL on the SO-101, simulated or real: `ros2 launch so101_bringup hilserl.launch.py [mode:=real ...]`.

The nodes, their parameters and remappings come from so101_bringup.graph.build_graph, the same declaration the
runner (`make sim`, machines without ROS tools) starts as processes; this file only turns it into launch actions,
built in an OpaqueFunction so the graph follows the resolved arguments. Alongside the graph: robot_state_publisher
with the project's URDF (TF for rviz2), `ros2 bag record` of the project's topics when record:=true, rviz2 when
rviz:=true, and with use_ros2_control:=true the controller manager (config/ros2_control.urdf, controllers.yaml)
commanding the follower instead of the actor.
"""

from pathlib import Path

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, ExecuteProcess, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from so101_bringup.graph import (
    RECORDED_TOPICS,
    GraphOptions,
    build_graph,
    config_path,
    robot_description,
    session_bag_path,
)

ARGUMENTS = (
    ("mode", "sim", "sim (MuJoCo simulation and simulated operator) or real (follower, leader, wrist camera)"),
    ("namespace", "", "namespace of every node and topic (one per robot)"),
    ("params_file", "", "parameter YAML replacing config/<mode>.yaml (start from a copy of it); '' = that file"),
    ("initial_checkpoint", "", "policy/agent .safetensors the actor and learner start from; '' = random init"),
    ("reward_model", "", "reward classifier directory (required in real mode; sim: '' = ground-truth reward)"),
    ("record", "false", "record the project's topics with `ros2 bag record -s mcap` into run_dir/bags/"),
    ("rviz", "false", "start rviz2 with config/so101.rviz"),
    ("run_dir", "runs/sim", "run directory: learner/ (journal, checkpoints, TensorBoard) and bags/"),
    ("follower_port", "", "real mode: follower bus serial port (/dev/serial/by-id/...)"),
    ("leader_port", "", "real mode: leader bus serial port (/dev/serial/by-id/...)"),
    ("camera_source", "", "real mode: wrist camera (/dev/v4l/by-id/...-video-index0, an index, a file or a folder)"),
    ("max_episodes", "0", "the actor stops after this many episodes (0 = until stopped)"),
    (
        "use_ros2_control",
        "false",
        "start the controller manager (joint_state_topic_hardware_interface over follower/joint_states and "
        "follower/joint_commands, joint_state_broadcaster, forward_position_controller) instead of the actor and "
        "learner: for driving the arm with controllers (MoveIt, ...)",
    ),
)


def _true(value: str) -> bool:
    return value.strip().lower() in ("true", "1", "yes", "on")


def _urdf() -> str:
    return (Path(get_package_share_directory("so101_driver")) / "urdf" / "so101.urdf").read_text()


def _topic(namespace: str, topic: str) -> str:
    """A project topic as `ros2 bag record` must name it: absolute, inside the launch namespace."""
    if topic.startswith("/"):
        return topic
    return "/" + "/".join(part for part in (namespace.strip("/"), topic) if part)


def _launch_setup(context, *args, **kwargs):
    arg = {name: LaunchConfiguration(name).perform(context) for name, _, _ in ARGUMENTS}
    options = GraphOptions(
        mode=arg["mode"],
        namespace=arg["namespace"],
        params_file=arg["params_file"] or None,
        initial_checkpoint=arg["initial_checkpoint"],
        reward_model=arg["reward_model"],
        record=_true(arg["record"]),
        run_dir=arg["run_dir"],
        follower_port=arg["follower_port"],
        leader_port=arg["leader_port"],
        camera_source=arg["camera_source"],
        use_ros2_control=_true(arg["use_ros2_control"]),
        max_episodes=int(arg["max_episodes"]),
    )
    namespace = options.namespace
    env = {"FASTRTPS_DEFAULT_PROFILES_FILE": str(config_path("fastdds.xml"))}
    actions = []
    for spec in build_graph(options):
        parameters = [str(config_path(spec.parameter_file))] if spec.parameter_file else []
        actions.append(
            Node(
                package=spec.package,
                executable=spec.executable,
                name=spec.name,
                namespace=namespace,
                parameters=[*parameters, spec.parameters],
                remappings=list(spec.remappings),
                additional_env=env,
                output="screen",
                emulate_tty=True,
            )
        )

    actions.append(
        Node(
            package="robot_state_publisher",
            executable="robot_state_publisher",
            namespace=namespace,
            parameters=[{"robot_description": robot_description(_urdf(), options.use_ros2_control)}],
            remappings=[("joint_states", "follower/joint_states")],
            additional_env=env,
        )
    )
    if options.use_ros2_control:
        controllers = str(config_path("controllers.yaml"))
        # Jazzy's controller manager reads the URDF from the robot_description topic robot_state_publisher latches.
        actions.append(
            Node(
                package="controller_manager",
                executable="ros2_control_node",
                namespace=namespace,
                parameters=[controllers],
                remappings=[("~/robot_description", "robot_description")],
                additional_env=env,
                output="screen",
            )
        )
        for controller in ("joint_state_broadcaster", "forward_position_controller"):
            actions.append(
                Node(
                    package="controller_manager",
                    executable="spawner",
                    namespace=namespace,
                    arguments=[controller, "--controller-manager", "controller_manager", "--param-file", controllers],
                    additional_env=env,
                )
            )
    if options.record:
        bag = session_bag_path(options.run_dir)
        topics = [_topic(namespace, topic) for topic in RECORDED_TOPICS]
        actions.append(
            ExecuteProcess(
                cmd=["ros2", "bag", "record", "-s", "mcap", "-o", str(bag), *topics],
                additional_env=env,
                output="screen",
            )
        )
    if _true(arg["rviz"]):
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
    declared = [DeclareLaunchArgument(name, default_value=default, description=doc) for name, default, doc in ARGUMENTS]
    return LaunchDescription([*declared, OpaqueFunction(function=_launch_setup)])
