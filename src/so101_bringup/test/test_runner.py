"""The runner (what `make sim` starts) end to end in simulation: real node processes over real DDS.

A first run stops by itself after its episodes and leaves a resumable run directory; a second run on the same
directory resumes (the learner replays its journal and loads its checkpoint) and is stopped with Ctrl-C (SIGINT),
after which the learner's checkpoint is written and no process of the run is left.
"""

from __future__ import annotations

import io
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from so101_bringup.episode_log import read_episode_log
from so101_bringup.graph import GraphOptions, build_graph
from so101_bringup.runner import Progress, StatusLine, _yaml, exit_report, main, node_command
from so101_testing.graph import wait_until

SHORT = """
/**/actor:
  ros__parameters:
    max_steps: 15
    reset_pause_s: 0.0
/**/learner:
  ros__parameters:
    warmup_transitions: 10
    batch_size: 8
    checkpoint_period_s: 600.0
"""


def run(tmp_path: Path, *args: str) -> subprocess.Popen:
    """The runner with its output in a pipe, as in a `make sim > log` (its status line prints once per episode)."""
    return subprocess.Popen(
        [sys.executable, "-m", "so101_bringup.runner", "--run-dir", str(tmp_path / "run"),
         "--params-file", str(tmp_path / "short.yaml"), *args],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )  # fmt: skip


def checkpoint_steps(run_dir: Path) -> list[int]:
    return sorted(int(p.name.split("-")[1]) for p in (run_dir / "learner" / "checkpoints").glob("ckpt-*"))


def processes_of(run_dir: Path) -> list[str]:
    out = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, check=True).stdout
    return [line for line in out.splitlines() if str(run_dir) in line and "ps -eo" not in line]


def check_recorded_session(run_dir: Path, tmp_path: Path) -> None:
    """The bag of the first run: every project topic of a sim run, the episode's transitions, and an import of it
    gives the learner exactly those transitions."""
    from rosbags.highlevel import AnyReader

    from so101_bringup.graph import RECORDED_TOPICS
    from so101_bringup.importer import import_bag

    (bag,) = (run_dir / "bags").iterdir()
    with AnyReader([bag]) as reader:
        counts: dict[str, int] = {}
        for connection in reader.connections:
            topic = connection.topic.lstrip("/")
            counts[topic] = counts.get(topic, 0) + connection.msgcount
    # Marks come only from a person's key press, diagnostics only from the hardware drivers; the rest a sim run makes.
    produced = {t.lstrip("/") for t in RECORDED_TOPICS} - {"operator/episode_mark", "diagnostics"}
    assert produced <= set(counts), sorted(produced - set(counts))
    assert counts["hilserl/transitions"] == 15 and counts["hilserl/episodes"] == 1
    assert counts["follower/joint_states"] > 100 and counts["wrist_camera/image_raw"] > 10
    result = import_bag([bag], tmp_path / "imported")
    assert result.bag_transitions == 15 and result.online_size == 15 and result.dropped == 0


def test_node_commands_quote_parameters_as_ros_reads_them():
    assert _yaml("off") == "'off'" and _yaml(True) == "true" and _yaml(0.5) == "0.5" and _yaml([1, 2]) == "[1, 2]"
    specs = build_graph(GraphOptions(run_dir="/tmp/x"))
    learner = next(s for s in specs if s.name == "learner")
    cmd = node_command(learner, "robot1")
    assert cmd[1:3] == ["-m", "so101_hilserl_learner.learner_node"]
    assert "__node:=learner" in cmd and "__ns:=/robot1" in cmd and "run_dir:='/tmp/x/learner'" in cmd
    assert cmd[cmd.index("--params-file") + 1].endswith("sim.yaml")


