"""The runner (what `make sim` starts) end to end in simulation: real node processes over real DDS.

A first run stops by itself after its episodes and leaves a resumable run directory; a second run on the same
directory resumes (the learner replays its journal and loads its checkpoint) and is stopped with Ctrl-C (SIGINT),
after which the learner's checkpoint is written and no process of the run is left.
"""

from __future__ import annotations

import io
import itertools
import subprocess
import sys
from pathlib import Path

from so101_bringup.graph import GraphOptions, build_graph
from so101_bringup.records.episode_log import read_episode_log
from so101_bringup.runner import Progress, StatusLine, _yaml, exit_report, main, node_command

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
    """Processes whose command line names the run directory (the runner, the learner, the recorder). -ww: ps cuts
    lines at the terminal's width (80 columns under pytest), which would hide every one of them."""
    out = subprocess.run(["ps", "-ww", "-eo", "args"], capture_output=True, text=True, check=True).stdout
    return [line for line in out.splitlines() if str(run_dir) in line and "ps -eo" not in line]


def check_recorded_session(run_dir: Path, tmp_path: Path) -> None:
    """The bag of the first run: every project topic of a sim run, its 2 episodes' transitions, and an import of it
    gives the learner exactly those transitions."""
    from rosbags.highlevel import AnyReader

    from so101_bringup.graph import RECORDED_TOPICS
    from so101_bringup.records.importer import import_bag

    (bag,) = (run_dir / "bags").iterdir()
    with AnyReader([bag]) as reader:
        counts: dict[str, int] = {}
        for connection in reader.connections:
            topic = connection.topic.lstrip("/")
            counts[topic] = counts.get(topic, 0) + connection.msgcount
    # Marks come only from a person's key press, diagnostics only from the hardware drivers; the rest a sim run makes.
    produced = {t.lstrip("/") for t in RECORDED_TOPICS} - {"operator/episode_mark", "diagnostics"}
    assert produced <= set(counts), sorted(produced - set(counts))
    assert counts["hilserl/transitions"] == 30 and counts["hilserl/episodes"] == 2
    assert counts["follower/joint_states"] > 200 and counts["wrist_camera/image_raw"] > 20
    result = import_bag([bag], tmp_path / "imported")
    assert result.bag_transitions == 30 and result.online_size == 30 and result.dropped == 0


def test_node_commands_quote_parameters_as_ros_reads_them():
    assert _yaml("off") == "'off'" and _yaml(True) == "true" and _yaml(0.5) == "0.5" and _yaml([1, 2]) == "[1, 2]"
    specs = build_graph(GraphOptions(run_dir="/tmp/x"))
    learner = next(s for s in specs if s.name == "learner")
    cmd = node_command(learner, "robot1")
    assert cmd[1:3] == ["-m", "so101_hilserl_learner.learner_node"]
    assert "__node:=learner" in cmd and "__ns:=/robot1" in cmd and "run_dir:='/tmp/x/learner'" in cmd
    assert cmd[cmd.index("--params-file") + 1].endswith("sim.yaml")
    assert cmd[cmd.index("--enclave") + 1] == "/so101/learner"  # SROS2 keys and permissions, when enabled


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


def test_status_line_fits_80_columns_keeps_evaluation_apart_and_shows_the_learners_utd():
    progress = Progress(simulated=True)
    assert progress.line() == "ep 0  eval   --  interv   --  train   --  UTD --"  # no time before a stamp
    progress.on_episode(episode(True, 5, 10, sim_time_s=12.5))  # assisted
    progress.on_episode(episode(True, 0, 20))  # autonomous
    progress.on_episode(episode(False, 0, 30))
    progress.on_episode(episode(False, 0, 30))
    progress.on_stats(stats(0.98, 1.0, False, sim_time_s=20.25))
    # no evaluation episode yet: no number, not 0 %; intervention 5 of 90 steps
    assert progress.line() == "ep 4  eval   --  interv   6%  train  50%  UTD 0.98/1.00  sim 20s"
    progress.on_episode(episode(False, 0, 30, evaluation=True))
    progress.on_episode(episode(True, 0, 30, evaluation=True))
    assert progress.line().startswith("ep 6  eval  50%  interv   6%  train  50%  ")
    progress.on_stats(stats(0.41, 2.0, True))  # an older stamp does not move the time back
    assert progress.line().endswith("  UTD 0.41/2.00 low  sim 20s")
    progress.on_stats(stats(float("nan"), 1.0, False))  # nothing counted yet: the learner is warming up
    assert "UTD warm-up/1.00" in progress.line() and "nan" not in progress.line()
    wall = Progress(simulated=False)
    wall.on_stats(stats(1.0, 1.0, False, sim_time_s=1.7e9))
    assert "sim" not in wall.line()  # wall-clock stamps are not simulated time
    long = Progress(simulated=True, episodes=123_456)  # the widest figures of a long run (11 days simulated)
    long.on_episode(episode(True, 100, 100, sim_time_s=999_999.0))
    long.on_episode(episode(True, 0, 100, evaluation=True))
    long.on_stats(stats(10.5, 20.0, True, sim_time_s=999_999.0))
    assert long.line() == "ep 123458  eval 100%  interv 100%  train 100%  UTD 10.50/20.00 low  sim 999999s"
    assert len(long.line()) <= 79


