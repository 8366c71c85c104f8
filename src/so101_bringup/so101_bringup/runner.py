"""Run the HIL-SERL graph as processes, for machines without the ROS command-line tools (`make sim` uses it).

    python -m so101_bringup.runner --episodes 20 --record        # simulation: stop after 20 episodes, record
    python -m so101_bringup.runner --mode real --reward-model runs/reward/model --follower-port ... --leader-port ...

The same nodes and parameters as `ros2 launch so101_bringup hilserl.launch.py` (both read so101_bringup.graph), a
live status line, one episodes.csv row per episode; Ctrl-C stops the actor, then the learner (checkpoint), then the
rest. The same run directory again resumes the run (docs/architecture.md, "A run directory")."""

from __future__ import annotations

import so101_contract.quiet_interrupt  # first: a Ctrl-C during the heavy imports below is noted, not raised

# isort: split

import argparse
import math
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field, replace
from pathlib import Path

from so101_bringup.graph import GraphOptions, NodeSpec, build_graph, config_path, continued, session_bag_path
from so101_bringup.profiles import PROFILE_CHOICES, choose, write_params
from so101_bringup.records.episode_log import EpisodeLog, EpisodeRow, RunHistory
from so101_bringup.ros_env import RosEnvironmentError, node_environment
from so101_contract.cli import add_config_arguments, config_from_arguments, did_you_mean, nonnegative_int
from so101_contract.outcomes import Outcome, rates
from so101_contract.parent_death import PARENT_PID_ENV
from so101_contract.ros_domain import claim_domain
from so101_contract.run_dir import RunDir
from so101_hilserl_learner.run_lock import RunDirBusy, RunDirLock

STOP_ORDER = ("actor", "recorder", "learner")  # the actor stops producing first; the learner checkpoints last-but-rest


def node_command(spec: NodeSpec, namespace: str = "") -> list[str]:
    """`python -m module --ros-args -r __node:=name -r a:=b --params-file f -p k:=v`: what `ros2 run` would run."""
    cmd = [sys.executable, "-m", spec.module, "--ros-args", "--enclave", spec.enclave, "-r", f"__node:={spec.name}"]
    if namespace:
        cmd += ["-r", f"__ns:=/{namespace.strip('/')}"]
    for source, target in spec.remappings:
        cmd += ["-r", f"{source}:={target}"]
    if spec.parameter_file:
        cmd += ["--params-file", str(config_path(spec.parameter_file))]
    for key, value in spec.parameters.items():
        cmd += ["-p", f"{key}:={_yaml(value)}"]
    return cmd


