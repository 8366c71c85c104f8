"""The HIL-SERL node graph, declared once: `hilserl.launch.py` (ROS install) and the runner (Python only) both read it.

A NodeSpec names one node process: its package and console script (for `ros2 run` and launch_ros), its module (for
`python -m`), the parameters that follow from the user's options, the mode's parameter file, and remappings. Topic
names in the nodes are relative, so a namespace per robot needs no remapping; the namespace is applied by whoever
starts the processes (launch's `namespace=`, the runner's `-r __ns:=`).

Sim mode: simulation, intervention, actor, learner, FK, and the reward classifier when a model is given (without one
the simulation publishes its ground-truth reward on reward/signal instead). Real mode: follower, leader and wrist
camera drivers instead of the simulation, the reward classifier required, and the actor resets by IK.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field, replace
from pathlib import Path

from so101_contract.run_dir import RunDir
from so101_contract.settings import setting
from so101_contract.sim_time import CLOCK_MODES, uses_sim_time

MODES = ("sim", "real")
ENCLAVE_ROOT = "/so101"  # SROS2: every node's enclave is ENCLAVE_ROOT/<node name>
PACKAGE = "so101_bringup"

# Every topic of the project graph (docs/architecture.md, "The graph"), relative names except /diagnostics.
PROJECT_TOPICS: tuple[str, ...] = (
    "follower/joint_states",
    "follower/joint_commands",
    "leader/joint_states",
    "leader/joint_commands",
    "wrist_camera/image_raw",
    "wrist_camera/camera_info",
    "reward/signal",
    "intervention",
    "hilserl/transitions",
    "hilserl/episodes",
    "hilserl/policy_weights",
    "hilserl/learner_stats",
    "follower/ee_pose",
    "operator/episode_mark",
    "/diagnostics",
    "/clock",  # simulated time (so101_contract.sim_time): the simulation's clock
    "sim/advance_until",  # lockstep: how far the actor lets simulated time run
    "hilserl/learner_progress",  # lockstep: the learner's update backlog
)

# What `ros2 bag record` and the project's recorder take: enough to replay a session into learner buffers (images,
# joints, interventions, rewards, the actor's transitions and episodes) and to inspect it afterwards. The policy
# weights are left out (megabytes per message, and the learner's checkpoints keep them), and so is the lockstep
# bookkeeping (hundreds of messages per simulated second; messages carry their simulated stamps).
NOT_RECORDED = ("hilserl/policy_weights", "/clock", "sim/advance_until", "hilserl/learner_progress")
RECORDED_TOPICS: tuple[str, ...] = tuple(t for t in PROJECT_TOPICS if t not in NOT_RECORDED)

# The parameter files (under config/) of each mode.
PARAMETER_FILES = {"sim": "sim.yaml", "real": "real.yaml"}

# The nodes that are the robot (or stand in for it): without one of them the actor and the learner would run blind,
# so its exit stops the whole launch.
DRIVER_NODES = ("so101_sim", "follower", "leader", "wrist_camera")
ARMS = ("follower", "leader")

# What real mode cannot start without, and where the user finds it.
_PORTS = "the arms' serial ports, /dev/serial/by-id/... (python -m so101_driver.hardware.feetech.ports lists them)"
_IDS = (
    "each arm's LeRobot id as it was calibrated "
    "(python -m so101_driver.hardware.calibrate --kind follower|leader --id ...), "
    "or its calibration JSON as follower_calibration_file/leader_calibration_file"
)
REAL_MODE_NEEDS = {
    "follower_port": _PORTS,
    "leader_port": _PORTS,
    "camera_source": "the wrist camera, /dev/v4l/by-id/...-video-index0",
    "reward_model": "a trained reward classifier directory (python -m so101_reward.train)",
    "follower_id": _IDS,
    "leader_id": _IDS,
}


@dataclass(frozen=True)
class NodeSpec:
    """One node process of the graph."""

    name: str  # node name (the processes are started with __node:=name)
    package: str
    executable: str  # console script of the package, for `ros2 run` and launch_ros.actions.Node
    module: str  # `python -m module`, for the runner
    parameters: dict[str, object] = field(default_factory=dict)  # from the options; override the parameter file
    parameter_file: str | None = None  # a name under so101_bringup/config/, or the path of the user's own file
    remappings: tuple[tuple[str, str], ...] = ()

    @property
    def enclave(self) -> str:
        """Its SROS2 security enclave (keys and permissions; used when ROS_SECURITY_ENABLE=true, config/
        sros2_policy.xml says what each may publish)."""
        return f"{ENCLAVE_ROOT}/{self.name}"


@dataclass(frozen=True)
class GraphOptions:
    """What the user chooses at launch: hilserl.launch.py's arguments and the runner's flags are derived from these
    settings (so101_bringup.launch_checks, so101_bringup.runner)."""

    mode: str = setting("sim", "sim (MuJoCo simulation and simulated operator) or real (follower, leader, wrist "
                        "camera)", MODES)  # fmt: skip
    namespace: str = setting("", "namespace of every node and topic (one per robot)")
    params_file: str = setting("", "parameter YAML replacing config/<mode>.yaml (start from a copy of it); '' = that "
                               "file")  # fmt: skip
    initial_checkpoint: str = setting("", "policy/agent .safetensors the actor and learner start from; '' = random "
                                      "init")  # fmt: skip
    reward_model: str = setting("", "reward classifier directory (required in real mode; sim: '' = ground-truth "
                                "reward)")  # fmt: skip
    record: bool = setting(False, "record the project's topics (rosbag2, MCAP) into run_dir/bags/")
    run_dir: str = setting("runs/sim", "run directory: logs/, episodes.csv, learner/ (journal, checkpoints, "
                           "TensorBoard) and bags/; the same one again resumes the run")  # fmt: skip
    follower_port: str = setting("", "real mode: follower bus serial port (/dev/serial/by-id/...)")
    leader_port: str = setting("", "real mode: leader bus serial port (/dev/serial/by-id/...)")
    # Each arm's calibration: its LeRobot id (the file is found where LeRobot keeps it) or the file itself; '' = the
    # parameter file's robot_id/calibration_file, and real mode refuses to start when all are empty.
    follower_id: str = setting("", "real mode: the follower's LeRobot robot id (finds its calibration file)")
    leader_id: str = setting("", "real mode: the leader's LeRobot teleoperator id (finds its calibration file)")
    follower_calibration_file: str = setting("", "real mode: the follower's calibration JSON (instead of "
                                             "follower_id)")  # fmt: skip
    leader_calibration_file: str = setting("", "real mode: the leader's calibration JSON (instead of leader_id)")
    camera_source: str = setting("", "real mode: wrist camera (/dev/v4l/by-id/...-video-index0, an index, a file or "
                                 "a folder)")  # fmt: skip
    use_ros2_control: bool = setting(False, "start the controller manager (joint_state_topic_hardware_interface over "
                                     "follower/joint_states and follower/joint_commands, joint_state_broadcaster, "
                                     "forward_position_controller) instead of the actor and learner: for driving the "
                                     "arm with controllers (MoveIt, ...)")  # fmt: skip
    max_episodes: int = setting(0, "the actor stops after this many episodes, and the launch with it (0 = until "
                                "stopped)", (0, 10**9))  # fmt: skip
    clock: str = setting("", "sim mode's clock: lockstep (simulated time advances only while the actor and the "
                         "learner keep up: results do not depend on the machine), sim (simulated time at real-time "
                         "pace) or wall; '' = lockstep (sim with use_ros2_control); the real robot always runs on "
                         "the wall clock", ("", *CLOCK_MODES))  # fmt: skip


def _spec(name: str, package: str, module: str, executable: str, parameters: dict, parameter_file: str) -> NodeSpec:
    return NodeSpec(
        name=name,
        package=package,
        executable=executable,
        module=f"{package}.{module}",
        parameters=parameters,
        parameter_file=parameter_file,
    )


def build_graph(options: GraphOptions) -> list[NodeSpec]:
    """The nodes to start for these options; raises ValueError naming the option to fix."""
    if options.mode not in MODES:
        raise ValueError(f"mode={options.mode!r}: use one of {', '.join(MODES)}")
    if options.params_file:
        params = Path(options.params_file).expanduser()
        if not params.is_file():
            raise ValueError(f"params_file={options.params_file!r} does not exist; copy {config_path('sim.yaml')}")
        parameter_file = str(params.resolve())
    else:
        parameter_file = PARAMETER_FILES[options.mode]
    if options.max_episodes < 0:
        raise ValueError(f"max_episodes={options.max_episodes} must be >= 0 (0 = run until stopped)")
    real = options.mode == "real"
    clock = clock_mode(options)
    if real:
        arms = _arm_calibrations(options, config_path(parameter_file))
        required = ("follower_port", "leader_port", "camera_source", "reward_model")
        missing = [name for name in required if not getattr(options, name)]
        missing += [f"{arm}_id" for arm in ARMS if arms[arm] is None]  # nor a calibration file, here or in the file
        if missing:
            hints = dict.fromkeys(REAL_MODE_NEEDS[name] for name in missing)
            raise ValueError(f"real mode needs {', '.join(missing)}: {'; '.join(hints)}")

    def spec(name, package, module, parameters=None, executable=None):
        # In simulated time every node takes its clock from /clock: timers, stamps, the actor's 10 Hz, watchdogs.
        parameters = {**(parameters or {}), **({"use_sim_time": True} if uses_sim_time(clock) else {})}
        return _spec(name, package, module, executable or module.rsplit(".", 1)[-1], parameters, parameter_file)

    nodes: list[NodeSpec] = []
    if real:
        follower = {"port": options.follower_port, **arms["follower"]}
        nodes.append(spec("follower", "so101_driver", "hardware.follower_node", follower))
        nodes.append(
            spec("leader", "so101_driver", "hardware.leader_node", {"port": options.leader_port, **arms["leader"]})
        )
        nodes.append(spec("wrist_camera", "so101_driver", "hardware.camera_node", {"source": options.camera_source}))
    else:
        ground_truth = not options.reward_model
        sim = {"publish_ground_truth_reward": ground_truth, "clock_mode": clock}
        nodes.append(spec("so101_sim", "so101_driver", "sim.sim_node", sim))
    if options.reward_model:
        nodes.append(spec("reward_classifier", "so101_reward", "reward_node", {"model_path": options.reward_model}))
    nodes.append(spec("intervention", "so101_hilserl_actor", "intervention_node"))
    if not options.use_ros2_control:
        # With ros2_control the controller manager's hardware component publishes follower/joint_commands every
        # cycle its command differs from the state, controller active or not: the actor must not publish there too.
        actor = {
            "reset_mode": "ik" if real else "sim",
            "initial_weights": options.initial_checkpoint,
            "max_episodes": options.max_episodes,
            # Episodes start when every taker of transitions is there: the learner, and the recorder when recording
            # (otherwise the recorder alone would let the actor start before the learner is up).
            "wait_for_subscribers": 2 if options.record else 1,
            # ... and once the learner is ready (its first weights): a learner that subscribed but is still loading
            # has not yet told a lockstep simulation to wait for it, and a resumed run starts from its checkpoint.
            "wait_for_learner_weights": True,
            "lockstep": clock == "lockstep",  # the actor grants the simulation its time, step by step
        }
        nodes.append(spec("actor", "so101_hilserl_actor", "actor_node", actor))
        learner = {
            "run_dir": str(RunDir(Path(options.run_dir)).learner.root),
            "initial_weights": options.initial_checkpoint,
        }
        nodes.append(spec("learner", "so101_hilserl_learner", "learner_node", learner))
    nodes.append(spec("fk_node", "so101_driver", "model.fk_node"))
    return nodes


def clock_mode(options: GraphOptions) -> str:
    """The simulation's clock mode for these options; ValueError naming the option for a combination that cannot
    run (the robot has no simulated time; lockstep needs the actor, which use_ros2_control replaces)."""
    if options.clock and options.clock not in CLOCK_MODES:
        raise ValueError(f"clock={options.clock!r}: use one of {', '.join(CLOCK_MODES)} (or '' for the mode's own)")
    if options.mode == "real":
        if options.clock not in ("", "wall"):
            raise ValueError(f"clock={options.clock!r}: the real robot runs on the wall clock; leave clock unset")
        return "wall"
    if options.use_ros2_control and options.clock == "lockstep":
        raise ValueError(
            "clock='lockstep' needs the actor to grant simulated time, and use_ros2_control runs without one: "
            "use clock sim (or leave it unset)"
        )
    return options.clock or ("sim" if options.use_ros2_control else "lockstep")


def _arm_calibrations(options: GraphOptions, parameter_file: Path) -> dict[str, dict[str, str] | None]:
    """Per arm, the robot_id/calibration_file parameters the options set ({} when they set none and the parameter
    file names one; None when neither does). ValueError naming the option for a bad id or a missing file."""
    from so101_driver.hardware.calibration import lerobot_calibration_candidates  # the drivers' own rule for an id

    arms: dict[str, dict[str, str]] = {}
    for arm in ARMS:
        robot_id, calibration = getattr(options, f"{arm}_id"), getattr(options, f"{arm}_calibration_file")
        chosen = {}
        if robot_id:
            try:
                lerobot_calibration_candidates(arm, robot_id)
            except ValueError as err:
                raise ValueError(f"{arm}_id={robot_id!r}: {err}") from None
            chosen["robot_id"] = robot_id
        if calibration:
            path = Path(calibration).expanduser()
            if not path.is_file():
                raise ValueError(
                    f"{arm}_calibration_file={calibration!r} does not exist; calibrate with python -m "
                    f"so101_driver.hardware.calibrate --kind {arm}, or pass {arm}_id"
                )
            chosen["calibration_file"] = str(path.resolve())
        if chosen:
            arms[arm] = chosen
        elif any(file_parameters(parameter_file, arm).get(key) for key in ("robot_id", "calibration_file")):
            arms[arm] = {}
    return {arm: arms.get(arm) for arm in ARMS}


def file_parameters(path: Path, node: str) -> dict:
    """The ros__parameters a parameter file gives this node (keys /**/node, /ns/node, node or /**), in file order."""
    import yaml

    data = yaml.safe_load(Path(path).read_text()) or {}
    found: dict = {}
    for key, value in data.items() if isinstance(data, dict) else ():
        if str(key).rsplit("/", 1)[-1] in (node, "**") and isinstance(value, dict):
            found.update(value.get("ros__parameters") or {})
    return found


def session_bag_path(run_dir: str | Path) -> Path:
    """Where a recording of this session goes (a new rosbag2 directory): RUN_DIR/bags/session_<date>_<time>."""
    return RunDir(Path(run_dir)).session_bag()


def robot_description(urdf: str, with_ros2_control: bool) -> str:
    """The URDF text for robot_state_publisher; with ros2_control, so101_driver's urdf/so101.ros2_control.urdf
    <ros2_control> element inserted before </robot> (the controller manager reads it from the robot_description
    topic)."""
    if not with_ros2_control:
        return urdf
    from so101_driver.model.robot_model import ros2_control_path  # the description's files are found in one place

    path = ros2_control_path()
    block = ET.parse(path).getroot().find("ros2_control")
    if block is None:
        raise ValueError(f"{path} has no <ros2_control> element under <robot>")
    cut = urdf.rindex("</robot>")
    return urdf[:cut] + "  " + ET.tostring(block, encoding="unicode").strip() + "\n" + urdf[cut:]


def _source_config_dir() -> Path:
    return Path(__file__).resolve().parents[1] / "config"


def config_path(name: str) -> Path:
    """A file under so101_bringup's config/: the installed share directory's, else the source tree's (a file added
    since the last colcon build). A path (absolute, or with a directory part) is returned as it is."""
    if Path(name).is_absolute() or len(Path(name).parts) > 1:
        return Path(name)
    candidates = []
    try:
        from ament_index_python.packages import PackageNotFoundError, get_package_share_directory

        try:
            candidates.append(Path(get_package_share_directory(PACKAGE)) / "config" / name)
        except PackageNotFoundError:
            pass
    except ImportError:  # plain Python without ROS: the source tree only
        pass
    candidates.append(_source_config_dir() / name)
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"{name} is in none of {', '.join(map(str, candidates))}; rebuild so101_bringup")


def continued(specs: list[NodeSpec], history) -> list[NodeSpec]:
    """The nodes of a session that continues the run ``history`` (records.episode_log.RunHistory) holds: the actor
    keeps its id and continues its episode ids and evaluation schedule; simulated time goes on from the
    run's newest stamp; the demonstrations the simulated operator already drove are not driven again. A new run's
    nodes are returned as they are. (Every actor waits for the learner's weights before its first episode: in a
    resumed run they are the newest checkpoint's, never an untrained network.)"""
    if not history.episodes:
        return specs
    extra: dict[str, dict] = {
        "actor": {
            "actor_id": history.actor_id,
            "first_episode_id": history.next_episode_id,
            "training_since_evaluation": history.training_since_evaluation,
        },
        "so101_sim": {"start_time_s": history.sim_time_s},
    }
    out = []
    for spec in specs:
        parameters = {**spec.parameters, **extra.get(spec.name, {})}
        if spec.name == "so101_sim" and spec.parameter_file:
            configured = file_parameters(config_path(spec.parameter_file), spec.name).get("operator_demo_episodes", 0)
            parameters["operator_demo_episodes"] = max(0, int(configured) - history.training_episodes)
        out.append(replace(spec, parameters=parameters))
    return out
