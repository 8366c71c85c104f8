"""The actor's clock without a graph: a fake wall clock and a fake simulation that advances only up to the grants."""

import itertools
import threading

import pytest

from so101_hilserl_actor.actor_loop import Pacer
from so101_hilserl_actor.control_clock import NO_CLOCK, ControlClock

PERIOD_NS = 100_000_000
TICK_NS = 10_000_000  # the fake simulation's physics tick


class FakeSim:
    """Wall time advances by each wall wait; simulated time advances one tick per wall wait while below the newest
    grant (lockstep) or freely (``free``), or not at all (``running`` False). Records every event in order."""

    def __init__(self, start_ns=1_230_000_000, free=False, running=True):
        self.wall, self.sim_ns, self.free, self.running = 50.0, start_ns, free, running
        self.grants: list[int] = []
        self.events: list[tuple] = []
        self.warnings: list[str] = []
        self.stop = threading.Event()
        self.on_wait = None  # called at each wall wait (a test's hook, e.g. to set the stop event)

    def grant(self, ns: int) -> None:
        self.grants.append(ns)
        self.events.append(("grant", ns, self.sim_ns))

    def wall_wait(self, seconds: float) -> bool:
        self.events.append(("wait", seconds, self.sim_ns))
        self.wall += seconds
        if self.on_wait:
            self.on_wait(self)
        if self.running and (self.free or (self.grants and self.sim_ns + TICK_NS <= self.grants[-1])):
            self.sim_ns += TICK_NS
        return self.stop.is_set()

    def clock(self, lockstep=True, **kw) -> ControlClock:
        return ControlClock(self.stop, PERIOD_NS * 1e-9, sim_now_ns=lambda: self.sim_ns,
                            grant=self.grant if lockstep else None, warn=self.warnings.append,
                            wall=lambda: self.wall, wall_wait=self.wall_wait, **kw)  # fmt: skip


def test_lockstep_sleep_grants_its_target_before_waiting_and_returns_exactly_there():
    sim = FakeSim()
    clock = sim.clock()
    assert clock.sleep_until(1.5)
    assert sim.events[0] == ("grant", 1_500_000_000, 1_230_000_000)  # granted first, then waited
    assert sim.events[1][0] == "wait"
    assert sim.sim_ns == 1_500_000_000 and sim.grants == [1_500_000_000]  # the simulation stopped at the grant
    assert clock.sleep(0.2) and sim.sim_ns == 1_700_000_000 and sim.grants[-1] == 1_700_000_000


def test_a_wait_for_anything_else_grants_one_period_ahead_as_time_advances():
    sim = FakeSim()
    clock = sim.clock()
    assert not clock.wait_for(lambda: sim.sim_ns >= 10**12, timeout_s=0.5)  # never true: ends at its sim timeout
    assert sim.sim_ns == 1_230_000_000 + 500_000_000
    assert sim.grants[0] == 1_230_000_000 + PERIOD_NS  # the first grant: one period ahead of the start
    assert all(b > a for a, b in itertools.pairwise(sim.grants))  # grants never go back
    assert max(sim.grants) <= sim.sim_ns + PERIOD_NS  # never more than one period ahead
    assert clock.wait_for(lambda: sim.sim_ns >= 1_800_000_000, timeout_s=5.0)
    without = sim.clock()  # grant_ahead False: it grants nothing, and the simulation holds
    before = len(sim.grants)
    assert not without.wait_for(lambda: False, wall_timeout_s=0.05, grant_ahead=False)
    assert len(sim.grants) == before


def test_step_instants_lie_on_the_period_grid_and_never_before_the_newest_grant():
    sim = FakeSim(start_ns=1_230_000_000)
    clock = sim.clock()
    assert clock.next_step_time() == pytest.approx(1.3)
    clock.wait_for(lambda: False, timeout_s=0.02)  # granted ahead to 1.33 s: the simulation may run there
    assert sim.grants[-1] == 1_330_000_000 and sim.sim_ns == 1_250_000_000
    assert round(clock.next_step_time() * 1e9) == 1_400_000_000  # not 1.3: the simulation may already be past it
    pacer = Pacer(0.1, clock=clock)
    starts = []
    for _ in range(30):
        assert pacer.sleep_until_due()
        starts.append(sim.sim_ns)
        pacer.step_started()
        pacer.wait()
    assert starts[0] == 1_400_000_000
    assert {b - a for a, b in itertools.pairwise(starts)} == {PERIOD_NS}  # exactly, in integer ns
    assert pacer.overruns == 0 and sim.grants[-1] == starts[-1] + PERIOD_NS  # granted only up to the next step


