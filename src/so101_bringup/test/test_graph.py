"""The graph declaration (so101_bringup.graph) against the workspace: every package, console script, module,
parameter (name and type) and topic it names exists; the parameter files, the ros2_control block and the
controllers file agree with the nodes, the URDF and the graph; the launch files are built from the declaration.

Declared parameters are the settings of a node module's `CONFIG` (so101_contract.settings, its one config dataclass),
or else read from the node sources with ast (so101_contract.parameters' `declare(node, name, default, ...)` and
`PARAMETERS` tables, and a plain declare_parameter), so a renamed parameter fails here instead of silently keeping its
default at launch.
"""

import ast
import importlib
import importlib.util
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

from so101_bringup.graph import (
    PARAMETER_FILES,
    PROJECT_TOPICS,
    RECORDED_TOPICS,
    GraphOptions,
    build_graph,
    clock_mode,
    config_path,
    robot_description,
)
from so101_contract import settings
from so101_driver.model.robot_model import ros2_control_path

SRC = Path(__file__).resolve().parents[2]
BRINGUP = SRC / "so101_bringup"
URDF = SRC / "so101_driver" / "urdf" / "so101.urdf"
PARAM_HELPERS = {"declare_parameter", "declare"}
REAL = {
    "follower_port": "/dev/ttyACM0",
    "leader_port": "/dev/ttyACM1",
    "camera_source": "0",
    "reward_model": "m",
    "follower_id": "my_follower",
    "leader_id": "my_leader",
}
OPTIONS = {
    "sim": GraphOptions(mode="sim"),
    "sim+reward": GraphOptions(mode="sim", reward_model="runs/reward/model", initial_checkpoint="a.safetensors"),
    "real": GraphOptions(mode="real", **REAL),
    "real+ros2_control": GraphOptions(mode="real", use_ros2_control=True, **REAL),
}
RCLPY_PARAMETERS = {"use_sim_time": bool}


def module_file(module: str) -> Path:
    spec = importlib.util.find_spec(module)
    assert spec is not None and spec.origin, f"module {module} is not importable"
    return Path(spec.origin).resolve()


def python_module(name: str) -> Path | None:
    try:
        spec = importlib.util.find_spec(name)
    except ImportError:  # a.b.NAME where a.b is a module, not a package
        return None
    return Path(spec.origin).resolve() if spec is not None and spec.origin and spec.origin.endswith(".py") else None


def node_sources(module: str) -> list[Path]:
    """The node's module and the project modules it imports from or imports (follower_node -> arm_node, actor_node
    -> actor_config)."""
    path = module_file(module)
    files = [path]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0].startswith("so101_"):
            for name in [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]:
                found = python_module(name)
                if found is not None and found not in files:
                    files.append(found)
    return files


def literal_type(node: ast.expr) -> type | None:
    """The type of a literal default; for a name (CONTROL_RATE_HZ) or an expression, None (not checked)."""
    try:
        return type(ast.literal_eval(node))
    except ValueError:
        return None


def config_parameters(module: str) -> dict[str, type]:
    """name -> type of the default of every setting of the node module's ``CONFIG`` (so101_contract.settings; a
    tuple default is a ROS array, given as a YAML list)."""
    config = getattr(importlib.import_module(module), "CONFIG", None)
    if config is None:
        return {}
    return {
        name: list if isinstance(spec[0], tuple) else type(spec[0]) for name, spec in settings.table(config).items()
    }