def _yaml(value) -> str:
    """A parameter value as ROS reads overrides (YAML): strings quoted, so 'off' or '1.0' stay strings."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_yaml(v) for v in value) + "]"
    return "'" + str(value).replace("'", "''") + "'"


WINDOW = 20  # episodes of each kind (training, evaluation) in the status line's rates


def _stamp_s(msg) -> float:
    return msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9


STATUS_WIDTH = 79  # the status line fits an 80-column terminal


def _percent(value: float) -> str:
    return f"{100 * value:3.0f}%"


@dataclass
class Progress:
    """What the status line shows, fed by hilserl/episodes and hilserl/learner_stats (and, on resume, by the run's
    earlier rows). ``simulated``: the graph runs in simulated time, whose newest reading (the stamps of those
    messages) the line then shows."""

    simulated: bool = False
    episodes: int = 0
    training: deque = field(default_factory=lambda: deque(maxlen=WINDOW))  # so101_contract.outcomes.Outcome
    evaluation: deque = field(default_factory=lambda: deque(maxlen=WINDOW))
    stats: object = None  # the newest LearnerStats (None before the first)
    sim_time_s: float = math.nan

    @classmethod
    def continuing(cls, history: RunHistory, simulated: bool) -> Progress:
        """The status of a resumed run: its episode count and windows go on from the run's earlier sessions."""
        progress = cls(simulated=simulated, episodes=history.episodes)
        for row in history.rows:
            (progress.evaluation if row.evaluation else progress.training).append(row.outcome)
        if history.rows and simulated:
            progress.sim_time_s = history.sim_time_s
        return progress

    def on_episode(self, msg) -> None:
        self.episodes += 1
        outcome = Outcome.from_msg(msg)
        (self.evaluation if outcome.evaluation else self.training).append(outcome)
        self._saw_time(msg)

    def on_stats(self, msg) -> None:
        self.stats = msg
        self._saw_time(msg)

    def _saw_time(self, msg) -> None:
        stamp = _stamp_s(msg)
        if math.isnan(self.sim_time_s) or stamp > self.sim_time_s:
            self.sim_time_s = stamp

    def line(self) -> str:
        """``ep 12  eval  40%  interv  25%  train  60%  UTD 0.98/1.00  sim 1234s``: at most STATUS_WIDTH
        characters. Rates over the last WINDOW episodes of each kind; "--" before the first. UTD: achieved /
        requested, ``low`` when the learner falls behind (its log says why)."""
        training = rates(self.training) if self.training else None
        evaluation = rates(self.evaluation) if self.evaluation else None
        parts = [
            f"ep {self.episodes}",
            f"eval {_percent(evaluation.success) if evaluation else '  --'}",
            f"interv {_percent(training.intervention_fraction) if training else '  --'}",
            f"train {_percent(training.success) if training else '  --'}",
        ]
        s = self.stats
        if s is None:
            parts.append("UTD --")
        else:
            achieved = float(s.update_to_data_ratio)  # NaN until a counted transition
            text = "warm-up" if math.isnan(achieved) else f"{achieved:.2f}"
            parts.append(f"UTD {text}/{float(s.requested_utd):.2f}" + (" low" if s.utd_behind else ""))
        if self.simulated and not math.isnan(self.sim_time_s):
            parts.append(f"sim {self.sim_time_s:.0f}s")
        line = "  ".join(parts)
        return line if len(line) <= STATUS_WIDTH else line[: STATUS_WIDTH - 1] + "~"


class StatusLine:
    """The status line on a terminal: redrawn in place. In a file or a pipe (a `make sim` log), carriage returns
    would pile up one full line per refresh, so there it prints one line per finished episode instead."""

    def __init__(self, stream, tty: bool | None = None):
        self.stream = stream
        self.tty = stream.isatty() if tty is None else tty
        # one character short of the terminal, so the redrawn line never wraps
        self.width = max(40, min(STATUS_WIDTH, shutil.get_terminal_size((80, 24)).columns - 1))
        self.printed_episodes = 0
        self.drawn = False  # a redrawn line is on the terminal without its newline

    def update(self, progress: Progress) -> None:
        if self.tty:
            self.stream.write("\r" + progress.line()[: self.width].ljust(self.width))
            self.drawn = True
        elif progress.episodes > self.printed_episodes:
            self.stream.write(progress.line() + "\n")
            self.printed_episodes = progress.episodes
        self.stream.flush()

    def end(self) -> None:
        """Ends a redrawn line, so the next message starts on its own line."""
        if self.drawn:
            self.stream.write("\n")
            self.stream.flush()
            self.drawn = False


def exit_report(name: str, code: int, log: Path, lines: int = 10) -> str:
    """Why the run stops: which node, its exit code, and the last lines of its log."""
    try:
        tail = log.read_text(errors="replace").splitlines()[-lines:]
    except OSError as err:
        tail = [f"(cannot read its log: {err})"]
    body = "\n".join("    " + line for line in tail) if tail else "    (its log is empty)"
    return f"node {name} exited with code {code}; the last lines of {log}:\n{body}"


