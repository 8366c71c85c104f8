import math

import pytest
from builtin_interfaces.msg import Time

from so101_contract.stamps import stamp_to_ns
from so101_hilserl_core.episode import (
    FAILURE_MARK,
    STOPPED,
    SUCCESS,
    SUCCESS_MARK,
    TIMEOUT,
    EpisodeConfig,
    EpisodeTracker,
)

CFG = EpisodeConfig(max_steps=20, consecutive_success_frames=3, min_steps_before_success=5)
PERIOD_NS = 100_000_000
THRESHOLD = 0.7  # stands in for the reward node's decision in these tests: success = probability >= THRESHOLD


def _stamp(step: int) -> int:
    return 1_000_000_000 + step * PERIOD_NS


def _run(tracker, probabilities, start=1, intervention=None):
    """Step through images start, start+1, ... whose classifier outputs are ``probabilities`` (None = no output)."""
    outcomes = []
    for i, p in enumerate(probabilities):
        stamp = _stamp(start + i)
        if p is not None:
            tracker.record_reward_signal(stamp, p, p >= THRESHOLD)
        flag = bool(intervention[i]) if intervention is not None else False
        outcomes.append(tracker.step(stamp, intervention=flag))
        if outcomes[-1].end_reason:
            break
    return outcomes


def test_defaults_are_as_documented():
    cfg = EpisodeConfig()
    assert (cfg.max_steps, cfg.success_reward, cfg.step_penalty, cfg.failure_penalty) == (100, 10.0, -0.05, 0.0)
    assert cfg.consecutive_success_frames >= 1 and cfg.min_steps_before_success >= 0


def test_reward_is_matched_by_exact_stamp():
    tracker = EpisodeTracker(CFG)
    tracker.reset(1)
    tracker.record_reward_signal(_stamp(1), 0.9, True)
    tracker.record_reward_signal(_stamp(2), 0.2, False)
    assert tracker.verdict(_stamp(1)) == (pytest.approx(0.9), True)
    assert tracker.verdict(_stamp(2)) == (pytest.approx(0.2), False)
    probability, positive = tracker.verdict(_stamp(1) + 1)  # 1 ns off: not the same image
    assert not positive and math.isnan(probability) and not tracker.judged(_stamp(1) + 1)
    # builtin_interfaces/Time stamps match their nanosecond value.
    assert tracker.judged(Time(sec=1, nanosec=100_000_000))
    assert stamp_to_ns(Time(sec=2, nanosec=5)) == 2_000_000_005


def test_the_reward_nodes_verdict_decides_not_the_probability():
    tracker = EpisodeTracker(CFG)
    tracker.record_reward_signal(5, 0.95, False)  # a strict reward-node threshold (0.99) said no
    assert tracker.verdict(5) == (pytest.approx(0.95), False)
    tracker.record_reward_signal(6, 0.3, True)  # a lenient one (0.25) said yes
    assert tracker.verdict(6) == (pytest.approx(0.3), True)
    assert tracker.judged(5) and not tracker.judged(7)
    for bad in (1.5, -0.1, math.nan):
        with pytest.raises(ValueError, match="probability"):
            tracker.record_reward_signal(7, bad, True)


def test_success_streak_follows_the_verdicts():
    tracker = EpisodeTracker(CFG)
    tracker.reset(1)
    for step in range(1, 8):  # high probabilities, but the reward node says no: never a success
        tracker.record_reward_signal(_stamp(step), 0.9, False)
        assert tracker.step(_stamp(step)).end_reason == ""
    for step in range(8, 11):  # low probabilities the reward node calls positive: success after 3
        tracker.record_reward_signal(_stamp(step), 0.4, True)
        outcome = tracker.step(_stamp(step))
    assert outcome.end_reason == SUCCESS and outcome.terminated


def test_missing_match_counts_penalises_and_breaks_the_streak():
    tracker = EpisodeTracker(CFG)
    tracker.reset(1)
    outcomes = _run(tracker, [0.9] * 4 + [None, 0.9, 0.9])
    assert len(outcomes) == 7
    assert not outcomes[4].matched and math.isnan(outcomes[4].probability) and outcomes[4].reward == -0.05
    assert tracker.reward_misses == 1
    assert not any(o.terminated for o in outcomes)  # the miss at step 5 reset the streak
    assert tracker.streak == 2


def test_success_needs_n_consecutive_positive_frames():
    tracker = EpisodeTracker(CFG)
    tracker.reset(1)
    outcomes = _run(tracker, [0.1] * 6 + [0.9, 0.9, 0.2, 0.9, 0.9, 0.95, 0.1])
    assert len(outcomes) == 12  # ends at the third positive in a row (steps 10, 11, 12)
    last = outcomes[-1]
    assert (last.terminated, last.truncated, last.end_reason) == (True, False, SUCCESS)
    assert tracker.success and tracker.done
    # Only the finishing frame pays: the two positives before the miss at step 9 earned the step penalty.
    assert [o.reward for o in outcomes] == [-0.05] * 11 + [10.0]
    assert tracker.episode_return == pytest.approx(11 * -0.05 + 10.0)
    with pytest.raises(RuntimeError, match="already ended"):
        tracker.step(_stamp(99))


def test_success_waits_for_the_minimum_step_count():
    tracker = EpisodeTracker(CFG)
    tracker.reset(1)
    outcomes = _run(tracker, [0.9] * 10)
    # Streak reaches 3 at step 3, but success only from step min_steps_before_success = 5.
    assert len(outcomes) == 5 and outcomes[-1].end_reason == SUCCESS
    assert [o.reward for o in outcomes] == [-0.05] * 4 + [10.0]


