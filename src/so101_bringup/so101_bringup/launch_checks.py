"""What the launch files check before they start anything: their arguments, and the ROS packages outside this
workspace that they would start.

`ros2 launch` starts the actions it is given one by one; a Node whose package is missing fails only when its turn
comes, after the project's nodes are already running (and then orphaned). So hilserl.launch.py and view.launch.py
parse every argument and check every external package here, inside their OpaqueFunction, before they build a single
action: an error is then one launch line naming the argument (a misspelled one with the closest declared name, or
the apt package and the argument that does without it), and nothing has started. Plain Python (ament_index_python
only, imported when asked), so tests call it without launch.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from so101_bringup.graph import GraphOptions
from so101_contract.cli import did_you_mean

TRUE = ("true", "1", "yes", "on")
FALSE = ("false", "0", "no", "off")

# (name, default, kind, description) of hilserl.launch.py's arguments. kind: "str", "bool" (true/false), "count" (a
# whole number >= 0). Every GraphOptions field is one of them (test_graph checks it); the rest choose what runs
# alongside the graph.
HILSERL_ARGUMENTS: tuple[tuple[str, str, str, str], ...] = (
    ("mode", "sim", "str", "sim (MuJoCo simulation and simulated operator) or real (follower, leader, wrist camera)"),
    ("namespace", "", "str", "namespace of every node and topic (one per robot)"),
    ("params_file", "", "str", "parameter YAML replacing config/<mode>.yaml (start from a copy of it); '' = that file"),
    ("initial_checkpoint", "", "str", "policy/agent .safetensors the actor and learner start from; '' = random init"),
    ("reward_model", "", "str", "reward classifier directory (required in real mode; sim: '' = ground-truth reward)"),
    ("record", "false", "bool", "record the project's topics with `ros2 bag record -s mcap` into run_dir/bags/"),
    ("rviz", "false", "bool", "start rviz2 with config/so101.rviz"),
    (
        "robot_state_publisher",
        "true",
        "bool",
        "start robot_state_publisher (TF and robot_description for rviz2 and ros2_control); false where "
        "ros-jazzy-robot-state-publisher is not installed",
    ),
    ("run_dir", "runs/sim", "str", "run directory: learner/ (journal, checkpoints, TensorBoard) and bags/"),
    ("follower_port", "", "str", "real mode: follower bus serial port (/dev/serial/by-id/...)"),
    ("leader_port", "", "str", "real mode: leader bus serial port (/dev/serial/by-id/...)"),
    ("follower_id", "", "str", "real mode: the follower's LeRobot robot id (finds its calibration file)"),
    ("leader_id", "", "str", "real mode: the leader's LeRobot teleoperator id (finds its calibration file)"),
    ("follower_calibration_file", "", "str", "real mode: the follower's calibration JSON (instead of follower_id)"),
    ("leader_calibration_file", "", "str", "real mode: the leader's calibration JSON (instead of leader_id)"),
    (
        "camera_source",
        "",
        "str",
        "real mode: wrist camera (/dev/v4l/by-id/...-video-index0, an index, a file or a folder)",
    ),
    (
        "max_episodes",
        "0",
        "count",
        "the actor stops after this many episodes, and the launch with it (0 = until stopped)",
    ),
    (
        "clock",
        "",
        "str",
        "sim mode's clock: lockstep (simulated time advances only while the actor and the learner keep up: results "
        "do not depend on the machine), sim (simulated time at real-time pace) or wall; '' = lockstep (sim with "
        "use_ros2_control); the real robot always runs on the wall clock",
    ),
    (
        "use_ros2_control",
        "false",
        "bool",
        "start the controller manager (joint_state_topic_hardware_interface over follower/joint_states and "
        "follower/joint_commands, joint_state_broadcaster, forward_position_controller) instead of the actor and "
        "learner: for driving the arm with controllers (MoveIt, ...)",
    ),
)

VIEW_ARGUMENTS: tuple[tuple[str, str, str, str], ...] = (
    ("namespace", "", "str", "namespace of the robot to watch"),
    (
        "robot_state_publisher",
        "true",
        "bool",
        "start robot_state_publisher; false when one already runs (hilserl.launch.py starts one)",
    ),
    ("use_sim_time", "false", "bool", "true to watch a simulation on simulated time (hilserl.launch.py mode:=sim)"),
)


def parse_bool(name: str, value: str) -> bool:
    word = value.strip().lower()
    if word in TRUE:
        return True
    if word in FALSE:
        return False
    raise ValueError(f"launch argument {name}:={value!r} must be true or false")


def parse_count(name: str, value: str) -> int:
    try:
        number = int(value.strip())
    except ValueError:
        number = -1
    if number < 0:
        raise ValueError(f"launch argument {name}:={value!r} must be a whole number >= 0")
    return number


def parse_arguments(declared: Iterable[tuple[str, str, str, str]], values: Mapping[str, str]) -> dict[str, object]:
    """The launch arguments' strings as their kinds; ValueError naming the first argument that is not one.

    ``values`` is every launch configuration the launch file sees (the context's launch_configurations): a name that
    is not a declared argument (``max_episode:=3``) is refused with the closest declared one, where launch itself
    would ignore it. A launch file that includes this one passes only these arguments (its own are visible here too:
    include it inside ``GroupAction(..., forwarding=False, launch_configurations={...})``).
    """
    declared = tuple(declared)
    names = [name for name, *_ in declared]
    for name in sorted(set(values) - set(names)):
        raise ValueError(
            f"launch argument {name}:={values[name]!r} is not an argument of this launch file"
            f"{did_you_mean(name, names)} (--show-args lists them)"
        )
    parsers = {"str": lambda _name, value: value, "bool": parse_bool, "count": parse_count}
    return {name: parsers[kind](name, values.get(name, default)) for name, default, kind, _ in declared}


@dataclass(frozen=True)
class HilserlLaunch:
    """What hilserl.launch.py starts: the graph, and what runs alongside it."""

    options: GraphOptions
    robot_state_publisher: bool = True
    rviz: bool = False


def hilserl_launch(values: Mapping[str, str]) -> HilserlLaunch:
    """hilserl.launch.py's argument strings -> what it starts; ValueError naming the argument to fix."""
    arg = parse_arguments(HILSERL_ARGUMENTS, values)
    fields = {name: arg[name] for name in GraphOptions.__dataclass_fields__}  # every field is an argument
    options = GraphOptions(**{**fields, "params_file": arg["params_file"] or None})
    if options.use_ros2_control and not arg["robot_state_publisher"]:
        raise ValueError(
            "use_ros2_control:=true needs robot_state_publisher (the controller manager reads the URDF from its "
            "robot_description topic): drop robot_state_publisher:=false"
        )
    return HilserlLaunch(options, robot_state_publisher=arg["robot_state_publisher"], rviz=arg["rviz"])


@dataclass(frozen=True)
class ExternalPackage:
    """A ROS package the launch files start that this workspace does not build."""

    package: str  # as the ament index names it
    apt: str  # the Debian package of ROS 2 Jazzy that installs it
    switch: str | None  # the launch argument that does without it (None: the launch file has no use without it)


ROBOT_STATE_PUBLISHER = ExternalPackage(
    "robot_state_publisher", "ros-jazzy-robot-state-publisher", "robot_state_publisher:=false"
)
RVIZ = ExternalPackage("rviz2", "ros-jazzy-rviz2", "rviz:=false")
# `ros2 bag record -s mcap`: the bag verb of the ros2 command and the MCAP storage plugin (not in ros-jazzy-ros-base).
ROSBAG = (
    ExternalPackage("ros2bag", "ros-jazzy-ros2bag", "record:=false"),
    ExternalPackage("rosbag2_storage_mcap", "ros-jazzy-rosbag2-storage-mcap", "record:=false"),
)
# so101_driver's urdf/so101.ros2_control.urdf plugin joint_state_topic_hardware_interface/JointStateTopicSystem and
# the two controllers of config/controllers.yaml.
ROS2_CONTROL = (
    ExternalPackage("controller_manager", "ros-jazzy-controller-manager", "use_ros2_control:=false"),
    ExternalPackage(
        "joint_state_topic_hardware_interface",
        "ros-jazzy-joint-state-topic-hardware-interface",
        "use_ros2_control:=false",
    ),
    ExternalPackage("joint_state_broadcaster", "ros-jazzy-joint-state-broadcaster", "use_ros2_control:=false"),
    ExternalPackage("forward_command_controller", "ros-jazzy-forward-command-controller", "use_ros2_control:=false"),
)


def hilserl_packages(launch: HilserlLaunch) -> list[ExternalPackage]:
    """The external packages hilserl.launch.py starts with these choices."""
    needed = []
    if launch.robot_state_publisher:
        needed.append(ROBOT_STATE_PUBLISHER)
    if launch.options.use_ros2_control:
        needed.extend(ROS2_CONTROL)
    if launch.options.record:
        needed.extend(ROSBAG)
    if launch.rviz:
        needed.append(RVIZ)
    return needed


def view_packages(robot_state_publisher: bool) -> list[ExternalPackage]:
    """view.launch.py is rviz2 (there is no argument that does without it), with robot_state_publisher by default."""
    rviz = ExternalPackage(RVIZ.package, RVIZ.apt, None)
    return [ROBOT_STATE_PUBLISHER, rviz] if robot_state_publisher else [rviz]


def installed_packages() -> set[str]:
    """Every package on the ament index (AMENT_PREFIX_PATH), the index `ros2 launch` and `ros2 run` search."""
    from ament_index_python.packages import get_packages_with_prefixes

    return set(get_packages_with_prefixes())


class MissingPackagesError(RuntimeError):
    """A package the launch would start is not installed."""


def check_installed(needed: Iterable[ExternalPackage], installed: set[str] | None = None) -> None:
    """MissingPackagesError naming each missing package's apt package and the argument that does without it."""
    installed = installed_packages() if installed is None else installed
    missing = [p for p in needed if p.package not in installed]
    if not missing:
        return
    problems = []
    for package in missing:
        fix = f"sudo apt install {package.apt}" + (f", or launch with {package.switch}" if package.switch else "")
        problems.append(f"{package.package} ({fix})")
    raise MissingPackagesError(f"not installed: {'; '.join(problems)}. Nothing was started.")
