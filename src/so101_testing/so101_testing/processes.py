"""Start ROS node processes for a test and always reap them, whole process groups included."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path


class NodeProcess:
    """One child process in its own session (process group), with its output in a log file.

    ``stop()`` asks politely (SIGINT, as Ctrl-C would, so rclpy shuts down cleanly), then SIGTERM, then SIGKILL
    the whole group, so nothing the node spawned survives the test.
    """

    def __init__(self, cmd: Sequence[str], log_path: Path, env: dict | None = None, cwd: Path | None = None):
        self.cmd = list(cmd)
        self.log_path = Path(log_path)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "wb")
        self.popen = subprocess.Popen(
            self.cmd,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=dict(os.environ if env is None else env),
            cwd=cwd,
            start_new_session=True,
        )

    @classmethod
    def python_module(cls, module: str, *args: str, log_dir: Path, name: str | None = None, **kwargs) -> NodeProcess:
        """Run ``python -m module args`` with this interpreter."""
        log = Path(log_dir) / f"{name or module.rsplit('.', 1)[-1]}.log"
        return cls([sys.executable, "-u", "-m", module, *args], log, **kwargs)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def output(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def send_signal(self, sig: int) -> None:
        """Signal the main process only (as launch does; a terminal's Ctrl-C reaches the whole group)."""
        try:
            self.popen.send_signal(sig)
        except ProcessLookupError:
            pass

    def wait_exit(self, timeout_s: float) -> int | None:
        """The exit code once the process has exited, or None if it is still running after ``timeout_s``."""
        try:
            return self.popen.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return None

    def _signal_group(self, sig: int) -> None:
        try:
            os.killpg(self.popen.pid, sig)
        except ProcessLookupError:
            pass

    def _group_alive(self) -> bool:
        try:
            os.killpg(self.popen.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True

    def stop(self, grace_s: float = 5.0) -> int | None:
        """Stop the process and its group; returns the exit code of the main process."""
        for sig, wait_s in ((signal.SIGINT, grace_s), (signal.SIGTERM, 2.0), (signal.SIGKILL, 2.0)):
            if self.popen.poll() is not None and not self._group_alive():
                break
            self._signal_group(sig)
            deadline = time.monotonic() + wait_s
            while time.monotonic() < deadline:
                if self.popen.poll() is not None and not self._group_alive():
                    break
                time.sleep(0.02)
        try:
            self.popen.wait(timeout=1.0)
        except subprocess.TimeoutExpired:
            pass
        self._log.close()
        return self.popen.returncode


def assert_clean_log(process: NodeProcess) -> None:
    """A node that stopped as it should: no traceback, no dead thread, no bounded-exit guard in its output."""
    log = process.output()
    assert "Traceback" not in log, log
    assert "Exception in thread" not in log, log
    assert "did not finish" not in log, log  # the bounded-exit guard was not needed


def signal_and_time_exit(process: NodeProcess, signals: list[int], bound_s: float) -> tuple[int | None, float]:
    """Send ``signals`` in turn, wait up to ``bound_s`` for the exit: (exit code or None, seconds it took)."""
    start = time.monotonic()
    for sig in signals:
        process.send_signal(sig)
    code = process.wait_exit(bound_s)
    return code, time.monotonic() - start


class ProcessGroup:
    """A set of node processes that are all stopped when the group is closed (use as a context manager)."""

    def __init__(self, log_dir: Path):
        self.log_dir = Path(log_dir)
        self.processes: list[NodeProcess] = []

    def start(self, cmd: Sequence[str], name: str, **kwargs) -> NodeProcess:
        proc = NodeProcess(cmd, self.log_dir / f"{name}.log", **kwargs)
        self.processes.append(proc)
        return proc

    def start_module(self, module: str, *args: str, name: str | None = None, **kwargs) -> NodeProcess:
        proc = NodeProcess.python_module(module, *args, log_dir=self.log_dir, name=name, **kwargs)
        self.processes.append(proc)
        return proc

    def close(self) -> None:
        # Stop in reverse start order: consumers before the producers they depend on.
        for proc in reversed(self.processes):
            proc.stop()

    def logs(self) -> str:
        return "\n".join(f"----- {p.log_path.name} (pid {p.pid}) -----\n{p.output()}" for p in self.processes)

    def __enter__(self) -> ProcessGroup:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def ros_args(**params) -> list[str]:
    """``--ros-args -p name:=value ...`` for a node process; a string value is YAML-quoted, so JSON parameters (and
    strings that look like numbers) reach the node as strings."""
    args = ["--ros-args"]
    for key, value in params.items():
        text = "'" + value.replace("'", "''") + "'" if isinstance(value, str) else value
        args += ["-p", f"{key}:={text}"]
    return args
