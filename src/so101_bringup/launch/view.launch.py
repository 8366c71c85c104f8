"""rviz2 alone, to watch a running graph (here, or on another machine of the same ROS network):
`ros2 launch so101_bringup view.launch.py [namespace:=robot1] [robot_state_publisher:=false] [use_sim_time:=true]`
(use_sim_time:=true to watch a simulation that runs on simulated time, the default of hilserl.launch.py mode:=sim).

Starts robot_state_publisher with the project's URDF (TF from follower/joint_states) and rviz2 with config/so101.rviz:
the robot model, the FK end-effector pose (follower/ee_pose) and the wrist image. rviz2 has no display for a
std_msgs/Bool, so the intervention state is not drawn: watch it with `ros2 topic echo intervention` (or rqt's Topic
Monitor / Plot). Next to `hilserl.launch.py`, which already runs robot_state_publisher, pass
robot_state_publisher:=false. Both packages are checked before anything starts (so101_bringup.launch_checks).
"""

from so101_bringup import launch_nodes
from so101_bringup.graph import config_path
from so101_bringup.launch_checks import VIEW_ARGUMENTS, check_installed, parse_arguments, view_packages


def _launch_setup(context, *args, **kwargs):
    # Everything that can refuse comes first: once an action is returned, launch starts it.
    arg = parse_arguments(VIEW_ARGUMENTS, context.launch_configurations)  # a misspelled one is refused
    check_installed(view_packages(arg["robot_state_publisher"]))

    namespace = arg["namespace"]
    env = {"FASTRTPS_DEFAULT_PROFILES_FILE": str(config_path("fastdds.xml"))}
    actions = []
    if arg["robot_state_publisher"]:
        urdf = launch_nodes.project_urdf()
        actions.append(launch_nodes.robot_state_publisher(namespace, urdf, env, arg["use_sim_time"]))
    actions.append(launch_nodes.rviz(namespace, env, arg["use_sim_time"]))
    return actions


def generate_launch_description():
    return launch_nodes.description(VIEW_ARGUMENTS, _launch_setup)
