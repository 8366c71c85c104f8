"""RUN_DIR/episodes.csv: a row per episode flushed as written, a resumed run appends under the one header, a row cut
by a kill is dropped, and what is read back is what was written."""

from __future__ import annotations

import csv
import math

import pytest

from so101_bringup.records.episode_log import COLUMNS, EpisodeLog, EpisodeRow, find_episode_log, read_episode_log
from so101_bringup.runner import EpisodeRecorder, Progress
from so101_hilserl_interfaces.msg import EpisodeSummary, LearnerStats


def summary(episode_id, success, intervention_steps, steps=100, evaluation=False, sim_time_s=0.0):
    msg = EpisodeSummary(actor_id="sim", episode_id=episode_id, steps=steps, intervention_steps=intervention_steps)
    msg.success, msg.evaluation, msg.episode_return = success, evaluation, -1.25
    msg.end_reason, msg.policy_version = "success" if success else "timeout", 7
    msg.header.stamp.sec, msg.header.stamp.nanosec = int(sim_time_s), round(sim_time_s % 1 * 1e9)
    return msg


def learner_stats(updates=120):
    return LearnerStats(updates=updates, update_to_data_ratio=0.98, requested_utd=1.0, training_transitions=130)


def test_the_runner_writes_a_row_per_episode_as_it_arrives(tmp_path):
    path = tmp_path / "episodes.csv"
    recorder = EpisodeRecorder(Progress(simulated=True), EpisodeLog(path))
    recorder.on_episode(summary(1, False, 0, sim_time_s=10.5))  # before any learner stats: its columns are empty
    recorder.on_stats(learner_stats())
    recorder.on_episode(summary(2, True, 30, sim_time_s=21.0))
    recorder.on_episode(summary(3, True, 0, evaluation=True, sim_time_s=31.5))
    # read while the log is still open: each row is on disk as soon as it is written
    with open(path, newline="") as f:
        table = list(csv.DictReader(f))
    assert [r["episode_id"] for r in table] == ["1", "2", "3"] and tuple(table[0]) == COLUMNS
    assert table[0]["learner_updates"] == "" and table[0]["achieved_utd"] == "nan"
    assert table[1]["assisted_success"] == "1" and table[1]["autonomous_success"] == "0"
    assert table[1]["intervention_fraction"] == "0.3" and table[1]["achieved_utd"] == "0.98"
    assert table[2]["autonomous_success"] == "1" and table[2]["evaluation"] == "1"
    rows = read_episode_log(path)
    assert [r.sim_time_s for r in rows] == [10.5, 21.0, 31.5]
    assert rows[0].learner_updates is None and math.isnan(rows[0].achieved_utd)
    assert rows[1] == EpisodeRow(
        wall_time_s=rows[1].wall_time_s, sim_time_s=21.0, actor_id="sim", episode_id=2, evaluation=False,
        success=True, steps=100, intervention_steps=30, episode_return=-1.25, end_reason="success", policy_version=7,
        learner_updates=120, achieved_utd=pytest.approx(0.98), requested_utd=1.0, training_transitions=130,
    )  # fmt: skip
    assert 0 <= rows[0].wall_time_s <= rows[1].wall_time_s <= rows[2].wall_time_s < 60
    assert rows[2].outcome.autonomous_success and rows[1].outcome.assisted_success