def declared_parameters(module: str) -> dict[str, type | None]:
    """name -> type of the literal default (None where the default is an expression): the module's CONFIG, its
    parameter tables and its declare calls."""
    found: dict[str, type | None] = dict(config_parameters(module))
    for path in node_sources(module):
        for table in ast.walk(ast.parse(path.read_text())):
            # A parameter table: PARAMETERS = {"name": (default, description, ...), ...}
            if isinstance(table, ast.Assign) and [getattr(t, "id", None) for t in table.targets] == ["PARAMETERS"]:
                for key, value in zip(table.value.keys, table.value.values, strict=True):
                    if isinstance(key, ast.Constant) and isinstance(value, ast.Tuple):
                        found[key.value] = literal_type(value.elts[0])
        for call in ast.walk(ast.parse(path.read_text())):
            if not isinstance(call, ast.Call):
                continue
            func = call.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            if name not in PARAM_HELPERS:
                continue
            for i, arg in enumerate(call.args[:2]):
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    default = call.args[i + 1] if len(call.args) > i + 1 else None
                    found[arg.value] = literal_type(default) if default is not None else None
                    break
    return found


def type_problem(value: object, kind: type | None) -> str | None:
    """ROS refuses an override whose type differs from the declared default's (1 for a float parameter)."""
    if kind is None:
        return None
    if kind is list:
        return None if isinstance(value, list) else f"{value!r} is not a list"
    return None if type(value) is kind else f"{value!r} is a {type(value).__name__}, declared {kind.__name__}"


def console_scripts(package: str) -> dict[str, str]:
    """executable -> module of the package's setup.py console_scripts."""
    scripts = {}
    for node in ast.walk(ast.parse((SRC / package / "setup.py").read_text())):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and "=" in node.value and ":" in node.value:
            executable, target = (part.strip() for part in node.value.split("=", 1))
            scripts[executable] = target.split(":")[0]
    return scripts


def parameter_file(name: str) -> dict[str, dict]:
    """node name -> its ros__parameters, from a `/**/node: ros__parameters:` file."""
    data = yaml.safe_load(config_path(name).read_text())
    out = {}
    for key, value in data.items():
        assert key.startswith("/**/"), f"{name}: key {key!r} must be /**/<node> so any namespace matches"
        assert set(value) == {"ros__parameters"}, f"{name}: {key} must hold only ros__parameters"
        out[key.removeprefix("/**/")] = value["ros__parameters"]
    return out


def urdf_joints() -> dict[str, tuple[float, float]]:
    root = ET.parse(URDF).getroot()
    return {
        j.get("name"): (float(j.find("limit").get("lower")), float(j.find("limit").get("upper")))
        for j in root.findall("joint")
        if j.get("type") != "fixed"
    }


@pytest.mark.parametrize("case", sorted(OPTIONS))
def test_every_node_exists_with_its_executable_module_and_parameters(case):
    specs = build_graph(OPTIONS[case])
    assert len({s.name for s in specs}) == len(specs), "node names must be unique"
    for spec in specs:
        assert (SRC / spec.package / "package.xml").is_file(), f"{spec.name}: package {spec.package} not in src/"
        scripts = console_scripts(spec.package)
        assert scripts.get(spec.executable) == spec.module, (
            f"{spec.name}: {spec.executable} is not a console script of {spec.package} running {spec.module}"
        )
        declared = declared_parameters(spec.module)
        assert declared, f"{spec.module}: no declared parameters found"
        for key, value in spec.parameters.items():
            if key in RCLPY_PARAMETERS:  # declared by rclpy's Node itself
                assert isinstance(value, RCLPY_PARAMETERS[key]), f"{spec.name}.{key}: {value!r}"
                continue
            assert key in declared, f"{spec.name}: parameter {key} is not declared by {spec.module}"
            problem = type_problem(value, declared[key])
            assert problem is None, f"{spec.name}.{key}: {problem}"
        assert spec.parameter_file and config_path(spec.parameter_file).is_file()
        for source, target in spec.remappings:
            assert source in PROJECT_TOPICS and target in PROJECT_TOPICS, f"{spec.name}: remapping {source}->{target}"