def test_sim_mode_without_lockstep_follows_the_clock_and_grants_nothing():
    sim = FakeSim(free=True)
    clock = sim.clock(lockstep=False)
    assert clock.simulated and not clock.lockstep
    assert clock.sleep(0.3) and sim.sim_ns == 1_530_000_000 and sim.grants == []


def test_every_wait_returns_early_on_stop():
    sim = FakeSim(running=False)  # simulated time stands still: only the stop can end these waits
    clock = sim.clock()

    def stop_after_three(s):
        if sum(e[0] == "wait" for e in s.events) >= 3:
            s.stop.set()

    sim.on_wait = stop_after_three
    assert clock.sleep(5.0) is False
    assert clock.wait_for(lambda: False) is False
    assert clock.sleep_until(99.0) is False
    assert Pacer(0.1, clock=clock).wait() is False
    # a wait that is not stoppable (the shutdown's last image) ends at its wall bound instead
    assert clock.wait_for(lambda: False, wall_timeout_s=0.3, stoppable=False) is False
    assert sim.wall >= 50.3


def test_a_stalled_simulation_is_reported_throttled_and_a_missing_clock_named():
    sim = FakeSim(start_ns=0, running=False)
    clock = sim.clock(stall_warn_s=1.0, poll_s=0.01)
    assert not clock.wait_for(lambda: False, wall_timeout_s=3.55)
    assert len(sim.warnings) == 3  # after 1 s, 2 s and 3 s of standing still: once per second, not per poll
    assert all(w.startswith(NO_CLOCK) for w in sim.warnings)
    assert "simulated time is 0" in sim.warnings[0]
    sim.warnings.clear()
    sim.sim_ns = 5_000_000_000  # the clock ran, then stood still: the warning says where, and what was granted
    assert not clock.wait_for(lambda: False, wall_timeout_s=5.5)
    assert sim.warnings == []  # in lockstep a held simulation (the learner catching up) is no alarm at once ...
    assert not clock.wait_for(lambda: False, wall_timeout_s=6.5)
    assert len(sim.warnings) == 1  # ... only after six times as long
    assert "5.000 s" in sim.warnings[0] and "granted up to 5.100 s" in sim.warnings[0]
    assert "the simulation holds" in sim.warnings[0] and NO_CLOCK not in sim.warnings[0]  # /clock has run


def test_an_unchanged_grant_is_published_again_for_a_late_subscriber():
    sim = FakeSim(running=False)
    clock = sim.clock(poll_s=0.01, republish_s=0.5)
    sim.on_wait = lambda s: s.stop.set() if s.wall >= 51.6 else None  # stop after 1.6 s of wall time
    assert clock.sleep_until(2.0) is False  # never reached: the simulation is not running
    assert sim.grants == [2_000_000_000] * 4  # at once, then every 0.5 s of wall time


def test_wall_mode_waits_on_the_wall_clock_and_grants_nothing():
    sim = FakeSim()
    clock = ControlClock(sim.stop, 0.1, wall=lambda: sim.wall, wall_wait=sim.wall_wait)
    assert not clock.simulated and clock.monotonic() == 50.0 and clock.next_step_time() == 50.0
    assert clock.sleep(0.25) and sim.wall == pytest.approx(50.25)
    assert clock.sleep_until(51.0) and sim.wall == pytest.approx(51.0)
    assert not clock.wait_for(lambda: False, timeout_s=0.1) and sim.grants == []
    with pytest.raises(ValueError, match="lockstep grants need simulated time"):
        ControlClock(sim.stop, 0.1, grant=sim.grant)


def test_an_overrun_in_simulated_time_restarts_on_the_next_grid_instant():
    sim = FakeSim(free=True)  # clock_mode sim: time runs whatever the actor does
    clock = sim.clock(lockstep=False)
    pacer = Pacer(0.1, clock=clock)
    starts = []
    for compute_ns in (20_000_000, 230_000_000, 20_000_000, 20_000_000):
        assert pacer.sleep_until_due()
        starts.append(sim.sim_ns)
        sim.sim_ns += compute_ns  # the step's compute, in simulated time
        pacer.wait()
    assert starts[0] == 1_300_000_000  # the first grid instant from 1.23 s
    assert [b - a for a, b in itertools.pairwise(starts)] == [PERIOD_NS, 3 * PERIOD_NS, PERIOD_NS]
    assert pacer.overruns == 1 and all(s % PERIOD_NS == 0 for s in starts)
