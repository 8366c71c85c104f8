"""Safety of follower joint commands, shared by the real follower driver and the simulation (one definition).

A command names joints and positions (sensor_msgs/JointState semantics). Before anything moves:
- unknown joint names, non-finite values or mismatched array lengths reject the whole command (with the reason);
- each target is clamped to the joint limits, and to at most ``max_step`` radians away from the measured position,
  so a bad policy output, a unit mix-up (degrees sent as radians) or a stale command cannot fling the arm;
- joints the command does not name keep their previous target;
- a watchdog holds the arm where it is when commands stop for ``timeout_s``.

``CommandLimits`` holds the two settings (the nodes' ``max_joint_step`` and ``command_timeout_s`` parameters).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from so101_contract.settings import setting


@dataclass(frozen=True)
class CommandLimits:
    """How far one command may move a joint and how long commands may pause before the arm is held."""

    max_joint_step: float = setting(
        0.3, "largest target change per command from the measured position (rad)", (0.001, 3.2)
    )
    command_timeout_s: float = setting(0.5, "hold the arm when commands stop this long (s)", (0.01, 60.0))


@dataclass(frozen=True)
class GuardResult:
    target: np.ndarray | None  # the (clamped) target to send, None when rejected
    clamped_joints: tuple[str, ...] = ()
    rejected: str = ""  # why the command was refused ("" when accepted)


class JointCommandGuard:
    def __init__(
        self,
        joint_names: Sequence[str],
        lower: np.ndarray,
        upper: np.ndarray,
        max_step: float = CommandLimits.max_joint_step,
        timeout_s: float = CommandLimits.command_timeout_s,
    ):
        if max_step <= 0 or timeout_s <= 0:
            raise ValueError(f"max_step ({max_step}) and timeout_s ({timeout_s}) must be positive")
        self.joint_names = tuple(joint_names)
        self._index = {name: i for i, name in enumerate(self.joint_names)}
        self.lower = np.asarray(lower, dtype=float)
        self.upper = np.asarray(upper, dtype=float)
        if self.lower.shape != (len(self.joint_names),) or self.upper.shape != self.lower.shape:
            raise ValueError("lower and upper must have one limit per joint")
        self.max_step = float(max_step)
        self.timeout_s = float(timeout_s)
        self.target: np.ndarray | None = None
        self.holding = False
        self._last_command_time: float | None = None
        self.accepted = 0
        self.rejected = 0
        self.clamped = 0

    def apply(self, names: Sequence[str], positions: Sequence[float], measured: np.ndarray, now: float) -> GuardResult:
        """Check one command against the measured joint positions; returns the target to send."""
        if len(names) != len(positions):
            return self._reject(f"{len(names)} names but {len(positions)} positions")
        unknown = [n for n in names if n not in self._index]
        if unknown:
            return self._reject(f"unknown joint name(s) {unknown}; expected some of {list(self.joint_names)}")
        values = np.asarray(positions, dtype=float)
        if not np.isfinite(values).all():
            bad = [name for name, value in zip(names, values, strict=True) if not np.isfinite(value)]
            return self._reject(f"non-finite position(s) for {bad}")

        measured = np.asarray(measured, dtype=float)
        target = measured.copy() if self.target is None or self.holding else self.target.copy()
        for name, value in zip(names, values, strict=True):
            target[self._index[name]] = value
        limited = np.clip(target, self.lower, self.upper)
        limited = np.clip(limited, measured - self.max_step, measured + self.max_step)
        changed = tuple(self.joint_names[i] for i in np.flatnonzero(np.abs(limited - target) > 1e-9))
        if changed:
            self.clamped += 1
        self.target = limited
        self.holding = False
        self._last_command_time = now
        self.accepted += 1
        return GuardResult(limited.copy(), changed)

    def check_watchdog(self, measured: np.ndarray, now: float) -> np.ndarray | None:
        """Call periodically: returns the hold target once, when commands have stopped for timeout_s."""
        if self.holding or self._last_command_time is None:
            return None
        if now - self._last_command_time < self.timeout_s:
            return None
        self.holding = True
        self.target = np.clip(np.asarray(measured, dtype=float), self.lower, self.upper)
        return self.target.copy()

    def _reject(self, reason: str) -> GuardResult:
        self.rejected += 1
        return GuardResult(None, (), reason)