def test_timeout_truncates_at_max_steps():
    tracker = EpisodeTracker(CFG)
    tracker.reset(3)
    outcomes = _run(tracker, [0.1] * 50)
    assert len(outcomes) == CFG.max_steps
    last = outcomes[-1]
    assert (last.terminated, last.truncated, last.end_reason) == (False, True, TIMEOUT)
    assert not tracker.success
    assert tracker.episode_return == pytest.approx(-0.05 * CFG.max_steps)
    assert not any(o.end_reason for o in outcomes[:-1])


def test_operator_marks_end_the_episode_at_the_next_step():
    tracker = EpisodeTracker(CFG)
    tracker.reset(1)
    _run(tracker, [0.1, 0.1])
    tracker.mark_success()
    outcome = _run(tracker, [0.1], start=3)[0]
    assert (outcome.terminated, outcome.truncated, outcome.end_reason) == (True, False, SUCCESS_MARK)
    assert outcome.reward == 10.0 and tracker.success  # the operator's word replaces the classifier's
    assert tracker.summary()["end_reason"] == SUCCESS_MARK

    tracker.reset(2)
    _run(tracker, [0.1])
    tracker.mark_failure()
    outcome = _run(tracker, [0.9], start=2)[0]
    # Without a failure penalty a failure mark truncates: the learner bootstraps, giving up is not rewarded.
    assert (outcome.terminated, outcome.truncated, outcome.end_reason) == (False, True, FAILURE_MARK)
    assert outcome.reward == -0.05  # a positive frame that does not finish the episode pays nothing
    assert not tracker.success

    # A mark pressed between episodes does not end the next one.
    tracker.mark_failure()
    tracker.reset(3)
    assert _run(tracker, [0.1])[0].end_reason == ""


def test_counters_for_the_episode_summary():
    tracker = EpisodeTracker(CFG)
    tracker.reset(7)
    flags = [0, 1, 1, 0, 1, 0, 0, 1, 1, 1]
    _run(tracker, [0.1, 0.2, None, 0.3, 0.1, 0.1, 0.1, 0.2, 0.1, 0.1], intervention=flags)
    tracker.stop()
    last = tracker.step(_stamp(11), stale_frame=True)
    assert (last.terminated, last.truncated, last.end_reason) == (False, True, STOPPED)
    summary = tracker.summary()
    assert summary == {
        "episode_id": 7,
        "steps": 11,
        "episode_return": pytest.approx(-0.05 * 11),
        "success": False,
        "intervention_steps": 6,
        "interventions": 3,  # hand-overs at steps 2, 5 and 8
        "stale_frames": 1,
        "end_reason": STOPPED,
        "reward_misses": 2,  # step 3 (no output) and step 11 (never recorded)
    }
    tracker.reset(8)
    assert tracker.summary()["steps"] == 0 and tracker.summary()["interventions"] == 0
    assert tracker.summary()["end_reason"] == ""


def test_intervention_from_the_first_step_counts_as_one_hand_over():
    tracker = EpisodeTracker(CFG)
    tracker.reset(1)
    _run(tracker, [0.1] * 3, intervention=[1, 1, 1])
    assert (tracker.interventions, tracker.intervention_steps) == (1, 3)


def test_staleness_and_reward_cache_bound():
    tracker = EpisodeTracker(EpisodeConfig(max_frame_age_s=0.2, reward_cache_size=4))
    assert not tracker.is_stale(_stamp(0), _stamp(2))  # 0.2 s old: still fresh
    assert tracker.is_stale(_stamp(0), _stamp(2) + 1)
    for i in range(6):
        tracker.record_reward_signal(_stamp(i), 0.9, True)
    assert not tracker.judged(_stamp(1))  # evicted
    assert tracker.judged(_stamp(2)) and tracker.judged(_stamp(5))


def test_step_before_reset_and_bad_config_are_refused():
    with pytest.raises(RuntimeError, match="reset"):
        EpisodeTracker(CFG).step(0)
    with pytest.raises(ValueError, match="failure_penalty"):
        EpisodeConfig(failure_penalty=-1.0)
    with pytest.raises(ValueError, match="consecutive_success_frames"):
        EpisodeConfig(consecutive_success_frames=0)


def test_failure_penalty_makes_a_failure_mark_terminal():
    tracker = EpisodeTracker(EpisodeConfig(max_steps=20, failure_penalty=5.0))
    tracker.reset(1)
    _run(tracker, [0.1])
    tracker.mark_failure()
    outcome = _run(tracker, [0.9], start=2)[0]
    assert (outcome.terminated, outcome.truncated, outcome.end_reason) == (True, False, FAILURE_MARK)
    assert outcome.reward == -5.0 and tracker.episode_return == pytest.approx(-0.05 - 5.0)


def test_stop_truncates_at_the_next_step_and_a_pending_mark_keeps_its_verdict():
    tracker = EpisodeTracker(CFG)
    tracker.reset(1)
    _run(tracker, [0.1, 0.1])
    tracker.stop()
    outcome = _run(tracker, [0.9], start=3)[0]
    assert (outcome.terminated, outcome.truncated, outcome.end_reason) == (False, True, STOPPED)
    tracker.reset(2)
    assert _run(tracker, [0.1])[0].end_reason == ""  # a stop does not carry into the next episode
    tracker.mark_success()
    tracker.stop()
    assert _run(tracker, [0.1], start=2)[0].end_reason == SUCCESS_MARK


def test_a_success_streak_kept_alive_never_pays():
    """The farming pattern: two positive frames, one negative, again and again, never finishing."""
    tracker = EpisodeTracker(CFG)
    tracker.reset(1)
    outcomes = _run(tracker, [0.9, 0.9, 0.1] * 10)
    assert outcomes[-1].end_reason == TIMEOUT
    assert all(o.reward == CFG.step_penalty for o in outcomes)
