"""The README's commands run as written from a fresh shell: every `python -m` module it names exists once
`source ./activate.sh` has run, every command-line tool among them answers --help, and every `make` line (target and
variables) is one make accepts. A renamed module, flag or target breaks this test, not a reader's first try."""

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
CODE = re.findall(r"```bash\n(.*?)```", README, re.S) + re.findall(r"`([^`\n]+)`", README)
MODULES = sorted({m for text in CODE for m in re.findall(r"python -m ([a-z0-9_.]*[a-z0-9_])(?![.<a-z0-9_])", text)})
MAKE_LINES = sorted(
    {line.split("#")[0].strip() for text in CODE for line in text.splitlines() if line.strip().startswith("make ")}
    - {"make bench-*"}  # the family, in prose
)
FRESH = {"HOME": os.environ.get("HOME", "/tmp"), "PATH": "/usr/local/bin:/usr/bin:/bin", "TERM": "dumb"}
pytestmark = pytest.mark.skipif(not (ROOT / "install").is_dir(), reason="needs the colcon build (make test runs it)")


def fresh_shell(command: str, timeout_s: float = 120.0) -> subprocess.CompletedProcess:
    """``command`` in a new bash with a bare environment (no venv, no ROS) after ``source ./activate.sh``."""
    venv = os.environ.get("SO101_VENV")  # a worktree sharing another checkout's venv says where it is
    env = {**FRESH, **({"SO101_VENV": venv} if venv else {})}
    return subprocess.run(["bash", "-c", f"source ./activate.sh >/dev/null && {command}"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout_s)  # fmt: skip


def is_node(origin: str) -> bool:
    """A ROS node (it spins until stopped, --help is a ROS argument) rather than a command-line tool."""
    source = Path(origin).read_text()
    return any(call in source for call in ("run_node(", "rclpy.spin(", "rclpy.init("))


def test_the_readme_names_modules_and_make_lines():
    assert len(MODULES) >= 15 and "so101_bringup.records.report" in MODULES and "so101_bringup.runner" in MODULES
    assert any(line.startswith("make sim") for line in MAKE_LINES) and "make test" in MAKE_LINES


def test_every_module_the_readme_names_exists_and_every_tool_answers_help():
    probe = "; ".join(
        [
            "import importlib.util as u",
            f"print('\\n'.join(f'{{m}} {{(u.find_spec(m) or None) and u.find_spec(m).origin}}' for m in {MODULES!r}))",
        ]
    )
    found = fresh_shell(f'python -c "{probe}"')
    assert found.returncode == 0, found.stderr
    origins = dict(line.split(" ", 1) for line in found.stdout.splitlines())
    missing = [m for m in MODULES if origins.get(m) in (None, "None")]
    assert not missing, f"the README names modules that do not exist: {missing}"
    tools = [m for m in MODULES if not is_node(origins[m])]
    assert len(tools) >= 8, tools
    for module in tools:
        result = fresh_shell(f"python -m {module} --help")
        assert result.returncode == 0 and "usage" in result.stdout.lower(), (module, result.stderr[-2000:])


@pytest.mark.skipif(shutil.which("make") is None, reason="no make on PATH")
@pytest.mark.parametrize("line", MAKE_LINES)
def test_every_make_line_of_the_readme_is_accepted(line):
    args = re.findall(r'(?:[^\s"]+="[^"]*"|[^\s"]+)', line)[1:]
    outer = {k: v for k, v in os.environ.items() if k not in ("MAKELEVEL", "MAKEFLAGS", "MFLAGS")}  # not a sub-make
    result = subprocess.run(["make", "-n", *[a.replace('"', "") for a in args]], cwd=ROOT, capture_output=True,
                            text=True, timeout=60, env=outer)  # fmt: skip
    assert result.returncode == 0, f"{line}: {result.stderr}"
