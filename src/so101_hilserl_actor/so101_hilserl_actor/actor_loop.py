"""The actor loop's timing and the real robot's reset, as plain Python that a fake clock can drive.

``Pacer`` starts step k at t0 + k * period whatever the step's compute took, and records the loop jitter;
``IkReset`` drives the follower to the home pose by small joint steps from freshly read joints and raises
``ResetFailed`` when it cannot. A failed reset does not stop the actor: it logs and counts it and retries after
``reset_retry_pause_s``, since a person is at a real robot and a nudge fixes what stopping would lose a run for.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from so101_contract.files import atomic_write
from so101_contract.joints import GRIPPER, JOINT_NAMES
from so101_contract.settings import setting
from so101_driver.model.kinematics import HOME_EE_POSITION, TOOL_DOWN, Kinematics
from so101_hilserl_actor.control_clock import ControlClock


class Pacer:
    """Start a step every ``period_s`` on the ``monotonic`` clock: absolute-time pacing, step k at t0 + k * period
    whatever the step's compute took. A step that overruns makes the next one start at once and re-anchors the
    schedule there (no burst of catch-up steps). Every interval between step starts is recorded (the loop jitter
    ``so101_bench.actor`` reports). With a ``clock`` (control_clock.ControlClock) it runs on that clock instead: its
    time, its waits, and its step instants after a pause (in simulated time on the grid of the control period, see
    ControlClock.next_step_time)."""

    def __init__(
        self,
        period_s: float,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        history: int = 10_000,
        *,
        clock: ControlClock | None = None,
    ):
        if not period_s > 0:
            raise ValueError(f"period_s must be positive (seconds), got {period_s}")
        self.period_s = float(period_s)
        if clock is not None:
            self._monotonic, self._sleep_until = clock.monotonic, clock.sleep_until
            self._anchor_time = clock.next_step_time
        else:
            self._monotonic, self._anchor_time = monotonic, monotonic
            self._sleep_until = lambda t: sleep(t - monotonic())
        self.intervals: deque[float] = deque(maxlen=history)  # seconds between consecutive step starts
        self.overruns = 0
        self.restart()

    @property
    def due(self) -> float:
        """When the current (or next) step is due (seconds on the pacer's clock). Step k after an anchor is due at
        anchor + k * period, computed afresh each time: no rounding error adds up over a long run."""
        return self._anchor + self._count * self.period_s

    def restart(self) -> None:
        """After a pause (reset, waiting for inputs): the next step starts now (on a clock: at its next step time)
        and no interval spans the pause."""
        self._anchor, self._count = self._anchor_time(), 0
        self._last_start: float | None = None

    def step_started(self) -> None:
        now = self._monotonic()
        if self._last_start is not None:
            self.intervals.append(now - self._last_start)
        self._last_start = now

    def sleep_until_due(self) -> bool:
        """Sleep until the current step is due (at once when it is); False when a clock's stop ended the wait."""
        if self.due > self._monotonic():
            return self._sleep_until(self.due) is not False
        return True

    def wait(self) -> bool:
        """Sleep until the next step is due. False when a clock's stop ended the wait."""
        self._count += 1
        if self.due <= self._monotonic():
            self.overruns += 1
            self._anchor, self._count = self._anchor_time(), 0
        return self.sleep_until_due()


class ResetFailed(RuntimeError):
    """The IK reset did not reach the home pose; the message says which joint is off, by how much, and why."""


RESET_MODES = ("sim", "ik")


@dataclass(frozen=True)
class ResetConfig:
    """How the actor resets the scene before an episode. The IK reset (``reset_mode`` ik): step_rad, the largest
    joint change per control step (slow, so the intervention detector does not mistake the reset for a grab);
    tolerance_rad, every joint within this of home = arrived; give up after ``reset_max_iterations`` steps, or when
    the largest joint error has not fallen by min_progress_rad within ``reset_stuck_iterations`` steps."""

    reset_mode: str = setting("sim", "sim: call sim/reset; ik: drive to the home pose by IK", RESET_MODES)
    reset_pause_s: float = setting(0.5, "pause after a reset (the operator repositions the cube)", (0.0, 60.0))
    reset_retry_pause_s: float = setting(
        2.0, "after a failed reset: pause, then retry (the failure is logged and counted)", (0.0, 600.0)
    )
    reset_max_iterations: int = setting(100, "IK reset: give up after this many control steps", (1, 100_000))
    reset_stuck_iterations: int = setting(
        15, "IK reset: give up when the error has not fallen for this many steps", (1, 10_000)
    )
    step_rad: float = 0.05
    tolerance_rad: float = 0.02
    min_progress_rad: float = 0.002

    def __post_init__(self) -> None:
        if self.reset_mode not in RESET_MODES:
            raise ValueError(f"reset_mode must be one of {RESET_MODES}, got {self.reset_mode!r}")
        for name in ("step_rad", "tolerance_rad", "min_progress_rad"):
            if not getattr(self, name) > 0:
                raise ValueError(f"ResetConfig.{name} must be positive (rad), got {getattr(self, name)}")
        for name in ("reset_max_iterations", "reset_stuck_iterations"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"ResetConfig.{name} must be at least 1, got {getattr(self, name)}")
        for name in ("reset_pause_s", "reset_retry_pause_s"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"ResetConfig.{name} must be >= 0 s, got {getattr(self, name)}")


def home_pose(kinematics: Kinematics, q: np.ndarray, noise_m: np.ndarray, gripper_open: float) -> np.ndarray:
    """Joint targets of the home pose (fingers down above the workspace, moved by ``noise_m``), gripper open."""
    home, error = kinematics.solve_ik(q, HOME_EE_POSITION + noise_m, tool_direction=TOOL_DOWN)
    if error > 0.005:  # the tool-down pose is out of reach there: position only
        home, _ = kinematics.solve_ik(q, HOME_EE_POSITION + noise_m)
    home = np.asarray(home, dtype=float).copy()
    home[GRIPPER] = gripper_open
    return home


class IkReset:
    """One reset: call ``next(q)`` once per control step with the read joints; it returns the joint target to send,
    or None once every joint is within tolerance of ``home``. Raises ResetFailed (see ResetConfig), naming the joint
    that is off and by how much. Giving up when stuck matters: gravity sag under P-only servo gains can hold a joint
    just outside the tolerance forever."""

    def __init__(self, home: np.ndarray, config: ResetConfig | None = None):
        self.home = np.asarray(home, dtype=float).copy()
        self.config = config or ResetConfig()
        self.iterations = 0
        self._errors: deque[float] = deque(maxlen=self.config.reset_stuck_iterations + 1)

    def next(self, q: np.ndarray) -> np.ndarray | None:
        cfg = self.config
        gap = self.home - np.asarray(q, dtype=float)
        error = float(np.abs(gap).max())
        if error < cfg.tolerance_rad:
            return None
        worst = JOINT_NAMES[int(np.abs(gap).argmax())]
        if self.iterations >= cfg.reset_max_iterations:
            raise ResetFailed(
                f"IK reset gave up after {self.iterations} steps: {worst} is {error:.3f} rad from home "
                f"(tolerance {cfg.tolerance_rad} rad)"
            )
        self._errors.append(error)
        stuck = cfg.reset_stuck_iterations
        if len(self._errors) > stuck and self._errors[0] - min(self._errors) < cfg.min_progress_rad:
            raise ResetFailed(
                f"IK reset stuck: {worst} stays {error:.3f} rad from home, no progress over {stuck} steps (blocked, "
                "or sagging under gravity)"
            )
        self.iterations += 1
        return np.asarray(q, dtype=float) + np.clip(gap, -cfg.step_rad, cfg.step_rad)


def run_ik_reset(
    reset: IkReset,
    read_joints: Callable[[], np.ndarray],
    command: Callable[[np.ndarray], None],
    pacer: Pacer,
    stopped: Callable[[], bool],
) -> str:
    """Drive ``reset`` to the end, one command per control period. Returns '' when home, else why not."""
    pacer.restart()
    while not stopped():
        try:
            target = reset.next(read_joints())
        except ResetFailed as err:
            return str(err)
        if target is None:
            return ""
        command(target)
        pacer.wait()
    return "stopped during the reset"


def call_sim_reset(client, request, stopped: Callable[[], bool], timeout_s: float = 10.0) -> str:
    """Call the simulation's reset service (an rclpy client of sim/reset) and wait for its answer, each at most
    ``timeout_s`` of wall time. Returns '' once it answered, else why not."""
    deadline = time.monotonic() + timeout_s
    while not client.wait_for_service(timeout_sec=0.1):
        if stopped() or time.monotonic() > deadline:
            return "sim/reset is not available; is the simulation running?"
    future = client.call_async(request)
    deadline = time.monotonic() + timeout_s
    while not future.done() and time.monotonic() < deadline and not stopped():
        time.sleep(0.01)
    return "" if future.done() else f"sim/reset did not answer within {timeout_s:g} s"


def dump_policy_inputs(directory: Path, episode_id: int, step: int, pixels: np.ndarray, state: np.ndarray) -> Path:
    """Debug record of what the policy saw at (episode, step): ``episode_E_step_S.npz`` with pixels and state,
    written whole (temporary file, then rename), so a reader never sees half of one."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"episode_{episode_id}_step_{step}.npz"

    def write(tmp: str) -> None:
        with open(tmp, "wb") as handle:  # a handle: np.savez would add .npz to a file name
            np.savez(handle, pixels=pixels, state=state)

    atomic_write(path, write)
    return path
