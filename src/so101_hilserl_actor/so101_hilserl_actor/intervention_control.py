"""The intervention node's logic as plain Python: its config, the freshness of both arms' joint states, one control
step (the detector, then what the leader needs), the manual commands (operator/command, operator/commands, joystick
press edges) and the reset at an episode's end. The node only moves messages in and out (intervention.py holds the
detector and the leader's state machine)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from so101_contract.control import CONTROL_RATE_HZ
from so101_contract.settings import setting
from so101_hilserl_actor.intervention import ButtonEdges, DetectorConfig, InterventionDetector, LeaderManager
from so101_hilserl_interfaces.srv import OperatorCommand

Req = OperatorCommand.Request
COMMAND_NAMES = {
    Req.TOGGLE_INTERVENTION: "toggle intervention",
    Req.START_INTERVENTION: "start intervention",
    Req.END_INTERVENTION: "end intervention",
    Req.MARK_SUCCESS: "mark success",
    Req.MARK_FAILURE: "mark failure",
}
MARKS = (Req.MARK_SUCCESS, Req.MARK_FAILURE)


@dataclass(frozen=True)
class InterventionConfig:
    control_rate_hz: float = setting(
        CONTROL_RATE_HZ, "detector and leader command rate (Hz); the queue is in steps", (1.0, 100.0)
    )
    leader_tracking: bool = setting(
        True, "command the leader to the follower and switch its torque (False: passive leader)"
    )
    state_timeout_s: float = setting(0.5, "joint states older than this are not used (s)", (0.01, 10.0))
    publish_period_s: float = setting(1.0, "also republish the flag this often (s); 0 = on change only", (0.0, 3600.0))
    joy_toggle_button: int = setting(0, "Joy button index that toggles intervention; -1 off", (-1, 127))
    joy_success_button: int = setting(1, "Joy button index that marks success; -1 off", (-1, 127))
    joy_failure_button: int = setting(2, "Joy button index that marks failure; -1 off", (-1, 127))
    detector: DetectorConfig = field(default_factory=DetectorConfig)


class Step(NamedTuple):
    """What the node sends after a decision: the flag (when it changed since last published), the leader's command
    and a torque switch (None: nothing)."""

    flag_changed: bool
    leader_target: np.ndarray | None
    torque: bool | None


class Command(NamedTuple):
    """The outcome of a manual command: accepted, the message to answer and log, the mark to forward on
    operator/episode_mark (None: none), what to send now (None: nothing)."""

    accepted: bool
    message: str
    mark: int | None
    step: Step | None


class InterventionControl:
    """Times ``t`` are seconds on the node clock (simulated time with ``use_sim_time``)."""

    def __init__(self, config: InterventionConfig):
        self.config = config
        self.detector = InterventionDetector(config.detector)
        self.leader = LeaderManager(config.leader_tracking)
        self.buttons = ButtonEdges()
        self._follower: tuple[float, np.ndarray] | None = None  # (receive time, q)
        self._leader: tuple[float, np.ndarray] | None = None
        self._published: bool | None = None

    # ---- inputs ----
    def follower_state(self, t: float, q: np.ndarray) -> None:
        self._follower = (float(t), np.asarray(q, dtype=float))

    def leader_state(self, t: float, q: np.ndarray) -> None:
        self._leader = (float(t), np.asarray(q, dtype=float))

    def _fresh(self, sample: tuple[float, np.ndarray] | None, t: float) -> np.ndarray | None:
        if sample is None or t - sample[0] > self.config.state_timeout_s:
            return None
        return sample[1]

    # ---- decisions ----
    def tick(self, t: float) -> Step | None:
        """One control step at ``t``: the detector on both arms' states, then the leader's needs. None (nothing done,
        the flag keeps its value) while either arm's state is missing or older than ``state_timeout_s``."""
        follower_q, leader_q = self._fresh(self._follower, t), self._fresh(self._leader, t)
        if follower_q is None or leader_q is None:
            return None
        self.detector.update(t, follower_q, leader_q, self.leader.command)
        return self._step(follower_q)

    def command(self, command: int, t: float) -> Command:
        """A manual command (OperatorCommand's constants): marks are forwarded; intervention commands pin the state
        until the next manual command or episode."""
        name = COMMAND_NAMES.get(command)
        if name is None:
            return Command(False, f"unknown command {command}; use OperatorCommand's constants 0..4", None, None)
        if command in MARKS:
            return Command(True, f"{name} forwarded on operator/episode_mark", command, None)
        active = {Req.TOGGLE_INTERVENTION: not self.detector.active, Req.START_INTERVENTION: True,
                  Req.END_INTERVENTION: False}[command]  # fmt: skip
        self.detector.force(active, t)
        message = f"intervention {'on' if active else 'off'} (manual, held until the next command or episode)"
        return Command(True, message, None, self._step(self._fresh(self._follower, t)))

    def joy(self, buttons) -> list[tuple[int, str]]:
        """(command, source) of each configured button pressed in this Joy message (press edges, in button order)."""
        cfg = self.config
        mapping = {cfg.joy_toggle_button: Req.TOGGLE_INTERVENTION, cfg.joy_success_button: Req.MARK_SUCCESS,
                   cfg.joy_failure_button: Req.MARK_FAILURE}  # fmt: skip
        pressed = sorted(self.buttons.pressed(buttons))
        return [(mapping[b], f"joy button {b}") for b in pressed if b >= 0 and b in mapping]

    def episode_ended(self, t: float) -> Step:
        """The next episode starts with the policy driving and no manual override."""
        self.detector.reset()
        return self._step(self._fresh(self._follower, t))

    def publish_flag(self) -> bool:
        """The flag to publish now (recorded as published)."""
        self._published = self.detector.active
        return self._published

    def _step(self, follower_q: np.ndarray | None) -> Step:
        action = self.leader.step(self.detector.active, follower_q)
        return Step(self._published != self.detector.active, action.target, action.torque)
