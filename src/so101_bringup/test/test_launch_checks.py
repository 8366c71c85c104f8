"""What the launch files check before they start anything (so101_bringup.launch_checks): every argument parsed as
its kind with a one-line error naming it, and every package outside the workspace they would start looked up on the
ament index, against a fake index built here (a prefix with share/ament_index/resource_index/packages/<name>).

Where `launch` is importable (a ROS install), both launch descriptions are also built with the real launch API
against the fake index: a missing package refuses before any action exists.
"""

import os
from pathlib import Path

import pytest
from ament_index_python.packages import get_package_prefix
from test_graph import expand, launch_importable, node_name, started_packages

from so101_bringup.graph import DRIVER_NODES, GraphOptions, build_graph
from so101_bringup.launch_checks import (
    HILSERL_ARGUMENTS,
    ROBOT_STATE_PUBLISHER,
    ROS2_CONTROL,
    ROSBAG,
    RVIZ,
    VIEW_ARGUMENTS,
    MissingPackagesError,
    check_installed,
    hilserl_launch,
    hilserl_packages,
    installed_packages,
    parse_arguments,
    view_packages,
)

EXTERNAL = {p.package for p in (ROBOT_STATE_PUBLISHER, RVIZ, *ROSBAG, *ROS2_CONTROL)}


@pytest.fixture
def ament_index(tmp_path, monkeypatch):
    """make(*packages): the ament index holds these packages and the workspace's own (the launch files read
    so101_driver's URDF and so101_bringup's config), nothing else."""
    own = dict.fromkeys(get_package_prefix(p) for p in ("so101_bringup", "so101_driver"))

    def make(*packages: str) -> Path:
        prefix = tmp_path / f"prefix{len(list(tmp_path.glob('prefix*')))}"
        index = prefix / "share" / "ament_index" / "resource_index" / "packages"
        index.mkdir(parents=True)
        for package in packages:
            (index / package).touch()
        monkeypatch.setenv("AMENT_PREFIX_PATH", os.pathsep.join([str(prefix), *own]))
        return prefix

    return make


def test_the_arguments_default_to_the_graphs_defaults_and_cover_every_option():
    names = [name for name, *_ in HILSERL_ARGUMENTS]
    assert len(set(names)) == len(names)
    assert set(GraphOptions.__dataclass_fields__) <= set(names), "every GraphOptions field is a launch argument"
    chosen = hilserl_launch({})
    assert chosen.options == GraphOptions() and chosen.robot_state_publisher and not chosen.rviz
    assert {kind for *_, kind, _ in HILSERL_ARGUMENTS + VIEW_ARGUMENTS} == {"str", "bool", "count"}


def test_arguments_are_parsed_as_their_kinds():
    chosen = hilserl_launch(
        {"max_episodes": " 20", "record": "True", "rviz": "1", "robot_state_publisher": "off", "params_file": "",
         "mode": "real", "follower_id": "f", "leader_calibration_file": "/c.json", "use_ros2_control": "no"}
    )  # fmt: skip
    options = chosen.options
    assert options.max_episodes == 20 and options.record is True and chosen.rviz is True
    assert chosen.robot_state_publisher is False and options.params_file == "" and options.use_ros2_control is False
    assert (options.mode, options.follower_id, options.leader_calibration_file) == ("real", "f", "/c.json")
    assert hilserl_launch({"params_file": "mine.yaml"}).options.params_file == "mine.yaml"


@pytest.mark.parametrize(
    "name, value, expected",
    [
        ("max_episodes", "abc", "launch argument max_episodes:='abc' must be a whole number >= 0"),
        ("max_episodes", "-1", "launch argument max_episodes:='-1' must be a whole number >= 0"),
        ("max_episodes", "2.5", "launch argument max_episodes:='2.5' must be a whole number >= 0"),
        ("record", "maybe", "launch argument record:='maybe' must be true or false"),
        ("rviz", "", "launch argument rviz:='' must be true or false"),
        ("robot_state_publisher", "yes please", "launch argument robot_state_publisher:='yes please' must be true"),
        ("use_ros2_control", "2", "launch argument use_ros2_control:='2' must be true or false"),
    ],
)
def test_a_bad_argument_is_one_line_naming_it_and_what_it_got(name, value, expected):
    with pytest.raises(ValueError) as refused:
        hilserl_launch({name: value})
    assert str(refused.value).startswith(expected) and "\n" not in str(refused.value)


