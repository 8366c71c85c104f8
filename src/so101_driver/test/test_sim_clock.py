"""The sim node's simulated-time decisions without a graph: the tick grid, real-time pacing, the lockstep gate."""

import pytest

from so101_driver.sim.sim_clock import HoldLog, LockstepGate, Pacer, TickGrid

MS = 1_000_000  # ns


def test_default_grid_has_exact_camera_instants_from_zero():
    grid = TickGrid.from_rates(100.0, 10.0, 0.002)
    assert (grid.tick_ns, grid.camera_period_ns, grid.physics_steps_per_tick) == (10 * MS, 100 * MS, 5)
    due = [grid.time_ns(k) for k in range(10_000 * 100 + 1) if grid.camera_due(k)]  # ~10000 s of simulated time
    assert due[:4] == [0, 100 * MS, 200 * MS, 300 * MS]
    assert due == [k * 100 * MS for k in range(len(due))]  # integer grid: no drift after hours


def test_camera_period_not_a_multiple_of_the_tick_renders_at_the_first_tick_after_each_instant():
    grid = TickGrid.from_rates(100.0, 30.0, 0.002)  # camera every 33.3 ms
    due = [grid.time_ns(k) for k in range(101) if grid.camera_due(k)]
    assert due[:5] == [0, 40 * MS, 70 * MS, 100 * MS, 140 * MS]
    assert len(due) == 31  # 30 per second, plus t = 0


@pytest.mark.parametrize("rate", [300.0, 700.0, 1000.0])
def test_a_tick_that_is_not_whole_physics_steps_is_refused(rate):
    with pytest.raises(ValueError, match="state_rate_hz"):
        TickGrid.from_rates(rate, 10.0, 0.002)


def test_pacer_runs_simulated_time_at_the_factor_and_does_not_burst_after_a_stall():
    pacer = Pacer(real_time_factor=5.0)
    assert pacer.delay_s(0, wall_now_s=100.0) == 0.0
    assert pacer.delay_s(1000 * MS, wall_now_s=100.0) == pytest.approx(0.2)  # 1 s simulated = 0.2 s wall
    assert pacer.delay_s(1000 * MS, wall_now_s=100.15) == pytest.approx(0.05)
    assert pacer.delay_s(2000 * MS, wall_now_s=100.5) == 0.0  # 0.1 s late: on time, no restart
    assert pacer.fell_behind == 0
    assert pacer.delay_s(3000 * MS, wall_now_s=110.0) == 0.0  # stalled for 10 s: pace afresh from here...
    assert pacer.fell_behind == 1
    assert pacer.delay_s(3010 * MS, wall_now_s=110.0) == pytest.approx(0.002)  # ...not a 10 s burst


def test_gate_holds_until_the_first_grant_then_follows_the_newest():
    gate = LockstepGate(max_backlog=100, tolerance_ns=5 * MS)
    assert not gate.may_advance_to(0)
    assert "none yet" in gate.waiting_for(0) and "lockstep:=true" in gate.waiting_for(0)
    assert gate.grant(300 * MS)
    assert gate.may_advance_to(0) and gate.may_advance_to(300 * MS)
    assert not gate.may_advance_to(310 * MS)
    assert "0.310 s" in gate.waiting_for(310 * MS) and "newest 0.300 s" in gate.waiting_for(310 * MS)
    assert not gate.grant(200 * MS)  # a grant in the past changes nothing
    assert gate.granted_ns == 300 * MS and not gate.may_advance_to(310 * MS)
    assert gate.waiting_for(300 * MS) == ""


def test_gate_tolerates_half_a_tick_of_rounding_in_a_grant():
    gate = LockstepGate(max_backlog=0, tolerance_ns=5 * MS)
    gate.grant(round(0.3 * 1e9) - 1)  # 0.1 + 0.2 in float seconds, as an actor might compute it
    assert gate.may_advance_to(300 * MS)
    assert not gate.may_advance_to(310 * MS)


