"""Simulated time for the sim node, as plain Python (no ROS): the tick grid, real-time pacing and the lockstep gate.

The protocol is written at so101_contract.sim_time's constants. Per tick the loop asks ``TickGrid`` which simulated
instant it is and whether the camera renders there, ``Pacer`` (clock_mode "sim") how long to wait so that simulated
time runs at the wall clock times the real-time factor, and ``LockstepGate`` (clock_mode "lockstep") whether it may
advance, given the actor's newest grant and the learner's newest backlog. ``HoldLog`` picks the holds worth a log
line; ``SimClockConfig`` holds the sim node's time settings.
"""

from __future__ import annotations

from dataclasses import dataclass

from so101_contract.control import CONTROL_PERIOD_S
from so101_contract.settings import setting
from so101_contract.sim_time import CLOCK_MODES
from so101_contract.stamps import NS_PER_S


@dataclass(frozen=True)
class SimClockConfig:
    """How the sim node's simulated time runs (so101_contract.sim_time)."""

    clock_mode: str = setting(
        "wall", "wall: follow the wall clock; sim: publish /clock paced to the wall clock times real_time_factor; "
        "lockstep: advance only as the actor grants and the learner keeps up", CLOCK_MODES
    )  # fmt: skip
    real_time_factor: float = setting(1.0, "clock_mode sim: simulated seconds per wall second", (0.01, 100.0))
    lockstep_max_backlog_updates: int = setting(
        100, "clock_mode lockstep: hold while the learner owes more updates than this", (0, 10**9)
    )
    lockstep_learner_lead_s: float = setting(
        CONTROL_PERIOD_S, "clock_mode lockstep: hold when the learner's newest report is older than this in simulated "
        "time (a stopped or killed learner holds the run)", (0.01, 60.0)
    )  # fmt: skip
    start_time_s: float = setting(
        0.0, "clock_mode sim/lockstep: simulated time starts at the first camera instant after this (a resumed run "
        "continues its time)", (0.0, 1e9)
    )  # fmt: skip