def test_modes_differ_as_declared():
    sim = {s.name: s for s in build_graph(OPTIONS["sim"])}
    assert {"so101_sim", "intervention", "actor", "learner", "fk_node"} == set(sim)
    assert sim["so101_sim"].parameters["publish_ground_truth_reward"] is True
    with_model = {s.name: s for s in build_graph(OPTIONS["sim+reward"])}
    assert with_model["so101_sim"].parameters["publish_ground_truth_reward"] is False
    assert with_model["reward_classifier"].parameters["model_path"] == "runs/reward/model"
    assert with_model["actor"].parameters["initial_weights"] == "a.safetensors"
    real = {s.name: s for s in build_graph(OPTIONS["real"])}
    assert {"follower", "leader", "wrist_camera", "reward_classifier"} <= set(real) and "so101_sim" not in real
    assert real["actor"].parameters["reset_mode"] == "ik" and sim["actor"].parameters["reset_mode"] == "sim"
    assert real["follower"].parameters == {"port": "/dev/ttyACM0", "robot_id": "my_follower"}
    assert real["leader"].parameters == {"port": "/dev/ttyACM1", "robot_id": "my_leader"}
    assert not {"actor", "learner"} & {s.name for s in build_graph(OPTIONS["real+ros2_control"])}
    assert sim["learner"].parameters["run_dir"] == str(Path("runs/sim") / "learner")


def test_simulation_runs_in_lockstep_on_simulated_time_and_the_robot_on_the_wall_clock():
    sim = {s.name: s for s in build_graph(OPTIONS["sim"])}
    assert sim["so101_sim"].parameters["clock_mode"] == "lockstep" and sim["actor"].parameters["lockstep"] is True
    assert all(s.parameters.get("use_sim_time") is True for s in sim.values()), "every node must follow /clock"
    free = {s.name: s for s in build_graph(GraphOptions(mode="sim", clock="sim"))}
    assert free["so101_sim"].parameters["clock_mode"] == "sim" and free["actor"].parameters["lockstep"] is False
    assert all(s.parameters.get("use_sim_time") is True for s in free.values())
    wall = build_graph(GraphOptions(mode="sim", clock="wall"))
    assert not any("use_sim_time" in s.parameters for s in wall)
    controllers = {s.name: s for s in build_graph(GraphOptions(mode="sim", use_ros2_control=True))}
    assert controllers["so101_sim"].parameters["clock_mode"] == "sim"  # no actor to grant lockstep time
    real = build_graph(OPTIONS["real"])
    assert not any("use_sim_time" in s.parameters for s in real)
    assert clock_mode(OPTIONS["real"]) == "wall"


@pytest.mark.parametrize(
    "options, named",
    [
        (GraphOptions(mode="sim", clock="fast"), "clock='fast': use one of wall, sim, lockstep"),
        (GraphOptions(mode="real", clock="lockstep", **REAL), "the real robot runs on the wall clock"),
        (GraphOptions(mode="sim", clock="lockstep", use_ros2_control=True), "use_ros2_control runs without one"),
    ],
)
def test_clock_choices_that_cannot_run_are_refused(options, named):
    with pytest.raises(ValueError, match=re.escape(named)):
        build_graph(options)


def test_bad_options_are_refused_with_the_option_named():
    with pytest.raises(ValueError, match="reward_model"):
        build_graph(GraphOptions(mode="real", **{**REAL, "reward_model": ""}))
    with pytest.raises(ValueError, match="mode"):
        build_graph(GraphOptions(mode="hardware"))
    with pytest.raises(ValueError, match="params_file"):
        build_graph(GraphOptions(params_file="/nonexistent/params.yaml"))


