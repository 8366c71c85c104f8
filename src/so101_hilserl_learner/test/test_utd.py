"""The UTD contract: updates per committed training transition, backlog capped, achieved ratio reported."""

import math

import pytest

from so101_hilserl_learner.utd import UtdBudget


def run_updates(budget: UtdBudget, limit: int | None = None) -> int:
    done = 0
    while budget.updates_due() >= 1 and (limit is None or done < limit):
        budget.did_update()
        done += 1
    return done


def test_a_learner_that_keeps_up_achieves_the_requested_ratio():
    budget = UtdBudget(ratio=2.0, max_backlog=UtdBudget.cap_for(2.0, 200))
    assert math.isnan(budget.achieved) and budget.updates_due() == 0
    for _ in range(5):
        budget.commit(100)  # one 100-step episode committed at its end
        assert run_updates(budget) == 200 and not budget.behind
    assert budget.achieved == pytest.approx(2.0) and budget.shed == 0 and budget.backlog == 0


def test_fractional_ratios_accumulate():
    budget = UtdBudget(ratio=0.5, max_backlog=100)
    done = 0
    for _ in range(7):
        budget.commit(3)
        done += run_updates(budget)
    assert done == 10 and budget.achieved == pytest.approx(10 / 21)


def test_a_slow_learner_sheds_beyond_the_cap_and_reports_it():
    budget = UtdBudget(ratio=1.0, max_backlog=150)
    budget.commit(100)
    assert run_updates(budget, limit=20) == 20  # slow: only 20 updates while the next episode ran
    budget.commit(100)  # owes 80 + 100 = 180 > 150
    assert budget.behind and budget.backlog == 150 and budget.shed == pytest.approx(30)
    assert run_updates(budget) == 150  # never more than the cap back to back
    assert budget.achieved == pytest.approx(170 / 200)
    budget.commit(100)
    assert not budget.behind  # it caught up: the next commit fits under the cap


def test_the_cap_never_lets_a_backlog_run_away():
    budget = UtdBudget(ratio=1.0, max_backlog=UtdBudget.cap_for(1.0, 200))
    for _ in range(1000):  # a CPU learner that never updates while episodes keep coming
        budget.commit(100)
    assert budget.backlog == 200 and budget.behind and budget.shed == pytest.approx(100_000 - 200)


def test_nothing_is_owed_without_committed_data():
    budget = UtdBudget(ratio=1.0, max_backlog=10)
    budget.commit(0)
    assert budget.updates_due() == 0
    with pytest.raises(RuntimeError):
        budget.did_update()
    with pytest.raises(ValueError):
        budget.commit(-1)


def test_ratio_zero_collects_without_training_and_bad_values_are_refused():
    budget = UtdBudget(ratio=0.0, max_backlog=1)
    budget.commit(100)
    assert budget.updates_due() == 0 and budget.achieved == 0.0
    for ratio in (-1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="utd_ratio"):
            UtdBudget(ratio=ratio, max_backlog=10)
    with pytest.raises(ValueError):
        UtdBudget(ratio=1.0, max_backlog=0)
    assert UtdBudget.cap_for(2.0, 200) == 400 and UtdBudget.cap_for(0.0, 200) == 1
