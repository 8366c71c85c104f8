"""The bringup CLIs end expected failures with exit status 2 and one line (issue 15): a runner --run-dir that is a
file or cannot be created is refused before any process starts; numeric flags out of range (runner --episodes,
report --window, recorder --poll-period) are refused by argparse naming the flag. Never a traceback."""

import pytest

from so101_bringup.records.recorder import parse_args as recorder_args
from so101_bringup.records.report import main as report_main
from so101_bringup.runner import main as runner_main
from so101_testing.cli import refusal_line


@pytest.mark.parametrize(
    ("run_dir", "cause"),
    [("a_file", "is a file, not a directory"), ("a_file/run", "cannot create it")],
)
def test_runner_run_dir_that_cannot_be_a_directory_is_one_line(tmp_path, capsys, run_dir, cause):
    (tmp_path / "a_file").write_text("not a directory")
    target = tmp_path / run_dir
    assert runner_main(["--run-dir", str(target), "--domain-id", "1", "--no-status"]) == 2
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err and captured.err.count("\n") == 1, captured.err
    assert captured.err.startswith(f"error: --run-dir {target}: {cause}"), captured.err
    assert "processes:" not in captured.out  # nothing was started


@pytest.mark.parametrize(
    ("main", "argv", "flag"),
    [
        (runner_main, ["--episodes", "-1"], "--episodes"),
        (report_main, ["run", "--window", "0"], "--window"),
        (recorder_args, ["--out", "bag", "--poll-period", "0"], "--poll-period"),
    ],
)
def test_numeric_flags_out_of_range_are_refused_by_argparse(main, argv, flag, capsys):
    line = refusal_line(main, argv, capsys)
    assert f"error: argument {flag}: " in line, line


@pytest.mark.parametrize(
    ("argv", "fix"),
    [
        (["--episode", "5"], "did you mean --episodes?"),  # no abbreviation: a typo never becomes another flag
        (["--run_dir", "runs/x"], "did you mean --run-dir?"),
        (["--verbose"], "see --help"),
    ],
)
def test_an_unknown_runner_flag_is_one_line_naming_the_closest_flag(argv, fix, capsys, tmp_path):
    with pytest.raises(SystemExit) as exit_:
        runner_main(["--run-dir", str(tmp_path / "run"), *argv])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.count("\n") == 1 and f"unknown argument {argv[0]}; {fix}" in err, err
    assert not (tmp_path / "run").exists()  # refused before anything was made