@dataclass(frozen=True)
class TickGrid:
    """Simulated instants of a sim node: tick ``k`` is at ``k * tick_ns`` ns; the physics steps between them.

    Integer nanoseconds, so no float drifts off the grid after hours. The camera renders at tick 0, then at the first
    tick at or after each multiple of the camera period (with the default 100 Hz and 10 Hz: every tenth tick,
    stamped exactly n * 0.1 s)."""

    tick_ns: int  # one tick of simulated time (ns)
    camera_period_ns: int  # the camera's period (ns)
    physics_steps_per_tick: int  # MuJoCo timesteps per tick

    def __post_init__(self) -> None:
        if self.tick_ns <= 0 or self.camera_period_ns <= 0 or self.physics_steps_per_tick <= 0:
            raise ValueError(f"TickGrid needs positive periods and steps, got {self}")

    @classmethod
    def from_rates(cls, state_rate_hz: float, camera_rate_hz: float, physics_timestep_s: float) -> TickGrid:
        """The grid of a node's rates. Raises ValueError when a tick is not a whole number of physics timesteps:
        simulated time would then drift from MuJoCo's own (``SimWorld.step`` rounds to whole timesteps)."""
        tick_ns = round(NS_PER_S / state_rate_hz)
        timestep_ns = round(physics_timestep_s * NS_PER_S)
        steps = round(tick_ns / timestep_ns)
        if steps < 1 or steps * timestep_ns != tick_ns:
            raise ValueError(
                f"state_rate_hz={state_rate_hz:g}: a tick of simulated time must be a whole number of physics "
                f"timesteps ({physics_timestep_s:g} s); use a rate such as 100, 50 or 250 Hz"
            )
        return cls(tick_ns, round(NS_PER_S / camera_rate_hz), steps)

    @property
    def tick_s(self) -> float:
        return self.tick_ns / NS_PER_S

    def time_ns(self, tick: int) -> int:
        return tick * self.tick_ns

    def first_tick_after(self, start_ns: int) -> int:
        """The tick of the first camera instant after ``start_ns`` (0 for 0): a resumed simulation's first tick, on
        the camera's and so the control period's grid."""
        if start_ns <= 0:
            return 0
        camera_ns = (start_ns // self.camera_period_ns + 1) * self.camera_period_ns
        return -(-camera_ns // self.tick_ns)

    def camera_due(self, tick: int) -> bool:
        """Whether tick ``tick`` renders: a multiple of the camera period lies in (previous tick, this tick]."""
        if tick == 0:
            return True
        return self.time_ns(tick) // self.camera_period_ns > self.time_ns(tick - 1) // self.camera_period_ns


class Pacer:
    """Paces simulated time to the wall clock times ``real_time_factor`` (clock_mode "sim").

    ``delay_s(t_ns, wall_now_s)`` says how long to wait before publishing instant ``t_ns``. A simulation that falls
    more than ``max_lag_s`` of wall time behind (an overloaded machine) starts pacing afresh from where it is
    instead of catching up in a burst; ``fell_behind`` counts those restarts.
    """

    def __init__(self, real_time_factor: float, max_lag_s: float = 0.5):
        if not real_time_factor > 0 or not max_lag_s > 0:
            raise ValueError(f"Pacer needs real_time_factor > 0 and max_lag_s > 0, got {real_time_factor}, {max_lag_s}")
        self.real_time_factor = float(real_time_factor)
        self.max_lag_s = float(max_lag_s)
        self.fell_behind = 0
        self._origin: tuple[float, int] | None = None  # (wall s, simulated ns) pacing counts from

    def delay_s(self, t_ns: int, wall_now_s: float) -> float:
        if self._origin is None:
            self._origin = (wall_now_s, t_ns)
            return 0.0
        wall0, sim0 = self._origin
        delay = wall0 + (t_ns - sim0) / NS_PER_S / self.real_time_factor - wall_now_s
        if delay < -self.max_lag_s:
            self._origin = (wall_now_s, t_ns)
            self.fell_behind += 1
            return 0.0
        return max(delay, 0.0)


class LockstepGate:
    """Whether a lockstep simulation may advance to an instant (so101_contract.sim_time's protocol).

    ``grant(t_ns)``: the actor needs nothing before ``t_ns``; the newest grant wins and one in the past changes
    nothing. ``progress(backlog, stamp_ns)``: the learner's newest ``LearnerProgress``; before the first one nothing
    is owed. An instant is allowed when it lies at most ``tolerance_ns`` (half a tick: a grant computed in float
    seconds may miss the grid by a rounding) beyond the grant, the backlog is within ``max_backlog``, and, once the
    learner has stamped a report with simulated time, at most ``learner_lead_ns`` beyond its newest stamp: a learner
    that stops reporting (killed, stopped, hung) holds the simulation within that much simulated time.
    Not thread-safe: the node calls it under its own lock.
    """

    def __init__(self, max_backlog: int, tolerance_ns: int, learner_lead_ns: int | None = None):
        if max_backlog < 0 or tolerance_ns < 0 or (learner_lead_ns is not None and learner_lead_ns <= 0):
            raise ValueError(
                f"LockstepGate needs max_backlog >= 0, tolerance_ns >= 0 and learner_lead_ns > 0 (or None), got "
                f"{max_backlog}, {tolerance_ns}, {learner_lead_ns}"
            )
        self.max_backlog = int(max_backlog)
        self.tolerance_ns = int(tolerance_ns)
        self.learner_lead_ns = learner_lead_ns
        self.granted_ns: int | None = None  # the newest grant; None before the actor's first
        self.backlog: int | None = None  # the learner's newest backlog; None before its first report
        self.learner_ns: int | None = None  # the newest simulated stamp of a learner report; None before one

    def grant(self, t_ns: int) -> bool:
        """Record a grant; True when it moved the grant forward."""
        if self.granted_ns is not None and t_ns <= self.granted_ns:
            return False
        self.granted_ns = int(t_ns)
        return True

    def progress(self, backlog: int, stamp_ns: int, now_ns: int) -> None:
        """A learner report stamped ``stamp_ns``, received at the simulation's ``now_ns``. A report stamped 0 was made
        before the learner had simulated time (its first): it counts as made now, so a learner that stops right
        after it still holds the run."""
        self.backlog = int(backlog)
        stamp_ns = int(stamp_ns) if stamp_ns > 0 else int(now_ns)
        if self.learner_ns is None or stamp_ns > self.learner_ns:
            self.learner_ns = stamp_ns

    def granted(self, t_ns: int) -> bool:
        return self.granted_ns is not None and t_ns <= self.granted_ns + self.tolerance_ns

    def learner_keeps_up(self) -> bool:
        return self.backlog is None or self.backlog <= self.max_backlog

    def learner_alive(self, t_ns: int) -> bool:
        if self.learner_lead_ns is None or self.learner_ns is None:
            return True
        return t_ns <= self.learner_ns + self.learner_lead_ns

    def may_advance_to(self, t_ns: int) -> bool:
        return self.granted(t_ns) and self.learner_keeps_up() and self.learner_alive(t_ns)

    def waiting_for(self, t_ns: int) -> str:
        """What holds instant ``t_ns`` back, in words for the log ("" when nothing does)."""
        reasons = []
        if not self.granted(t_ns):
            newest = "none yet" if self.granted_ns is None else f"newest {self.granted_ns / NS_PER_S:.3f} s"
            reasons.append(
                f"the actor's grant to {t_ns / NS_PER_S:.3f} s ({newest}; is the actor running with lockstep:=true?)"
            )
        if not self.learner_keeps_up():
            reasons.append(
                f"the learner (update backlog {self.backlog} > lockstep_max_backlog_updates {self.max_backlog})"
            )
        if not self.learner_alive(t_ns):
            reasons.append(
                f"the learner, silent since {self.learner_ns / NS_PER_S:.3f} s of simulated time (stopped, killed "
                "or hung? the run goes on when it reports again)"
            )
        return " and ".join(reasons)

    def holds(self, t_ns: int) -> frozenset[str]:
        """What holds instant ``t_ns`` back, as kinds: "actor" (its grant), "backlog" (the learner catching up:
        how lockstep keeps the ratio, routine), "silent" (the learner stopped reporting: never routine)."""
        kinds = set() if self.granted(t_ns) else {"actor"}
        kinds |= set() if self.learner_keeps_up() else {"backlog"}
        return frozenset(kinds | (set() if self.learner_alive(t_ns) else {"silent"}))


class HoldLog:
    """The log lines of a lockstep simulation's holds, said when what it waits for changes: a silent learner every
    time it stays silent ``silent_after_s`` of wall time and when it reports again (never routine; a report a few
    milliseconds late on a busy machine is not news), the routine holds (the actor's step, the learner's backlog) once
    a run, and only when one lasts ``report_after_s`` of wall time."""

    def __init__(self, report_after_s: float, silent_after_s: float = 1.0):
        self.report_after_s = float(report_after_s)
        self.silent_after_s = float(silent_after_s)
        self.holding_for: frozenset[str] = frozenset()  # the kinds of the hold last logged (LockstepGate.holds)
        self.told: frozenset[str] = frozenset()  # every kind logged so far

    def held(self, kinds: frozenset[str], reason: str, held_for_s: float) -> str | None:
        routine_told = kinds - {"silent"} <= self.told
        silent_long = "silent" in kinds and held_for_s >= self.silent_after_s
        if kinds == self.holding_for or not (silent_long or (held_for_s >= self.report_after_s and not routine_told)):
            return None
        self.holding_for, self.told = kinds, self.told | kinds
        return f"waiting for {reason}" + ("" if "silent" in kinds else " (routine in lockstep; said once)")

    def released(self) -> str | None:
        was_silent, self.holding_for = "silent" in self.holding_for, frozenset()
        return "the learner reports again" if was_silent else None
