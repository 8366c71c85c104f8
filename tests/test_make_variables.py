"""The run targets refuse a command-line variable they do not read, before anything is set up or built: `make sim
EPISODE=5` (a typo of EPISODES) once ran the build and then the simulation until Ctrl-C. Each case runs the real
make on the repository's Makefile with -n, which prints every command make would run: a refusal prints none."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="no make on PATH")


def make_n(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """make -n as a user runs it from a shell: not as a sub-make of `make test` (MAKELEVEL, MAKEFLAGS), which would
    add its "Entering directory" lines."""
    outer = {k: v for k, v in os.environ.items() if k not in ("MAKELEVEL", "MAKEFLAGS", "MFLAGS")}
    return subprocess.run(["make", "-n", *args], cwd=ROOT, capture_output=True, text=True, timeout=60,
                          env={**outer, **(env or {})})  # fmt: skip


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["sim", "EPISODE=5"], "unknown variable EPISODE; did you mean EPISODES? (make sim reads EPISODES, RUN_DIR"),
        (["sim", "RUNDIR=runs/a"], "unknown variable RUNDIR; did you mean RUN_DIR?"),
        (["bench-hil", "HIL_CONFG=gpu"], "unknown variable HIL_CONFG; did you mean HIL_CONFIG?"),
        (["bench-sim", "EPISODES=5"], "unknown variable EPISODES (make bench-sim reads COLCON_BUILD_ARGS)"),
        (["sim", "COLCON_BUILD_ARG=x"], "unknown variable COLCON_BUILD_ARG; did you mean COLCON_BUILD_ARGS?"),
        (["sim", "FOO=1", "EPISODE=5"], "unknown variables EPISODE (did you mean EPISODES?), FOO (make sim"),
    ],
)
def test_an_unknown_variable_is_one_line_naming_the_closest_and_nothing_runs(args, expected):
    result = make_n(*args)
    assert result.returncode == 2, result
    assert result.stdout == "", f"make would have run commands (the build first):\n{result.stdout}"
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and expected in lines[0], result.stderr


def test_the_variables_a_target_reads_are_taken():
    result = make_n("sim", "EPISODES=5", "RUN_DIR=runs/a", "COLCON_BUILD_ARGS=--packages-select x", "ROS_DOMAIN_ID=9")
    assert result.returncode == 0, result.stderr
    assert "colcon build" in result.stdout and "--packages-select x" in result.stdout
    assert "--run-dir runs/a --episodes 5" in result.stdout
    hil = make_n("bench-hil", "HIL_CONFIG=gpu", "HIL_ARGS=--minutes 1")
    assert hil.returncode == 0 and "--config gpu --minutes 1" in hil.stdout, hil.stderr


def test_environment_variables_are_not_checked():
    """Only the make command line is: the environment (PATH, HOME, a stray EPISODE) is make's too."""
    result = make_n("sim", env={"EPISODE": "5", "SOMETHING_ELSE": "1"})
    assert result.returncode == 0, result.stderr
    assert "--episodes 0" in result.stdout
