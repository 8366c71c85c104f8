"""A run stops or holds whole: faults of one part, in the real lockstep simulation graph under the runner.

A learner that is stopped (SIGSTOP) or killed holds simulated time within one control period of its last report, and
the simulation's log names it; a stopped learner that goes on lets the run go on. A killed runner takes every node
with it, and a second runner on a run directory in use starts nothing.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from rosgraph_msgs.msg import Clock
from test_runner import SHORT, processes_of

from so101_contract import qos
from so101_contract.control import CONTROL_PERIOD_S
from so101_contract.sim_time import PROGRESS_TOPIC
from so101_contract.stamps import stamp_to_ns
from so101_hilserl_interfaces.msg import LearnerProgress
from so101_testing.graph import wait_until

TICK_NS = 10_000_000  # the simulation's 100 Hz tick
LEAD_NS = round(CONTROL_PERIOD_S * 1e9)  # the sim's lockstep_learner_lead_s default: one control period


def start_runner(tmp_path: Path, run_dir: Path, log_name: str) -> tuple[subprocess.Popen, Path]:
    (tmp_path / "short.yaml").write_text(SHORT)
    log = tmp_path / log_name
    with open(log, "wb") as out:
        runner = subprocess.Popen(
            [sys.executable, "-m", "so101_bringup.runner", "--run-dir", str(run_dir),
             "--params-file", str(tmp_path / "short.yaml")],
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    return runner, log


def children(pid: int) -> dict[int, str]:
    """The processes ``pid`` started: {pid: command line}."""
    out = subprocess.run(["ps", "-ww", "--ppid", str(pid), "-o", "pid=,args="], capture_output=True, text=True)
    return {int(line.split()[0]): line.split(maxsplit=1)[1] for line in out.stdout.splitlines() if line.strip()}


def alive(pids) -> list[int]:
    found = []
    for pid in pids:
        try:
            os.kill(pid, 0)
            found.append(pid)
        except ProcessLookupError:
            pass
    return found


def newest_ns(recorder, stamp) -> int:
    return max((stamp_to_ns(stamp(m)) for m in recorder.messages), default=0)


def test_a_stopped_or_killed_learner_holds_the_simulation_within_one_control_period(tmp_path, probe):
    clock = probe.subscribe(Clock, "/clock", qos.CLOCK)
    progress = probe.subscribe(LearnerProgress, PROGRESS_TOPIC, qos.LATCHED)
    run_dir = tmp_path / "run"
    runner, log = start_runner(tmp_path, run_dir, "runner.log")
    sim_log = run_dir / "logs" / "so101_sim.log"
    try:
        wait_until(
            lambda: (
                (run_dir / "episodes.csv").is_file() and len((run_dir / "episodes.csv").read_text().splitlines()) >= 2
            ),
            240,
            "a first episode",
        )
        nodes = children(runner.pid)
        (learner,) = [pid for pid, args in nodes.items() if "so101_hilserl_learner.learner_node" in args]

        def clock_ns() -> int:
            return newest_ns(clock, lambda m: m.clock)

        def progress_ns() -> int:
            return newest_ns(progress, lambda m: m.header.stamp)

        os.kill(learner, signal.SIGSTOP)
        silent = "waiting for the learner, silent since"
        wait_until(lambda: silent in sim_log.read_text(), 60, "the simulation to say it holds for the learner")
        time.sleep(2.0)  # what was in flight when the learner stopped arrives; then nothing moves
        held_at = clock_ns()
        assert held_at - progress_ns() <= LEAD_NS + TICK_NS, (held_at, progress_ns())
        time.sleep(2.0)
        assert clock_ns() == held_at  # held, not slowed

        os.kill(learner, signal.SIGCONT)  # the learner goes on, and so does the run
        wait_until(lambda: clock_ns() > held_at + 10 * LEAD_NS, 120, "simulated time to go on")
        assert "the learner reports again" in sim_log.read_text()

        os.kill(learner, signal.SIGKILL)
        runner.wait(timeout=90)
        out = log.read_text()
        assert runner.returncode == 1 and "node learner exited with code -9" in out, out
        assert clock_ns() - progress_ns() <= LEAD_NS + TICK_NS
        wait_until(lambda: not alive(nodes), 10.0, "no node of the run left")
    finally:
        for pid in alive(nodes if "nodes" in locals() else ()):  # a stopped node must not outlive a failed test
            os.kill(pid, signal.SIGCONT)
        if runner.poll() is None:
            os.killpg(runner.pid, signal.SIGKILL)
            runner.wait(timeout=10)


def test_a_killed_runner_takes_its_nodes_and_a_run_directory_in_use_starts_nothing(tmp_path):
    run_dir = tmp_path / "run"
    runner, _ = start_runner(tmp_path, run_dir, "first.log")
    try:
        wait_until(lambda: "waiting for" in (run_dir / "logs" / "actor.log").read_text()
                   if (run_dir / "logs" / "actor.log").is_file() else False, 120, "the actor to be up")  # fmt: skip
        nodes = children(runner.pid)
        assert len(nodes) == 5, nodes  # sim, intervention, actor, learner, FK

        second = subprocess.run(
            [sys.executable, "-m", "so101_bringup.runner", "--run-dir", str(run_dir), "--params-file",
             str(tmp_path / "short.yaml")], capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert second.returncode == 2 and second.stdout == "", second.stdout + second.stderr
        assert second.stderr.startswith(f"error: {run_dir} is in use by the runner (pid {runner.pid}")
        assert second.stderr.count("\n") == 1
        assert children(runner.pid) == nodes  # the first run goes on; the second printed no "processes:" line

        os.kill(runner.pid, signal.SIGKILL)  # the runner alone: its nodes run in sessions of their own
        runner.wait(timeout=10)
        killed = time.monotonic()
        wait_until(lambda: not alive(nodes), 5.0, "every node of the killed runner to exit")
        assert time.monotonic() - killed < 5.0 and not processes_of(run_dir)
    finally:
        if runner.poll() is None:
            os.killpg(runner.pid, signal.SIGKILL)
            runner.wait(timeout=10)


def test_ctrl_c_at_any_moment_of_start_up_leaves_no_traceback_and_no_process(tmp_path):
    """Ctrl-C signals the terminal's whole foreground group: the runner and, here, its nodes' sessions are apart, so
    the runner's ordered stop reaches them. At 1, 2, 4 and 8 s the nodes are importing torch, building, connecting."""
    for delay_s in (1.0, 2.0, 4.0, 8.0):
        run_dir = tmp_path / f"run_{delay_s:g}"
        runner, log = start_runner(tmp_path, run_dir, f"runner_{delay_s:g}.log")
        nodes: dict[int, str] = {}
        deadline = time.monotonic() + delay_s
        while time.monotonic() < deadline:  # the nodes it has started so far (none before its imports are done)
            nodes.update(children(runner.pid))
            time.sleep(0.05)
        os.killpg(runner.pid, signal.SIGINT)
        try:
            runner.wait(timeout=60)
        finally:
            if runner.poll() is None:
                os.killpg(runner.pid, signal.SIGKILL)
        wait_until(lambda nodes=nodes: not alive(nodes), 15.0, f"the nodes to exit after Ctrl-C at {delay_s:g} s")
        logs = [log, *sorted((run_dir / "logs").glob("*.log"))] if (run_dir / "logs").is_dir() else [log]
        for path in logs:
            assert "Traceback" not in path.read_text(), f"Ctrl-C at {delay_s:g} s: {path}:\n{path.read_text()}"
        assert runner.returncode in (0, 130, -signal.SIGINT), (delay_s, runner.returncode, log.read_text())
