"""Every package's pytest run blocks Jazzy's launch_testing / launch_testing_ros pytest plugins.

On a ROS 2 Jazzy install those plugins are registered for every pytest run (pytest11 entry points `launch_testing`
and `launch_ros`) and fail to load under pytest 9 before anything is collected (ros2/launch#979), which turns the
user's `colcon test` red. No test here uses them, so each package's pytest config (setup.cfg, or pytest.ini for the
ament_cmake package) and scripts/run_tests.sh block them with `-p no:<entry point>`. Checked here: the option is in
every config, and with it pytest runs past a plugin of that name that cannot load (a stand-in registered here with a
throwaway dist-info) while without it the run fails.
"""

import configparser
import os
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[2]
ROOT = SRC.parent
BLOCKED = ("launch_testing", "launch_ros")  # the entry point names in launch_testing's and launch_testing_ros' setup.py


def pytest_config(package: Path) -> tuple[Path, str]:
    """(file, addopts) of the pytest config pytest finds for this package's tests."""
    for name, section in (("pytest.ini", "pytest"), ("setup.cfg", "tool:pytest")):
        path = package / name
        parser = configparser.ConfigParser()
        if path.is_file() and parser.read(path) and parser.has_section(section):
            return path, parser.get(section, "addopts", fallback="")
    raise AssertionError(f"{package.name} has no pytest config (setup.cfg [tool:pytest] or pytest.ini)")


def blocks(addopts: str) -> set[str]:
    words = addopts.split()
    return {
        words[i + 1].removeprefix("no:") for i, w in enumerate(words[:-1]) if w == "-p" and words[i + 1][:3] == "no:"
    }


def test_every_package_and_the_workspace_run_block_the_launch_testing_plugins():
    packages = sorted(p.parent for p in SRC.glob("*/package.xml"))
    assert len(packages) >= 7
    for package in packages:
        path, addopts = pytest_config(package)
        assert set(BLOCKED) <= blocks(addopts), f"{path}: addopts must block {BLOCKED}"
    script = (ROOT / "scripts" / "run_tests.sh").read_text().replace("\\\n", " ")
    (workspace_call,) = [line for line in script.splitlines() if "python -m pytest tests" in line]
    assert set(BLOCKED) <= blocks(workspace_call)


def test_the_config_lets_pytest_run_past_a_launch_testing_plugin_that_cannot_load(tmp_path):
    site = tmp_path / "site"
    (site / "broken_launch_testing-3.4.3.dist-info").mkdir(parents=True)
    (site / "broken_launch_testing-3.4.3.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: broken-launch-testing\nVersion: 3.4.3\n"
    )
    (site / "broken_launch_testing-3.4.3.dist-info" / "entry_points.txt").write_text(
        "[pytest11]\n" + "".join(f"{name} = broken_launch_testing\n" for name in BLOCKED)
    )
    (site / "broken_launch_testing.py").write_text("raise ImportError('the launch_testing plugin under pytest 9')\n")
    tests = tmp_path / "tests"
    tests.mkdir()
    (tests / "test_one.py").write_text("def test_one():\n    assert True\n")
    # Not the outer run's options (colcon passes its --junit-xml in PYTEST_ADDOPTS).
    env = {k: v for k, v in os.environ.items() if k not in ("PYTEST_ADDOPTS", "PYTEST_PLUGINS")}
    env["PYTHONPATH"] = os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])
    (tmp_path / "plain.ini").write_text("[pytest]\n")

    def pytest(*config: str) -> subprocess.CompletedProcess:
        cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *config, str(tests)]
        return subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)

    unprotected = pytest("-c", str(tmp_path / "plain.ini"))  # a config without addopts
    assert unprotected.returncode != 0 and "the launch_testing plugin under pytest 9" in unprotected.stdout + (
        unprotected.stderr
    )
    path, _ = pytest_config(SRC / "so101_bringup")
    protected = pytest("-c", str(path), "--rootdir", str(tmp_path))
    assert protected.returncode == 0 and "1 passed" in protected.stdout, protected.stdout + protected.stderr