def test_real_mode_needs_each_arms_id_or_calibration_file(tmp_path):
    """real.yaml names no arm: without an id or a file the drivers would die at start and leave the rest blind."""
    ports = {k: v for k, v in REAL.items() if not k.endswith("_id")}
    with pytest.raises(ValueError, match=r"real mode needs follower_id, leader_id: .*--id") as refused:
        build_graph(GraphOptions(mode="real", **ports))
    assert "follower_port" not in str(refused.value)
    with pytest.raises(ValueError, match=r"real mode needs leader_id: "):
        build_graph(GraphOptions(mode="real", follower_id="f", **ports))
    with pytest.raises(ValueError, match=r"follower_id='a/b': robot id 'a/b' must be a plain file name"):
        build_graph(GraphOptions(mode="real", follower_id="a/b", leader_id="l", **ports))
    with pytest.raises(ValueError, match=r"leader_calibration_file='/nonexistent.json' does not exist"):
        build_graph(GraphOptions(mode="real", follower_id="f", leader_calibration_file="/nonexistent.json", **ports))

    calibration = tmp_path / "leader.json"
    calibration.write_text("{}")
    options = GraphOptions(mode="real", follower_id="f", leader_calibration_file=str(calibration), **ports)
    nodes = {s.name: s for s in build_graph(options)}
    assert nodes["leader"].parameters == {"port": "/dev/ttyACM1", "calibration_file": str(calibration.resolve())}

    # A parameter file of the user's that names the arms is enough; its values are then not overridden.
    params = yaml.safe_load(config_path("real.yaml").read_text())
    params["/**/follower"] = {"ros__parameters": {"robot_id": "arm_f"}}
    params["/**/leader"] = {"ros__parameters": {"calibration_file": str(calibration)}}
    own = tmp_path / "mine.yaml"
    own.write_text(yaml.safe_dump(params))
    nodes = {s.name: s for s in build_graph(GraphOptions(mode="real", params_file=str(own), **ports))}
    assert nodes["follower"].parameters == {"port": "/dev/ttyACM0"}
    assert nodes["leader"].parameters == {"port": "/dev/ttyACM1"}


def test_user_params_file_replaces_the_mode_file(tmp_path):
    own = tmp_path / "mine.yaml"
    own.write_text(config_path("sim.yaml").read_text())
    specs = build_graph(GraphOptions(params_file=str(own)))
    assert {config_path(s.parameter_file) for s in specs} == {own.resolve()}


@pytest.mark.parametrize("mode", sorted(PARAMETER_FILES))
def test_parameter_files_name_real_parameters_of_the_modes_nodes(mode):
    modules = {}
    for options in OPTIONS.values():
        if options.mode == mode:
            modules.update({s.name: s.module for s in build_graph(options)})
    for node, parameters in parameter_file(PARAMETER_FILES[mode]).items():
        assert node in modules, f"{PARAMETER_FILES[mode]}: {node} is not a node of the {mode} graph"
        declared = declared_parameters(modules[node])
        for key, value in parameters.items():
            assert key in declared, f"{PARAMETER_FILES[mode]}: {node}.{key} is not declared by {modules[node]}"
            problem = type_problem(value, declared[key])
            assert problem is None, f"{PARAMETER_FILES[mode]}: {node}.{key}: {problem}"


def test_parameter_file_keys_reach_a_namespaced_node():
    """The /**/ keys are what makes one file serve every namespace: rcl must apply them to /robot1/actor."""
    import rclpy
    from rclpy.node import Node

    expected = parameter_file("sim.yaml")["actor"]["evaluation_every_episodes"]
    context = rclpy.Context()
    rclpy.init(args=["--ros-args", "--params-file", str(config_path("sim.yaml"))], context=context)
    try:
        node = Node("actor", namespace="robot1", context=context)
        try:
            assert node.declare_parameter("evaluation_every_episodes", -1).value == expected
        finally:
            node.destroy_node()
    finally:
        rclpy.shutdown(context=context)


def test_project_topics_are_used_by_the_nodes_and_recorded():
    sources = "".join(
        path.read_text()
        for options in OPTIONS.values()
        for spec in build_graph(options)
        for path in node_sources(spec.module)
    )
    for topic in PROJECT_TOPICS:
        assert f'"{topic}"' in sources, f"no node of the graph names topic {topic}"
    assert set(RECORDED_TOPICS) <= set(PROJECT_TOPICS)
    assert {"hilserl/transitions", "hilserl/episodes", "intervention", "wrist_camera/image_raw"} <= set(RECORDED_TOPICS)