@pytest.mark.parametrize(
    ("arguments", "values", "refusal"),
    [
        (HILSERL_ARGUMENTS, {"max_episode": "3"}, "max_episode:='3' is not an argument of this launch file; did you "
                                                  "mean max_episodes?"),
        (HILSERL_ARGUMENTS, {"mode": "sim", "rvis": "true"}, "rvis:='true' is not an argument of this launch file; "
                                                             "did you mean rviz?"),
        (HILSERL_ARGUMENTS, {"colour": "red"}, "colour:='red' is not an argument of this launch file"),
        (VIEW_ARGUMENTS, {"use_sim_tim": "true"}, "use_sim_tim:='true' is not an argument of this launch file; did "
                                                  "you mean use_sim_time?"),
    ],
)  # fmt: skip
def test_an_argument_the_launch_file_does_not_declare_is_refused_naming_the_closest(arguments, values, refusal):
    with pytest.raises(ValueError) as refused:
        parse_arguments(arguments, values)
    assert str(refused.value) == f"launch argument {refusal} (--show-args lists them)"


def test_view_arguments():
    defaults = {"namespace": "", "robot_state_publisher": True, "use_sim_time": False}
    assert parse_arguments(VIEW_ARGUMENTS, {}) == defaults
    assert parse_arguments(VIEW_ARGUMENTS, {"use_sim_time": "true"})["use_sim_time"] is True
    assert parse_arguments(VIEW_ARGUMENTS, {"robot_state_publisher": "false"})["robot_state_publisher"] is False
    with pytest.raises(ValueError, match="robot_state_publisher:='nah' must be true or false"):
        parse_arguments(VIEW_ARGUMENTS, {"robot_state_publisher": "nah"})


def test_ros2_control_needs_robot_state_publisher():
    with pytest.raises(ValueError, match="use_ros2_control:=true needs robot_state_publisher.*robot_state_publisher"):
        hilserl_launch({"use_ros2_control": "true", "robot_state_publisher": "false"})


def test_each_choice_needs_its_packages():
    def needed(**values):
        return {p.package for p in hilserl_packages(hilserl_launch(values))}

    assert needed() == {"robot_state_publisher"}
    assert needed(robot_state_publisher="false") == set()
    assert needed(robot_state_publisher="false", rviz="true") == {"rviz2"}
    assert needed(robot_state_publisher="false", record="true") == {"ros2bag", "rosbag2_storage_mcap"}
    assert needed(use_ros2_control="true") == {
        "robot_state_publisher",
        "controller_manager",
        "joint_state_topic_hardware_interface",  # the plugin so101.ros2_control.urdf names
        "joint_state_broadcaster",
        "forward_command_controller",
    }
    assert {p.package for p in view_packages(True)} == {"robot_state_publisher", "rviz2"}
    assert {p.package for p in view_packages(False)} == {"rviz2"}
    for package in (ROBOT_STATE_PUBLISHER, RVIZ, *ROSBAG, *ROS2_CONTROL):
        assert package.apt == "ros-jazzy-" + package.package.replace("_", "-"), package
        assert package.switch and package.switch.endswith(":=false")


def test_the_check_names_each_missing_package_its_apt_package_and_the_argument_that_turns_it_off():
    needed = hilserl_packages(hilserl_launch({"record": "true", "rviz": "true"}))
    check_installed(needed, installed={"robot_state_publisher", "ros2bag", "rosbag2_storage_mcap", "rviz2"})
    with pytest.raises(MissingPackagesError) as refused:
        check_installed(needed, installed={"ros2bag", "rviz2"})
    message = str(refused.value)
    assert message == (
        "not installed: robot_state_publisher (sudo apt install ros-jazzy-robot-state-publisher, or launch with "
        "robot_state_publisher:=false); rosbag2_storage_mcap (sudo apt install ros-jazzy-rosbag2-storage-mcap, or "
        "launch with record:=false). Nothing was started."
    )
    with pytest.raises(MissingPackagesError, match=r"^not installed: rviz2 \(sudo apt install ros-jazzy-rviz2\)\."):
        check_installed(view_packages(False), installed=set())


