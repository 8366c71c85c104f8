"""What the launch files check before they start anything: their arguments (a misspelled one refused with the closest
name) and the ROS packages outside this workspace they would start (named with their apt package).

`ros2 launch` starts actions one by one, so a missing package would fail after the project's nodes run; checking
first makes a bad launch one error line with nothing started. Plain Python, so tests call it without launch."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from so101_bringup.graph import GraphOptions
from so101_contract import settings
from so101_contract.cli import did_you_mean

TRUE = ("true", "1", "yes", "on")
FALSE = ("false", "0", "no", "off")

# (name, default, kind, description) of a launch file's arguments. kind: "str", "bool" (true/false), "count" (a
# whole number >= 0). hilserl.launch.py's are GraphOptions' settings and what runs alongside the graph.
LaunchArgument = tuple[str, str, str, str]


def config_arguments(config: type) -> tuple[LaunchArgument, ...]:
    """Launch arguments derived from a config dataclass's settings (so101_contract.settings)."""
    arguments = []
    for name, (default, description, _bounds) in settings.table(config).items():
        if isinstance(default, bool):
            arguments.append((name, str(default).lower(), "bool", description))
        elif isinstance(default, int):
            arguments.append((name, str(default), "count", description))
        else:
            arguments.append((name, str(default), "str", description))
    return tuple(arguments)


ALONGSIDE_ARGUMENTS: tuple[LaunchArgument, ...] = (
    ("rviz", "false", "bool", "start rviz2 with config/so101.rviz"),
    (
        "robot_state_publisher",
        "true",
        "bool",
        "start robot_state_publisher (TF and robot_description for rviz2 and ros2_control); false where "
        "ros-jazzy-robot-state-publisher is not installed",
    ),
)
HILSERL_ARGUMENTS: tuple[LaunchArgument, ...] = config_arguments(GraphOptions) + ALONGSIDE_ARGUMENTS

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
    options = settings.build(GraphOptions, {name: arg[name] for name in settings.table(GraphOptions)})
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