def test_ros2_control_block_matches_the_urdf_and_the_graph():
    root = ET.parse(ros2_control_path()).getroot()
    (block,) = root.findall("ros2_control")
    assert block.get("type") == "system"
    hardware = block.find("hardware")
    assert hardware.findtext("plugin") == "joint_state_topic_hardware_interface/JointStateTopicSystem"
    params = {p.get("name"): p.text for p in hardware.findall("param")}
    assert params["joint_commands_topic"] == "follower/joint_commands"
    assert params["joint_states_topic"] == "follower/joint_states"
    assert {params["joint_commands_topic"], params["joint_states_topic"]} <= set(PROJECT_TOPICS)
    limits = urdf_joints()
    joints = block.findall("joint")
    assert [j.get("name") for j in joints] == list(limits), "the block must name the URDF's joints, in order"
    for joint in joints:
        assert [c.get("name") for c in joint.findall("command_interface")] == ["position"]
        assert [s.get("name") for s in joint.findall("state_interface")] == ["position", "velocity"]
        lower, upper = limits[joint.get("name")]
        for interface in joint:
            for param in interface.findall("param"):
                if param.get("name") == "initial_value":
                    assert lower <= float(param.text) <= upper, f"{joint.get('name')}: initial value outside limits"

    controllers = yaml.safe_load(config_path("controllers.yaml").read_text())
    manager = controllers["/**/controller_manager"]["ros__parameters"]
    assert manager["update_rate"] == 100
    assert manager["joint_state_broadcaster"]["type"] == "joint_state_broadcaster/JointStateBroadcaster"
    assert manager["forward_position_controller"]["type"] == "forward_command_controller/ForwardCommandController"
    forward = controllers["/**/forward_position_controller"]["ros__parameters"]
    assert forward["joints"] == list(limits) and forward["interface_name"] == "position"


def test_robot_description_with_ros2_control_is_one_valid_urdf():
    urdf = URDF.read_text()
    assert robot_description(urdf, False) == urdf
    combined = ET.fromstring(robot_description(urdf, True))
    assert combined.tag == "robot" and len(combined.findall("ros2_control")) == 1
    assert len(combined.findall("joint")) == len(ET.fromstring(urdf).findall("joint"))


def launch_file(name: str) -> ast.Module:
    return ast.parse((BRINGUP / "launch" / name).read_text(), name)


def top_level_imports(tree: ast.Module) -> set[str]:
    names = set()
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def calls_in_order(function: ast.FunctionDef) -> list[str]:
    """The names of the calls in a function (f(...) and module.f(...) as f), in source order."""
    calls = [n for n in ast.walk(function) if isinstance(n, ast.Call) and isinstance(n.func, (ast.Name, ast.Attribute))]
    calls.sort(key=lambda c: (c.lineno, c.col_offset))
    return [c.func.id if isinstance(c.func, ast.Name) else c.func.attr for c in calls]


def launch_importable() -> bool:
    return importlib.util.find_spec("launch") is not None and importlib.util.find_spec("launch_ros") is not None


def load_launch_file(name: str):
    spec = importlib.util.spec_from_file_location(name.replace(".", "_"), BRINGUP / "launch" / name)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def expand(name: str, **arguments: str) -> list:
    """The actions a launch file's OpaqueFunction returns for these arguments, with the real launch API (what
    `ros2 launch` does before it starts anything)."""
    import launch

    description = load_launch_file(name).generate_launch_description()
    context = launch.LaunchContext()
    context.launch_configurations.update(arguments)  # as `name:=value` on the command line
    for entity in description.entities:
        if isinstance(entity, launch.actions.DeclareLaunchArgument):
            entity.execute(context)
    (opaque,) = [e for e in description.entities if isinstance(e, launch.actions.OpaqueFunction)]
    return opaque.execute(context)