def episode(success, intervention_steps, steps, evaluation=False, sim_time_s=0.0):
    from so101_hilserl_interfaces.msg import EpisodeSummary

    msg = EpisodeSummary(steps=steps, intervention_steps=intervention_steps, success=success, evaluation=evaluation)
    msg.header.stamp.sec, msg.header.stamp.nanosec = int(sim_time_s), round(sim_time_s % 1 * 1e9)
    return msg


def stats(achieved: float, requested: float, behind: bool, sim_time_s: float = 0.0):
    from so101_hilserl_interfaces.msg import LearnerStats

    msg = LearnerStats(
        updates=40, updates_per_second=2.5, update_to_data_ratio=achieved, requested_utd=requested, utd_behind=behind,
        online_buffer_size=30, demo_buffer_size=12, training_transitions=55,
    )  # fmt: skip
    msg.header.stamp.sec, msg.header.stamp.nanosec = int(sim_time_s), round(sim_time_s % 1 * 1e9)
    return msg


def test_status_line_splits_success_keeps_evaluation_apart_and_shows_the_learners_utd():
    progress = Progress(simulated=True)
    assert "waiting for the first training episode" in progress.line() and "sim time" not in progress.line()
    progress.on_episode(episode(True, 5, 10, sim_time_s=12.5))  # assisted
    progress.on_episode(episode(True, 0, 20))  # autonomous
    progress.on_episode(episode(False, 0, 30))
    progress.on_episode(episode(False, 0, 30))
    progress.on_stats(stats(0.98, 1.0, False, sim_time_s=20.25))
    line = progress.line()
    assert "episode    4" in line and "success  50% (autonomous 25%, assisted 25%)" in line
    assert "intervention   6% (last 4 training)" in line  # 5 of 90 steps
    assert "evaluation" not in line  # no evaluation episode yet: no number, not 0 %
    assert "40 updates, UTD 0.98/1.00 |" in line and "buffer 30 online, 12 demo" in line and "BEHIND" not in line
    assert line.endswith("| sim time 20.2 s")
    progress.on_episode(episode(False, 0, 30, evaluation=True))
    progress.on_episode(episode(True, 0, 30, evaluation=True))
    line = progress.line()
    assert "evaluation success  50% (last 2)" in line and "(last 4 training)" in line and "episode    6" in line
    progress.on_stats(stats(0.41, 2.0, True))  # an older stamp does not move the time back
    assert "UTD 0.41/2.00 BEHIND (learner too slow)" in progress.line() and "sim time 20.2 s" in progress.line()
    progress.on_stats(stats(float("nan"), 1.0, False))  # nothing counted yet: the learner is warming up
    assert "UTD warm-up/1.00" in progress.line() and "nan" not in progress.line()
    wall = Progress(simulated=False)
    wall.on_stats(stats(1.0, 1.0, False, sim_time_s=1.7e9))
    assert "sim time" not in wall.line()  # wall-clock stamps are not simulated time


class Stream(io.StringIO):
    def __init__(self, tty: bool):
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


def test_status_line_redraws_on_a_terminal_and_prints_one_line_per_episode_elsewhere():
    progress = Progress()
    for tty in (True, False):
        stream = Stream(tty)
        status = StatusLine(stream)
        status.width = 160
        status.update(progress)  # before any episode
        progress.on_episode(episode(True, 0, 10))
        status.update(progress)
        status.update(progress)  # refreshes without a new episode
        progress.on_episode(episode(False, 3, 10))
        progress.on_episode(episode(False, 0, 10))  # two episodes between refreshes: one line, with the count
        status.update(progress)
        status.end()
        out = stream.getvalue()
        if tty:
            assert out.count("\r") == 4 and out.endswith("\n") and out.count("\n") == 1
            assert all(len(drawn) == 160 for drawn in out.rstrip("\n").split("\r")[1:])
        else:
            lines = out.splitlines()
            assert "\r" not in out and [" ".join(line.split("|")[0].split()) for line in lines] == [
                "episode 1",
                "episode 3",
            ]
            assert len(lines) == 2 and out.endswith("\n")
        progress = Progress()