class Runner:
    def __init__(self, specs: list[NodeSpec], run_dir: Path, env: dict[str, str], namespace: str = "", record=False):
        self.specs, self.run_dir, self.env, self.namespace, self.record = specs, run_dir, env, namespace, record
        self.processes: dict[str, subprocess.Popen] = {}
        self.logs = RunDir(run_dir).logs

    def start(self) -> None:
        self.logs.mkdir(parents=True, exist_ok=True)
        commands = {spec.name: node_command(spec, self.namespace) for spec in self.specs}
        if self.record:  # the rosbags recorder: `ros2 bag record` needs a ROS install, this does not
            bag = session_bag_path(self.run_dir)
            bag.parent.mkdir(parents=True, exist_ok=True)
            commands["recorder"] = [sys.executable, "-m", "so101_bringup.records.recorder", "--out", str(bag)]
            if self.namespace:
                commands["recorder"] += ["--ros-args", "-r", f"__ns:=/{self.namespace.strip('/')}"]
        for name, cmd in commands.items():
            log = open(self.logs / f"{name}.log", "ab")  # the child keeps its own copy of the fd
            self.processes[name] = subprocess.Popen(
                cmd, env={**self.env, PARENT_PID_ENV: str(os.getpid())}, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
            log.close()

    def exited(self) -> dict[str, int]:
        return {name: p.returncode for name, p in self.processes.items() if p.poll() is not None}

    def stop(self, grace_s: float = 30.0) -> None:
        """SIGTERM in order (actor, recorder, learner, then the rest), each waited for; SIGKILL what is left.

        node_main stops a running node on SIGTERM exactly as on SIGINT; a node still starting its interpreter (a
        Ctrl-C a moment after the start) ends silently on SIGTERM, where SIGINT would abort Python's own start-up
        with a fatal-error traceback."""
        names = [n for n in STOP_ORDER if n in self.processes] + [n for n in self.processes if n not in STOP_ORDER]
        for name in names:
            process = self.processes[name]
            if process.poll() is None:
                _signal_group(process, signal.SIGTERM)
                try:
                    process.wait(timeout=grace_s if name == "learner" else 10.0)
                except subprocess.TimeoutExpired:
                    _signal_group(process, signal.SIGKILL)
                    process.wait(timeout=5.0)
            _signal_group(process, signal.SIGKILL)  # any grandchild left in its group


def _signal_group(process: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(process.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


class EpisodeRecorder:
    """hilserl/episodes -> the status line and RUN_DIR/episodes.csv (one row per episode, with the newest
    LearnerStats' counters)."""

    def __init__(self, progress: Progress, log: EpisodeLog | None):
        self.progress, self.log = progress, log

    def on_episode(self, msg) -> None:
        self.progress.on_episode(msg)
        if self.log is not None:
            row = EpisodeRow.from_messages(msg, self.progress.stats, self.log.wall_time_s(), self.log.session)
            self.log.append(row)

    def on_stats(self, msg) -> None:
        self.progress.on_stats(msg)


def watch_progress(recorder: EpisodeRecorder, stop: threading.Event, namespace: str) -> None:
    """A small rclpy node in this process that feeds the status line and episodes.csv. It takes the wall clock:
    the stamps it reads carry simulated time, and it has no timer that simulated time should drive."""
    import rclpy
    from rclpy.executors import SingleThreadedExecutor

    from so101_contract import qos
    from so101_hilserl_interfaces.msg import EpisodeSummary, LearnerStats

    context = rclpy.Context()
    rclpy.init(context=context, args=[])
    node = rclpy.create_node("so101_runner_status", namespace=namespace or "/", context=context)
    node.create_subscription(EpisodeSummary, "hilserl/episodes", recorder.on_episode, qos.EVENTS)
    node.create_subscription(LearnerStats, "hilserl/learner_stats", recorder.on_stats, qos.EVENTS)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    try:
        while not stop.is_set():
            executor.spin_once(timeout_sec=0.2)
    finally:
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown(context=context)


def prepare_run_dir(run_dir: Path) -> None:
    """The run directory and its logs/ folder, created now: a --run-dir that is a file or cannot be written is one
    error line before any process starts, not a traceback from the first log file."""
    if run_dir.exists() and not run_dir.is_dir():
        raise ValueError(f"--run-dir {run_dir}: is a file, not a directory; give the run's directory (made if missing)")
    try:
        RunDir(run_dir).logs.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        cause = f"{err.strerror}: {err.filename}" if err.strerror and err.filename else str(err)
        raise ValueError(f"--run-dir {run_dir}: cannot create it ({cause}); give a writable directory") from None
    if not os.access(RunDir(run_dir).logs, os.W_OK | os.X_OK):
        raise ValueError(f"--run-dir {run_dir}: {RunDir(run_dir).logs} is not writable; give a writable directory")


def sim_profile(name: str, run_dir: Path, checkpoint: str) -> tuple[str, str]:
    """The simulation's size for this machine: its parameter file in RUN_DIR and the start checkpoint (a profile's
    weak pretrained start, made once in RUN_DIR/pretrain and reused on resume). Prints what it chose."""
    profile = choose(name)
    params = write_params(run_dir / "params" / f"sim_{profile.name}.yaml", profile)
    agent = run_dir / "pretrain" / "agent.safetensors"
    pretrain = not checkpoint and profile.pretrain_steps > 0
    stage = profile.stage if profile.stage is not None else "from config/sim.yaml"
    start = str(agent) if pretrain else checkpoint or "none (a random policy; the operator drives the first episodes)"
    print(f"simulation: {profile.name} configuration ({profile.description}); curriculum stage {stage}; start "
          f"checkpoint {start}", flush=True)  # fmt: skip
    if pretrain and not agent.is_file():
        print(f"pretraining the start: {profile.pretrain_steps} env steps in the Gymnasium task (minutes) ...",
              flush=True)  # fmt: skip
        with open(run_dir / "pretrain.log", "ab") as out:
            subprocess.run([sys.executable, *profile.pretrain_command(agent.parent, 0, eval_episodes=10)],
                           check=True, stdout=out, stderr=subprocess.STDOUT)  # fmt: skip
    checkpoint = str(agent) if pretrain else checkpoint
    return str(params), checkpoint


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m so101_bringup.runner",
        description=__doc__.split("\n\n")[0],
        epilog="The run directory keeps logs/, learner/ and bags/; run again with the same one to resume.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        allow_abbrev=False,
    )
    # The graph's options are GraphOptions' settings (the launch file's arguments too); the runner adds its own.
    # Not flags here: max_episodes (--episodes counts the run's episodes, all sessions together) and
    # use_ros2_control (the controller manager needs a ROS install: ros2 launch).
    add_config_arguments(parser, GraphOptions, skip=("max_episodes", "use_ros2_control"))
    parser.add_argument(
        "--episodes",
        type=nonnegative_int,
        default=0,
        help="stop once the run holds this many episodes, all its sessions together (0 = until Ctrl-C)",
    )
    parser.add_argument("--domain-id", type=int, default=None, help="ROS_DOMAIN_ID (default: the environment's)")
    parser.add_argument("--no-status", action="store_true", help="no live status line")
    parser.add_argument(
        "--profile",
        choices=PROFILE_CHOICES,
        default="auto",
        help="sim mode without --params-file: the graph's size; auto = full with a CUDA GPU, else cpu (the size "
        "make bench-hil measures on 2 cores, from a start pretrained first in RUN_DIR/pretrain)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    if so101_contract.quiet_interrupt.take_over():  # Ctrl-C while the modules loaded: nothing started, stop quietly
        return 130
    parser = build_parser()
    args = parse_args(parser, argv)

    run_dir = Path(args.run_dir).resolve()
    lock = None
    try:
        env = node_environment(domain_id=args.domain_id)
        env.setdefault("FASTRTPS_DEFAULT_PROFILES_FILE", str(config_path("fastdds.xml")))
        if not claim_domain(int(env["ROS_DOMAIN_ID"])):  # a test or another run on this domain: no cross-talk
            raise ValueError(
                f"ROS_DOMAIN_ID={env['ROS_DOMAIN_ID']} is in use by another run or test on this machine; give "
                "another with --domain-id (make sim: ROS_DOMAIN_ID=N)"
            )
        options = config_from_arguments(GraphOptions, args, run_dir=str(run_dir), max_episodes=args.episodes)
        build_graph(options)  # the options' own checks, before anything is made
        prepare_run_dir(run_dir)  # after the graph's checks: a refused run leaves no directory behind
        lock = RunDirLock(run_dir, "the runner")  # one run per directory: refused before anything starts
        episode_log = EpisodeLog(RunDir(run_dir).episodes)  # a resumed run appends; a foreign header is refused here
        for repair in episode_log.repairs:
            print(f"warning: {repair}", file=sys.stderr, flush=True)
        history = episode_log.history
        if args.episodes and history.episodes >= args.episodes:
            print(f"{run_dir} already holds {history.episodes} episodes (--episodes counts the run's episodes, all "
                  "sessions together): nothing to do; give a larger --episodes to go on", flush=True)  # fmt: skip
            lock.release()
            return 0
        remaining = args.episodes - history.episodes if args.episodes else 0
        options = replace(options, max_episodes=remaining)
        if args.mode == "sim" and not args.params_file:  # this machine's size, once the run directory is sound
            params, checkpoint = sim_profile(args.profile, run_dir, args.initial_checkpoint)
            options = replace(options, params_file=params, initial_checkpoint=checkpoint)
        specs = continued(build_graph(options), history)
        if history.episodes:
            print(f"resuming: session {episode_log.session}, after {history.episodes} episodes (actor "
                  f"{history.actor_id}, next episode {history.next_episode_id}, sim time {history.sim_time_s:.1f} s)"
                  + (f"; {remaining} more to reach {args.episodes}" if remaining else ""), flush=True)  # fmt: skip
    except (RosEnvironmentError, ValueError, RunDirBusy) as err:
        print(f"error: {err}", file=sys.stderr)
        if lock is not None:
            lock.release()
        return 2
    except subprocess.CalledProcessError:
        print(f"error: pretraining the start failed; see {run_dir / 'pretrain.log'}", file=sys.stderr)
        lock.release()
        return 1
    os.environ.update({k: env[k] for k in ("ROS_DOMAIN_ID", "ROS_AUTOMATIC_DISCOVERY_RANGE") if k in env})
    os.environ["FASTRTPS_DEFAULT_PROFILES_FILE"] = env["FASTRTPS_DEFAULT_PROFILES_FILE"]

    runner = Runner(specs, run_dir, env, args.namespace, args.record)
    simulated = any(spec.parameters.get("use_sim_time") for spec in specs)
    progress, stop = Progress.continuing(history, simulated), threading.Event()
    interrupted = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: interrupted.set())
    runner.start()
    print(f"run directory {run_dir}; processes: {', '.join(runner.processes)}; logs in {runner.logs}", flush=True)
    recorder = EpisodeRecorder(progress, episode_log)
    watcher = threading.Thread(target=watch_progress, args=(recorder, stop, args.namespace), daemon=True)
    watcher.start()
    status = StatusLine(sys.stdout)
    code = 0
    try:
        while not interrupted.is_set():
            time.sleep(0.5)
            if not args.no_status:
                status.update(progress)
            exited = runner.exited()
            # The actor exits 0 after its last episode; any other exit (a driver that could not start, ...) stops
            # the run: the rest must not go on without it.
            failed = {name: rc for name, rc in exited.items() if not (name == "actor" and rc == 0)}
            for name, rc in failed.items():
                status.end()
                print(exit_report(name, rc, runner.logs / f"{name}.log"), flush=True)
            if failed:
                code = 1
            if exited:
                break
    except KeyboardInterrupt:
        pass
    finally:
        status.end()
        print("stopping: actor, then the learner (checkpoint), then the rest ...", flush=True)
        runner.stop()
        stop.set()
        watcher.join(timeout=5.0)
        if not watcher.is_alive():  # else it may still write a row: the file is flushed per row and closed at exit
            episode_log.close()
    print(progress.line())
    print(f"stopped; resume with the same --run-dir {run_dir}")
    lock.release()
    return code


def parse_args(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """The flags, with an unknown one refused in one line naming the closest known flag (no abbreviations: a
    misspelled flag must not silently become another)."""
    args, unknown = parser.parse_known_args(argv)
    if unknown:  # one line, not the whole usage: the closest flag is the fix
        flags = [f for action in parser._actions for f in action.option_strings if f.startswith("--") and f != "--help"]
        hint = did_you_mean(unknown[0].split("=", 1)[0], flags) or "; see --help"
        print(f"{parser.prog}: error: unknown argument {unknown[0]}{hint}", file=sys.stderr)
        sys.exit(2)
    return args


if __name__ == "__main__":
    sys.exit(main())
