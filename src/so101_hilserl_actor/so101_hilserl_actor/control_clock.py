"""The time the actor loop waits on: the wall clock on the robot, simulated time in simulation, and lockstep grants.

Plain Python (a fake clock drives it in tests); the node passes its clock and a publisher. In simulation a step
starts on a multiple of the control period, where the simulation renders its images; in lockstep the actor grants
each instant before it waits for it, and the simulation never runs past the newest grant. Nothing waits silently: a
wait during which simulated time stands still warns (STALL_WARN_S), but no wait has a wall bound unless the caller
gives one, since a lockstep simulation also holds, legitimately, while the learner catches up.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

POLL_S = 0.001  # wall seconds between two readings of the simulated clock while waiting
WALL_POLL_S = 0.01  # on the wall clock a condition is polled this often (nothing else to follow)
REPUBLISH_S = 0.5  # an unchanged grant is published again this often (wall seconds) while a wait lasts
STALL_WARN_S = 10.0  # simulated time standing still this long (wall seconds) during a wait: a warning
LOCKSTEP_STALL_FACTOR = 6  # in lockstep, once /clock has run: a CPU learner catching up holds it for tens of seconds
NO_CLOCK = "no /clock: is the simulation running with clock_mode sim or lockstep?"


class ControlClock:
    """The actor loop's clock and waits, in one of three modes.

    * Wall (``use_sim_time`` false): time is ``time.monotonic``; a wait is a wait on the stop event.
    * Simulated (``use_sim_time``): time is the node clock, which follows ``/clock``. A wait polls it with short wall
      waits (``POLL_S``) and returns early when the stop event is set. A step instant is a multiple of the control
      period in simulated time (``next_step_time``): the simulation renders its images on that grid, so the image of a
      step's instant exists.
    * Lockstep (simulated, and the actor's ``lockstep`` parameter): before a wait until ``t`` the actor grants ``t``
      (``grant``, published on so101_contract.sim_time.ADVANCE_TOPIC); a wait for anything else (inputs, an image after
      the reset) grants one control period ahead of simulated time as it goes. The simulation never runs past the newest
      grant, so a step that starts at the granted instant starts exactly there; ``next_step_time`` is never earlier
      than the newest grant for that reason. An unchanged grant is published again every ``REPUBLISH_S`` of wall time
      while a wait lasts, for a simulation that subscribed late.

    Nothing waits silently: while simulated time stands still for ``STALL_WARN_S`` of wall time during a wait, a
    warning says so (at most once per ``STALL_WARN_S``); in lockstep, once ``/clock`` has run, only after
    ``LOCKSTEP_STALL_FACTOR`` times that (the simulation logs why it holds). The waits themselves have no wall bound
    unless the caller gives one: in lockstep the simulation also holds, legitimately, while the learner catches up.

    ``stop``: the event that ends every wait early. ``period_s``: the control period. ``sim_now_ns``: the node
    clock in nanoseconds (None: wall mode). ``grant``: publishes a grant in nanoseconds of simulated time (None: no
    lockstep; needs ``sim_now_ns``). ``warn``: where the stall warning goes. ``wall`` / ``wall_wait``: the wall
    clock (seconds) and a wall wait that returns True when stopped (tests pass fakes; a fake ``wall_wait`` also
    stands for the plain sleep of the waits that are not ``stoppable``)."""

    def __init__(
        self,
        stop: threading.Event,
        period_s: float,
        *,
        sim_now_ns: Callable[[], int] | None = None,
        grant: Callable[[int], None] | None = None,
        warn: Callable[[str], None] = lambda message: None,
        wall: Callable[[], float] = time.monotonic,
        wall_wait: Callable[[float], bool] | None = None,
        poll_s: float = POLL_S,
        stall_warn_s: float = STALL_WARN_S,
        republish_s: float = REPUBLISH_S,
    ):
        if not period_s > 0:
            raise ValueError(f"period_s must be positive (seconds), got {period_s}")
        if grant is not None and sim_now_ns is None:
            raise ValueError("lockstep grants need simulated time (sim_now_ns)")
        self._stop = stop
        self.period_ns = round(period_s * 1e9)
        self._sim_now_ns, self._grant, self._warn = sim_now_ns, grant, warn
        self._wall = wall
        self._wall_wait = wall_wait or stop.wait
        self._wall_sleep = time.sleep if wall_wait is None else wall_wait  # a wait the stop event does not end
        self.poll_s, self.stall_warn_s, self.republish_s = poll_s, stall_warn_s, republish_s
        self.granted_ns = -1  # the newest grant; -1 before the first
        self._granted_at = -math.inf  # wall time it was last published
        self._warned_at = -math.inf

    @property
    def simulated(self) -> bool:
        return self._sim_now_ns is not None

    @property
    def lockstep(self) -> bool:
        return self._grant is not None

    def now_ns(self) -> int:
        return int(self._sim_now_ns()) if self._sim_now_ns is not None else round(self._wall() * 1e9)

    def monotonic(self) -> float:
        """Now in seconds (the Pacer's clock)."""
        return self.now_ns() * 1e-9 if self.simulated else self._wall()

    def next_step_time(self) -> float:
        """When a step can start after a pause (seconds): now on the wall clock; in simulated time the next
        multiple of the control period, not before the newest grant (see the class docstring)."""
        if not self.simulated:
            return self._wall()
        earliest = max(self.now_ns(), self.granted_ns)
        return -(-earliest // self.period_ns) * self.period_ns * 1e-9

    # ---- waits: each returns False when the stop event ended it ----
    def sleep(self, seconds: float) -> bool:
        if not self.simulated:
            return not self._wall_wait(max(seconds, 0.0))
        return self._sleep_until_ns(self.now_ns() + round(seconds * 1e9))

    def sleep_until(self, t_s: float) -> bool:
        if not self.simulated:
            return not self._wall_wait(max(t_s - self._wall(), 0.0))
        return self._sleep_until_ns(round(t_s * 1e9))

    def _sleep_until_ns(self, target_ns: int) -> bool:
        if self._stop.is_set():
            return False
        if self.lockstep:
            self._publish(max(target_ns, self.granted_ns))  # grants never go back: the simulation cannot
        return self._poll(lambda: self.now_ns() >= target_ns, None, None, grant_ahead=False, stoppable=True)

    def wait_for(
        self,
        condition: Callable[[], object],
        *,
        timeout_s: float | None = None,
        wall_timeout_s: float | None = None,
        grant_ahead: bool = True,
        stoppable: bool = True,
    ) -> bool:
        """Poll ``condition`` until it holds (True); False when ``timeout_s`` of this clock's time or
        ``wall_timeout_s`` of wall time passed, or (``stoppable``) the stop event is set. In lockstep with
        ``grant_ahead`` it grants one control period ahead as simulated time advances."""
        deadline_ns = None if timeout_s is None else self.now_ns() + round(timeout_s * 1e9)
        wall_deadline = None if wall_timeout_s is None else self._wall() + wall_timeout_s
        return self._poll(condition, deadline_ns, wall_deadline, grant_ahead=grant_ahead, stoppable=stoppable)

    # ---- internals ----
    def _poll(self, condition, deadline_ns, wall_deadline, *, grant_ahead: bool, stoppable: bool) -> bool:
        last_now, progress_at = None, self._wall()
        while True:
            if stoppable and self._stop.is_set():
                return False
            if condition():
                return True
            now, wall = self.now_ns(), self._wall()
            if deadline_ns is not None and now >= deadline_ns:
                return False
            if wall_deadline is not None and wall >= wall_deadline:
                return False
            if self.simulated:
                if now != last_now:
                    last_now, progress_at = now, wall
                elif wall - progress_at >= self._stall_bound(now):
                    self._stalled(now, wall - progress_at, wall)
                if self.lockstep:
                    if grant_ahead and now + self.period_ns // 2 >= self.granted_ns:
                        self._publish(now + self.period_ns)
                    elif wall - self._granted_at >= self.republish_s:
                        self._publish(self.granted_ns)
            poll = self.poll_s if self.simulated else max(self.poll_s, WALL_POLL_S)
            (self._wall_wait if stoppable else self._wall_sleep)(poll)

    def _publish(self, target_ns: int) -> None:
        if target_ns < 0:
            return
        self.granted_ns = max(int(target_ns), self.granted_ns)
        self._granted_at = self._wall()
        self._grant(self.granted_ns)

    def _stall_bound(self, now_ns: int) -> float:
        return self.stall_warn_s * (LOCKSTEP_STALL_FACTOR if self.lockstep and now_ns > 0 else 1)

    def _stalled(self, now_ns: int, for_s: float, wall: float) -> None:
        if wall - self._warned_at < self._stall_bound(now_ns):
            return
        self._warned_at = wall
        if now_ns == 0:
            self._warn(f"{NO_CLOCK} (simulated time is 0 after {for_s:.0f} s of waiting)")
            return
        if self.lockstep:  # /clock has run: the simulation holds, and its log says what for
            self._warn(f"simulated time has stood at {now_ns * 1e-9:.3f} s for {for_s:.0f} s of wall time, "
                       f"granted up to {self.granted_ns * 1e-9:.3f} s: the simulation holds (its log says what "
                       "for)")  # fmt: skip
            return
        self._warn(f"simulated time has stood at {now_ns * 1e-9:.3f} s for {for_s:.0f} s of wall time: is the "
                   "simulation still running?")  # fmt: skip