def test_the_check_reads_the_ament_index(ament_index):
    ament_index("robot_state_publisher", "rviz2")
    installed = installed_packages()
    assert {"robot_state_publisher", "rviz2", "so101_bringup", "so101_driver"} <= installed
    assert not (EXTERNAL - {"robot_state_publisher", "rviz2"}) & installed
    check_installed(view_packages(True))
    check_installed(hilserl_packages(hilserl_launch({"rviz": "true"})))
    with pytest.raises(MissingPackagesError, match=r"ros2bag .*record:=false.*rosbag2_storage_mcap"):
        check_installed(hilserl_packages(hilserl_launch({"record": "true"})))
    ament_index("rviz2")
    with pytest.raises(MissingPackagesError, match=r"^not installed: robot_state_publisher \(sudo apt install"):
        check_installed(view_packages(True))


def test_launch_descriptions_refuse_before_any_action_with_the_real_launch_api(ament_index):
    """The missing-package checks against the fake index, through the real launch files where launch is installed;
    the pure checks above run everywhere."""
    ament_index("rviz2")
    with pytest.raises(MissingPackagesError, match="robot_state_publisher"):
        check_installed(view_packages(True))
    if not launch_importable():
        return
    from launch.actions import RegisterEventHandler
    from launch_ros.actions import Node

    # No action is returned when a package is missing: launch has nothing to start.
    for name, arguments, missing in [
        ("hilserl.launch.py", {}, "robot_state_publisher"),
        ("hilserl.launch.py", {"robot_state_publisher": "false", "record": "true"}, "ros2bag"),
        ("hilserl.launch.py", {"use_ros2_control": "true"}, "joint_state_topic_hardware_interface"),
        ("view.launch.py", {}, "robot_state_publisher"),
    ]:
        with pytest.raises(MissingPackagesError, match=missing):
            expand(name, **arguments)
    with pytest.raises(ValueError, match="max_episodes:='abc'"):
        expand("hilserl.launch.py", max_episodes="abc", robot_state_publisher="false")
    with pytest.raises(ValueError, match="real mode needs .*follower_id"):
        expand("hilserl.launch.py", mode="real", robot_state_publisher="false")
    for name in ("hilserl.launch.py", "view.launch.py"):  # a misspelled argument, before any action exists
        with pytest.raises(ValueError, match="max_episode:='3' is not an argument"):
            expand(name, max_episode="3", robot_state_publisher="false")

    actions = expand("hilserl.launch.py", robot_state_publisher="false", rviz="true")
    graph = {s.name for s in build_graph(GraphOptions())}
    assert {node_name(a) for a in actions if isinstance(a, Node)} == graph | {None}  # rviz2 keeps its own name
    assert started_packages(actions) >= {"rviz2"} and "robot_state_publisher" not in started_packages(actions)
    handlers = [a for a in actions if isinstance(a, RegisterEventHandler)]
    assert len(handlers) == len(graph) and DRIVER_NODES[0] in graph  # each graph node's exit stops the launch
    assert started_packages(expand("view.launch.py", robot_state_publisher="false")) == {"rviz2"}
    ament_index(*EXTERNAL)
    assert started_packages(expand("view.launch.py")) == {"robot_state_publisher", "rviz2"}
    everything = expand("hilserl.launch.py", record="true", rviz="true", use_ros2_control="true")
    assert {"robot_state_publisher", "controller_manager", "rviz2"} <= started_packages(everything)


def test_the_launch_and_the_runner_offer_the_same_graph_options():
    """hilserl.launch.py's arguments and the runner's flags are both derived from GraphOptions: same names, same
    defaults, same descriptions (the runner leaves out only the two it documents)."""
    from so101_bringup.runner import build_parser
    from so101_contract import settings

    launch = {name: (default, description) for name, default, _kind, description in HILSERL_ARGUMENTS}
    flags = {a.dest: a for a in build_parser()._actions}
    for name, (default, description, _bounds) in settings.table(GraphOptions).items():
        shown = str(default).lower() if isinstance(default, bool) else str(default)
        assert launch[name] == (shown, description)
        if name not in ("max_episodes", "use_ros2_control"):
            assert (flags[name].default, flags[name].help) == (default, description)
    assert "max_episodes" not in flags and "use_ros2_control" not in flags