def test_a_resumed_status_line_goes_on_from_the_runs_rows():
    from so101_bringup.records.episode_log import EpisodeRow, RunHistory

    def row(episode_id, evaluation, success):
        return EpisodeRow(
            wall_time_s=1.0, sim_time_s=10.0 * episode_id, actor_id="a", episode_id=episode_id,
            evaluation=evaluation, success=success, steps=10, intervention_steps=0, episode_return=1.0,
            end_reason="timeout", policy_version=1, learner_updates=5, achieved_utd=1.0, requested_utd=1.0,
            training_transitions=10,
        )  # fmt: skip

    history = RunHistory.of([row(i, i % 3 == 0, i % 2 == 0) for i in range(1, 31)])
    progress = Progress.continuing(history, simulated=True)
    assert progress.episodes == 30 and len(progress.training) == 20 and len(progress.evaluation) == 10
    assert progress.line().startswith("ep 30  eval  50%  ") and progress.line().endswith("  sim 300s")


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
        status.width = 79
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
            assert all(len(drawn) == 79 for drawn in out.rstrip("\n").split("\r")[1:])
        else:
            lines = out.splitlines()
            assert "\r" not in out and [line.split("  ")[0] for line in lines] == ["ep 1", "ep 3"]
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


def test_a_run_stops_after_its_episodes_and_a_resumed_run_continues_it(tmp_path):
    """A run of 2 episodes, resumed to 4: one run. The resumed actor starts on weights at least as new as the last
    checkpoint's, versions and update counts never go back, episode ids and simulated time continue, and the report
    counts the whole run with the checkpoint's updates."""
    from so101_hilserl_learner.checkpoint import load_newest_good

    (tmp_path / "short.yaml").write_text(SHORT)
    run_dir = tmp_path / "run"
    first = run(tmp_path, "--episodes", "2", "--record")
    out, _ = first.communicate(timeout=300)
    assert first.returncode == 0, out
    assert out.count("ep 1  ") == 1 and "ep 2  " in out and "resume with the same --run-dir" in out
    assert "\r" not in out  # a pipe gets whole lines, not a redrawn status line
    assert {p.name for p in (run_dir / "logs").iterdir()} >= {"so101_sim.log", "actor.log", "learner.log"}
    assert not processes_of(run_dir)
    check_recorded_session(run_dir, tmp_path)
    rows = read_episode_log(run_dir / "episodes.csv")  # the episodes, as they arrived
    assert [r.steps for r in rows] == [15, 15] and not any(r.evaluation for r in rows)
    assert 0 < rows[0].sim_time_s < rows[1].sim_time_s and 0 < rows[0].wall_time_s <= rows[1].wall_time_s < 300
    stopped = load_newest_good(run_dir / "learner" / "checkpoints")  # written when the run stopped
    assert stopped is not None and stopped.step > 0

    second = run(tmp_path, "--episodes", "4")  # the run's total, all sessions together
    out, _ = second.communicate(timeout=300)
    assert second.returncode == 0, out
    assert "resuming: session 2, after 2 episodes" in out and "2 more to reach 4" in out
    rows = read_episode_log(run_dir / "episodes.csv")
    assert [r.episode_id for r in rows] == [1, 2, 3, 4] and len({r.actor_id for r in rows}) == 1
    assert [r.session for r in rows] == [1, 1, 2, 2]
    assert rows[2].policy_version >= stopped.state["counters"]["weights_version"] >= 1  # never the untrained net
    versions = [r.policy_version for r in rows]
    updates = [r.learner_updates for r in rows if r.learner_updates is not None]
    assert versions == sorted(versions) and updates == sorted(updates) and updates[-1] >= stopped.step
    assert all(a.sim_time_s < b.sim_time_s for a, b in itertools.pairwise(rows)), [r.sim_time_s for r in rows]
    assert all(a.wall_time_s <= b.wall_time_s for a, b in itertools.pairwise(rows))
    final = load_newest_good(run_dir / "learner" / "checkpoints")
    assert final.step >= stopped.step and final.state["counters"]["weights_version"] >= rows[-1].policy_version

    third = run(tmp_path, "--episodes", "4")  # the run already holds 4: nothing starts
    out, _ = third.communicate(timeout=60)
    assert third.returncode == 0 and "already holds 4 episodes" in out and "processes:" not in out, out

    # The report: the whole run (both sessions), the learner's updates as its checkpoint holds them, the curves.
    from so101_bringup.records.report import main as report

    assert report([str(run_dir), "--out", str(tmp_path / "report")]) == 0
    from so101_bringup.records.report import summarize_run

    summary = summarize_run(run_dir)
    assert summary.training_episodes == 4 and summary.sessions == 2 and summary.learner_updates == final.step
    pngs = {p.name: p for p in (tmp_path / "report").glob("*.png")}
    assert {"success_rate.png", "intervention_rate.png", "episode_return.png", "losses.png"} <= set(pngs)
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and p.stat().st_size > 5000 for p in pngs.values())