def node_name(action) -> str | None:
    """The name a launch_ros Node was declared with. Its node_name property raises RuntimeError before the action
    has executed (getattr's default does not catch that), so read what the constructor stored."""
    return vars(action).get("_Node__node_name")


def started_packages(actions) -> set[str]:
    from launch_ros.actions import Node

    return {vars(a)["_Node__package"] for a in actions if isinstance(a, Node)}


def test_launch_files_are_built_from_the_declaration():
    hilserl = launch_file("hilserl.launch.py")
    functions = {n.name: n for n in hilserl.body if isinstance(n, ast.FunctionDef)}
    assert "generate_launch_description" in functions
    assert {
        "launch.actions",
        "launch_ros.actions",
        "so101_bringup.graph",
        "so101_bringup.launch_checks",
        "so101_bringup",  # launch_nodes: robot_state_publisher, rviz2, the description, shared with view.launch.py
    } <= top_level_imports(hilserl)
    called = calls_in_order(functions["_launch_setup"])
    assert {"build_graph", "Node", "ExecuteProcess", "_stop_on_exit"} <= set(called)
    # Everything that can refuse runs before the first action exists: once returned, launch starts them in turn.
    first_action = called.index("Node")
    assert max(called.index(c) for c in ("hilserl_launch", "build_graph", "check_installed")) < first_action
    assert "description" in calls_in_order(functions["generate_launch_description"])
    view = launch_file("view.launch.py")
    functions = {n.name: n for n in view.body if isinstance(n, ast.FunctionDef)}
    assert {"so101_bringup", "so101_bringup.launch_checks"} <= top_level_imports(view)
    assert "description" in calls_in_order(functions["generate_launch_description"])
    called = calls_in_order(functions["_launch_setup"])
    first_action = min(called.index(c) for c in ("robot_state_publisher", "rviz"))
    assert max(called.index(c) for c in ("parse_arguments", "check_installed")) < first_action
    # The shared launch actions: the arguments declared, then the setup in an OpaqueFunction (it may refuse first).
    shared = {n.name: n for n in ast.parse((BRINGUP / "so101_bringup" / "launch_nodes.py").read_text()).body
              if isinstance(n, ast.FunctionDef)}  # fmt: skip
    assert "OpaqueFunction" in calls_in_order(shared["description"])
    rviz = yaml.safe_load(config_path("so101.rviz").read_text())
    displays = {d["Class"] for d in rviz["Visualization Manager"]["Displays"]}
    assert {"rviz_default_plugins/RobotModel", "rviz_default_plugins/Pose", "rviz_default_plugins/Image"} <= displays

    # With a ROS install, the launch description itself is built and its graph actions expanded.
    if launch_importable():
        from launch_ros.actions import Node

        actions = expand("hilserl.launch.py", robot_state_publisher="false")
        started = {node_name(a) for a in actions if isinstance(a, Node)}
        assert {s.name for s in build_graph(GraphOptions())} <= started


def test_the_sros2_policy_has_an_enclave_per_node_and_one_publisher_of_weights_and_of_transitions():
    import xml.etree.ElementTree as ET

    from so101_bringup.graph import GraphOptions, build_graph, config_path

    policy = ET.parse(config_path("sros2_policy.xml")).getroot()
    enclaves = {e.get("path"): e for e in policy.iter("enclave")}
    assert set(enclaves) == {spec.enclave for spec in build_graph(GraphOptions(run_dir="/tmp/x"))}

    def publishers(topic: str) -> list[str]:
        return [path for path, enclave in enclaves.items()
                for topics in enclave.iter("topics") if topics.get("publish") == "ALLOW"
                for t in topics.iter("topic") if t.text == topic]  # fmt: skip

    assert publishers("hilserl/policy_weights") == ["/so101/learner"]
    assert publishers("hilserl/transitions") == ["/so101/actor"]
    assert publishers("follower/joint_commands") == ["/so101/actor"]