def test_a_node_exit_is_reported_with_its_code_and_the_end_of_its_log(tmp_path):
    log = tmp_path / "follower.log"
    log.write_text("".join(f"line {i}\n" for i in range(30)) + "CalibrationError: no LeRobot calibration\n")
    report = exit_report("follower", 2, log)
    first, *tail = report.splitlines()
    assert first == f"node follower exited with code 2; the last lines of {log}:"
    assert len(tail) == 10 and tail[-1] == "    CalibrationError: no LeRobot calibration" and tail[0] == "    line 21"
    assert "cannot read its log" in exit_report("leader", 1, tmp_path / "missing.log")


def test_real_mode_without_the_arms_ids_is_refused_before_anything_starts(tmp_path, capsys):
    ports = ["--follower-port", "a", "--leader-port", "b", "--camera-source", "0", "--reward-model", "m"]
    args = ["--mode", "real", "--run-dir", str(tmp_path / "run"), "--domain-id", "1", *ports]
    assert main([*args, "--follower-id", "f"]) == 2
    assert capsys.readouterr().err.startswith("error: real mode needs leader_id: ")
    assert not (tmp_path / "run").exists()


def test_a_run_stops_after_its_episodes_and_a_second_run_resumes_and_stops_cleanly_on_ctrl_c(tmp_path):
    (tmp_path / "short.yaml").write_text(SHORT)
    run_dir = tmp_path / "run"
    first = run(tmp_path, "--episodes", "1", "--record")
    out, _ = first.communicate(timeout=240)
    assert first.returncode == 0, out
    assert "episode    1" in out and "resume with the same --run-dir" in out
    assert "\r" not in out  # a pipe gets whole lines, not a redrawn status line
    assert {p.name for p in (run_dir / "logs").iterdir()} >= {"so101_sim.log", "actor.log", "learner.log"}
    steps = checkpoint_steps(run_dir)
    assert steps, "Ctrl-C/stop must leave a checkpoint"
    assert not processes_of(run_dir)
    check_recorded_session(run_dir, tmp_path)
    (row,) = read_episode_log(run_dir / "episodes.csv")  # the episode, as it arrived
    assert row.steps == 15 and not row.evaluation and row.sim_time_s > 0 and 0 < row.wall_time_s < 240

    second = run(tmp_path)
    learner_log = run_dir / "logs" / "learner.log"
    wait_until(lambda: re.search(r"replayed (\d+) journaled", learner_log.read_text()), 120.0, "the journal replay")
    replayed = int(re.search(r"replayed (\d+) journaled", learner_log.read_text()).group(1))
    assert replayed >= 15  # the first run's episode
    time.sleep(3.0)
    os.killpg(second.pid, signal.SIGINT)  # Ctrl-C in the terminal signals the whole foreground group
    out, _ = second.communicate(timeout=120)
    assert second.returncode == 0, out
    assert max(checkpoint_steps(run_dir)) >= max(steps)
    wait_until(lambda: not processes_of(run_dir), 10.0, "no process of the run left")
    rows = read_episode_log(run_dir / "episodes.csv")  # the resumed run appended (or had no episode yet)
    key = ("actor_id", "episode_id", "wall_time_s")
    assert [getattr(rows[0], k) for k in key] == [getattr(row, k) for k in key]
    assert all(r.wall_time_s >= row.wall_time_s for r in rows)

    # The report of this short run: the episode curves (from the recorded bag) and the learner's losses.
    from so101_bringup.report import main as report

    assert report([str(run_dir), "--out", str(tmp_path / "report")]) == 0
    pngs = {p.name: p for p in (tmp_path / "report").glob("*.png")}
    assert {"success_rate.png", "intervention_rate.png", "episode_return.png", "losses.png"} <= set(pngs)
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and p.stat().st_size > 5000 for p in pngs.values())
