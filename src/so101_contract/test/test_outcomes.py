import math
from types import SimpleNamespace

import pytest

from so101_contract.outcomes import Outcome, rates
from so101_contract.sim_time import CLOCK_MODES, uses_sim_time


def test_a_success_is_autonomous_only_without_any_intervention_step():
    assert Outcome(True, 0, 40).autonomous_success and not Outcome(True, 0, 40).assisted_success
    assert Outcome(True, 1, 40).assisted_success and not Outcome(True, 1, 40).autonomous_success
    failed = Outcome(False, 0, 100)
    assert not failed.autonomous_success and not failed.assisted_success


def test_rates_split_success_and_weigh_intervention_by_steps():
    group = [Outcome(True, 0, 20, episode_return=1.0), Outcome(True, 30, 60), Outcome(False, 10, 100)]
    r = rates(group)
    assert r.episodes == 3
    assert r.success == pytest.approx(2 / 3)
    assert r.autonomous_success == pytest.approx(1 / 3) and r.assisted_success == pytest.approx(1 / 3)
    assert r.autonomous_success + r.assisted_success == pytest.approx(r.success)
    assert r.intervention_fraction == pytest.approx(40 / 180)  # not the mean of per-episode fractions (0.25)
    assert r.mean_return == pytest.approx(1 / 3)


def test_no_episode_is_not_a_zero_rate():
    r = rates([])
    assert r.episodes == 0 and math.isnan(r.success) and math.isnan(r.intervention_fraction)


def test_from_msg_reads_the_episode_summary_fields():
    # the contract imports nothing from the project: an object with EpisodeSummary's field names stands in
    msg = SimpleNamespace(success=True, intervention_steps=3, steps=50, evaluation=True, episode_return=2.5)
    outcome = Outcome.from_msg(msg)
    assert outcome == Outcome(True, 3, 50, True, 2.5)
    assert outcome.intervention_fraction == pytest.approx(0.06)


def test_only_the_wall_clock_mode_keeps_the_wall_clock():
    assert [uses_sim_time(m) for m in CLOCK_MODES] == [False, True, True]
    with pytest.raises(ValueError, match="clock mode 'fast'"):
        uses_sim_time("fast")