def test_a_resumed_run_appends_under_one_header_and_moves_a_row_cut_by_a_kill_aside_by_line(tmp_path):
    path = tmp_path / "episodes.csv"
    first = EpisodeLog(path)
    assert first.session == 1 and first.history.episodes == 0
    first.append(EpisodeRow.from_messages(summary(1, True, 0), learner_stats(), 100.0, first.session))
    first.close()
    with open(path, "a") as f:
        f.write("101.5,3.0,sim,2,0,1")  # a row cut short by a kill mid-write
    second = EpisodeLog(path)
    assert second.history.wall_time_s == 100.0  # the run's wall time goes on from its last row
    assert second.session == 2 and second.history.next_episode_id == 2 and second.history.actor_id == "sim"
    (repair,) = second.repairs  # named, with its line, never dropped in silence
    assert "episodes.csv line 3: cut short" in repair and "episodes.damaged.csv" in repair
    assert (tmp_path / "episodes.damaged.csv").read_text() == "101.5,3.0,sim,2,0,1\n"  # kept as it was
    second.append(EpisodeRow.from_messages(summary(3, False, 5), learner_stats(), second.wall_time_s(), 2))
    second.close()
    text = path.read_text()
    assert text.count("wall_time_s") == 1 and "101.5" not in text
    rows = read_episode_log(path)
    assert [r.episode_id for r in rows] == [1, 3] and 100.0 <= rows[1].wall_time_s < 160.0
    assert [r.session for r in rows] == [1, 2]


def test_garbage_lines_are_named_by_line_moved_aside_and_the_rows_around_them_kept(tmp_path):
    path = tmp_path / "episodes.csv"
    log = EpisodeLog(path)
    for episode_id in (1, 2):
        log.append(EpisodeRow.from_messages(summary(episode_id, True, 0), None, float(episode_id)))
    log.close()
    good = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(good[0] + good[1] + b"\xff\xfe garbage\n" + b"1,2,3\n" + good[2])
    with pytest.raises(ValueError, match=r"episodes.csv line 3: not UTF-8 text"):  # a reader names file and line
        read_episode_log(path)
    resumed = EpisodeLog(path)
    assert [r.split(";")[0] for r in resumed.repairs] == [
        f"{path} line 3: not UTF-8 text (damaged)",
        f"{path} line 4: 3 cells, {len(COLUMNS)} expected",
    ]
    resumed.close()
    assert [r.episode_id for r in read_episode_log(path)] == [1, 2]  # the good rows, in order
    assert (tmp_path / "episodes.damaged.csv").read_bytes() == b"\xff\xfe garbage\n1,2,3\n"


def test_a_foreign_or_damaged_file_is_refused_with_its_name(tmp_path):
    path = tmp_path / "episodes.csv"
    path.write_text("episode,success\n1,1\n")
    with pytest.raises(ValueError, match=r"episodes.csv: its header is not this version's columns.*move it away"):
        EpisodeLog(path)
    assert path.read_text() == "episode,success\n1,1\n"  # left as it was
    with pytest.raises(ValueError, match="not an episodes.csv of this version"):
        read_episode_log(path)
    log = EpisodeLog(tmp_path / "good.csv")
    log.append(EpisodeRow.from_messages(summary(1, True, 0), None, 1.0))
    log.close()
    damaged = (tmp_path / "good.csv").read_text().replace(",sim,1,", ",sim,one,")
    (tmp_path / "good.csv").write_text(damaged)
    with pytest.raises(ValueError, match=r"good.csv line 2: episode_id='one' is not"):
        read_episode_log(tmp_path / "good.csv")


def test_find_episode_log_searches_the_run_dir_and_refuses_to_mix_runs(tmp_path):
    assert find_episode_log(tmp_path) is None
    EpisodeLog(tmp_path / "a" / "episodes.csv").close()
    assert find_episode_log(tmp_path) == tmp_path / "a" / "episodes.csv"
    EpisodeLog(tmp_path / "b" / "episodes.csv").close()
    with pytest.raises(ValueError, match="holds 2 episodes.csv files"):
        find_episode_log(tmp_path)


def test_the_runner_and_the_report_refuse_a_foreign_episode_log_in_one_line(tmp_path, capsys):
    from so101_bringup.records.report import main as report_main
    from so101_bringup.runner import main as runner_main

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "episodes.csv").write_text("episode,success\n1,1\n")
    assert runner_main(["--run-dir", str(run_dir), "--domain-id", "1", "--no-status"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {run_dir / 'episodes.csv'}: its header is not") and err.count("\n") == 1
    assert not (run_dir / "logs" / "actor.log").exists()  # nothing started
    assert report_main([str(run_dir)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("report: ") and "not an episodes.csv of this version" in err and err.count("\n") == 1