def test_gate_holds_while_the_learner_owes_more_than_the_bound():
    gate = LockstepGate(max_backlog=100, tolerance_ns=0)
    gate.grant(1000 * MS)
    assert gate.may_advance_to(500 * MS)  # no learner heard yet: nothing owed
    gate.progress(101, 0, 0)
    assert not gate.may_advance_to(500 * MS)
    assert gate.waiting_for(500 * MS) == "the learner (update backlog 101 > lockstep_max_backlog_updates 100)"
    gate.progress(100, 0, 0)
    assert gate.may_advance_to(500 * MS)
    gate.progress(5000, 0, 0)
    both = gate.waiting_for(1500 * MS)
    assert "actor's grant" in both and "backlog 5000" in both


def test_gate_holds_within_the_lead_of_a_learner_that_stopped_reporting():
    gate = LockstepGate(max_backlog=100, tolerance_ns=0, learner_lead_ns=100 * MS)
    gate.grant(10_000 * MS)
    assert gate.may_advance_to(5_000 * MS) and gate.holds(5_000 * MS) == frozenset()  # no learner heard yet
    gate.progress(0, stamp_ns=0, now_ns=1_500 * MS)  # made before the learner had simulated time: counts as now
    assert gate.may_advance_to(1_600 * MS) and not gate.may_advance_to(1_610 * MS)
    gate.progress(0, stamp_ns=2_000 * MS, now_ns=2_050 * MS)
    assert gate.may_advance_to(2_100 * MS)  # one lead beyond the learner's newest report ...
    assert not gate.may_advance_to(2_110 * MS)  # ... and no further: a silent learner holds the run
    assert gate.holds(2_110 * MS) == {"silent"} and "silent since 2.000 s" in gate.waiting_for(2_110 * MS)
    gate.progress(0, stamp_ns=1_000 * MS, now_ns=2_050 * MS)  # a late, older report moves nothing back
    assert gate.learner_ns == 2_000 * MS
    gate.progress(101, stamp_ns=2_100 * MS, now_ns=2_100 * MS)
    assert gate.holds(2_150 * MS) == {"backlog"}  # reporting again, but owing: routine
    assert gate.holds(20_000 * MS) == {"actor", "backlog", "silent"}


def test_gate_refuses_negative_bounds():
    with pytest.raises(ValueError, match="max_backlog"):
        LockstepGate(max_backlog=-1, tolerance_ns=0)


def test_a_resumed_simulation_starts_on_the_first_camera_instant_after_the_runs_time():
    grid = TickGrid.from_rates(100.0, 10.0, 0.002)
    assert grid.first_tick_after(0) == 0
    tick = grid.first_tick_after(1_234_560 * MS)
    assert grid.time_ns(tick) == 1_234_600 * MS and grid.camera_due(tick)
    assert grid.time_ns(grid.first_tick_after(1_234_600 * MS)) == 1_234_700 * MS  # strictly after


def test_hold_log_says_a_silent_learner_each_time_and_a_routine_hold_once():
    log = HoldLog(report_after_s=5.0, silent_after_s=1.0)
    actor = frozenset({"actor"})
    assert log.held(actor, "the actor's grant", held_for_s=1.0) is None  # short: nothing
    assert (
        log.held(actor, "the actor's grant", held_for_s=5.0)
        == "waiting for the actor's grant (routine in lockstep; said once)"
    )
    assert log.held(actor, "the actor's grant to 9 s", held_for_s=9.0) is None  # same kind, new text: said already
    assert log.released() is None  # a routine hold's end is not news
    assert log.held(actor, "the actor's grant", held_for_s=60.0) is None  # once a run
    silent = frozenset({"silent"})
    assert log.held(silent, "the learner, silent", held_for_s=0.3) is None  # a late report is not a silent learner
    assert log.released() is None
    assert log.held(silent, "the learner, silent", held_for_s=1.0) == "waiting for the learner, silent"
    assert log.held(silent, "the learner, silent", held_for_s=3.0) is None
    assert log.released() == "the learner reports again"
    assert log.held(silent, "the learner, silent", held_for_s=1.5) == "waiting for the learner, silent"  # again
