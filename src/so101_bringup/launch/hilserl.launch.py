"""HIL-SERL on the SO-101, simulated or real: `ros2 launch so101_bringup hilserl.launch.py [mode:=real ...]`.

The nodes, their parameters and remappings come from so101_bringup.graph.build_graph, the same declaration the
runner (`make sim`, machines without ROS tools) starts as processes; this file only turns it into launch actions,
built in an OpaqueFunction so the graph follows the resolved arguments. Alongside the graph: robot_state_publisher
with the project's URDF (TF for rviz2; robot_state_publisher:=false without it), `ros2 bag record` of the project's
topics when record:=true, rviz2 when rviz:=true, and with use_ros2_control:=true the controller manager
(so101_driver's urdf/so101.ros2_control.urdf, config/controllers.yaml) commanding the follower instead of the actor.

Before any action exists, so101_bringup.launch_checks parses every argument (refusing one this file does not
declare, with the closest declared name) and checks that each package outside the
workspace that would start is installed: a bad argument or a missing package is one launch error and nothing starts.
A node of the graph that exits stops the launch (a dead driver must not leave the actor and learner running blind;
the actor exits after max_episodes).
"""

from pathlib import Path

from launch.actions import ExecuteProcess, RegisterEventHandler, Shutdown
from launch.event_handlers import OnProcessExit
from launch.logging import get_logger, launch_config
from launch_ros.actions import Node

from so101_bringup import launch_nodes
from so101_bringup.graph import (
    DRIVER_NODES,
    RECORDED_TOPICS,
    build_graph,
    clock_mode,
    config_path,
    robot_description,
    session_bag_path,
)
from so101_bringup.launch_checks import HILSERL_ARGUMENTS, check_installed, hilserl_launch, hilserl_packages
from so101_contract.sim_time import uses_sim_time


def _topic(namespace: str, topic: str) -> str:
    """A project topic as `ros2 bag record` must name it: absolute, inside the launch namespace."""
    if topic.startswith("/"):
        return topic
    return "/" + "/".join(part for part in (namespace.strip("/"), topic) if part)


def _stop_on_exit(name: str, node: Node) -> RegisterEventHandler:
    """When this graph node exits (and the launch is not already stopping), stop the launch, saying why."""

    def on_exit(event, context):
        if context.is_shutdown:
            return None
        if name == "actor" and event.returncode == 0:
            reason = "the actor finished its episodes (max_episodes)"
            get_logger("so101_bringup").info(f"{reason}: stopping the launch")
        else:
            role = "a driver: the actor and learner must not run without it" if name in DRIVER_NODES else "a graph node"
            reason = f"node {name} exited with code {event.returncode}"
            get_logger("so101_bringup").error(
                f"{reason} ({role}); stopping the launch. Its output is above, prefixed [{event.process_name}], and "
                f"in {Path(launch_config.log_dir) / 'launch.log'}"
            )
        return [Shutdown(reason=reason)]

    return RegisterEventHandler(OnProcessExit(target_action=node, on_exit=on_exit))


def _launch_setup(context, *args, **kwargs):
    # Everything that can refuse comes first: once an action is returned, launch starts it.
    chosen = hilserl_launch(context.launch_configurations)  # every configuration: a misspelled one is refused
    options = chosen.options
    specs = build_graph(options)
    check_installed(hilserl_packages(chosen))

    namespace = options.namespace
    sim_time = uses_sim_time(clock_mode(options))  # what runs beside the graph keeps the graph's clock
    env = {"FASTRTPS_DEFAULT_PROFILES_FILE": str(config_path("fastdds.xml"))}
    actions = []
    for spec in specs:
        parameters = [str(config_path(spec.parameter_file))] if spec.parameter_file else []
        node = Node(
            package=spec.package,
            executable=spec.executable,
            name=spec.name,
            namespace=namespace,
            parameters=[*parameters, spec.parameters],
            remappings=list(spec.remappings),
            ros_arguments=["--enclave", spec.enclave],  # SROS2, when ROS_SECURITY_ENABLE=true
            additional_env=env,
            output="screen",
            emulate_tty=True,
        )
        actions += [_stop_on_exit(spec.name, node), node]

    if chosen.robot_state_publisher:
        description = robot_description(launch_nodes.project_urdf(), options.use_ros2_control)
        actions.append(launch_nodes.robot_state_publisher(namespace, description, env, sim_time))
    if options.use_ros2_control:
        controllers = str(config_path("controllers.yaml"))
        # Jazzy's controller manager reads the URDF from the robot_description topic robot_state_publisher latches.
        actions.append(
            Node(
                package="controller_manager",
                executable="ros2_control_node",
                namespace=namespace,
                parameters=[controllers, {"use_sim_time": sim_time}],
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
                cmd=[
                    "ros2",
                    "bag",
                    "record",
                    "-s",
                    "mcap",
                    *(["--use-sim-time"] if sim_time else []),
                    "-o",
                    str(bag),
                    *topics,
                ],
                additional_env=env,
                output="screen",
            )
        )
    if chosen.rviz:
        actions.append(launch_nodes.rviz(namespace, env, sim_time))
    return actions


def generate_launch_description():
    return launch_nodes.description(HILSERL_ARGUMENTS, _launch_setup)
