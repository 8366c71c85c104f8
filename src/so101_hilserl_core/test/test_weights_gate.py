"""Weight versions never go backwards for a running actor, and a new learner epoch is taken though its versions
restart (a restarted learner, a fresh run dir), while a stale learner's weights, and an epoch that starts in the
future, are refused."""

import pytest

from so101_hilserl_core.weights_gate import MAX_EPOCH_SKEW_S, accept, epoch_start_ns, make_epoch, refusal

NOW = 1_750_000_000 * 10**9  # the receiver's wall clock (ns)
S = 10**9
RUN = make_epoch("abc123", 1_000)
RESTARTED = make_epoch("abc123", 2_000)  # same run dir, learner restarted later
FRESH_DIR = make_epoch("def456", 3_000)  # a new run dir


def test_within_one_epoch_only_newer_versions():
    assert accept(RUN, 5, RUN, 6, NOW)
    assert not accept(RUN, 5, RUN, 5, NOW)
    assert not accept(RUN, 5, RUN, 4, NOW)


def test_first_weights_are_taken_but_never_version_zero():
    assert accept(None, None, RUN, 1, NOW)
    assert not accept(None, None, RUN, 0, NOW)


def test_a_restarted_learner_and_a_fresh_run_dir_are_taken_with_lower_versions():
    assert accept(RUN, 24, RESTARTED, 1, NOW)  # the restarted learner begins again at version 1
    assert accept(RESTARTED, 3, FRESH_DIR, 1, NOW)
    # once on the new epoch, the monotonic rule applies to it
    assert accept(RESTARTED, 1, RESTARTED, 2, NOW) and not accept(RESTARTED, 2, RESTARTED, 1, NOW)


def test_weights_of_an_older_learner_are_refused():
    assert not accept(RESTARTED, 1, RUN, 30, NOW)  # a late message of the learner that was restarted
    assert not accept(FRESH_DIR, 1, RESTARTED, 99, NOW)


def test_epochs_without_start_times_are_taken_when_different():
    assert accept("legacy", 3, RUN, 1, NOW)
    assert accept(RUN, 3, "", 1, NOW)


def test_an_epoch_that_starts_in_the_future_is_refused_and_blocks_nothing():
    running = make_epoch("abc123", NOW - 3600 * S)
    forged = make_epoch("abc123", NOW + 86_400 * S)
    why = refusal(running, 7, forged, 1, NOW)
    assert f"learner epoch {forged!r} starts 86400 s ahead of this machine's clock" in why
    assert f"more than {MAX_EPOCH_SKEW_S:.0f} s" in why and "synchronise" in why
    assert not accept(None, None, forged, 1, NOW)  # not as the first weights either
    assert accept(running, 7, running, 8, NOW)  # the running learner's next version is still taken
    restarted = make_epoch("abc123", NOW - 5 * S)  # a learner restarted 5 s ago: a later start, not in the future
    assert accept(running, 8, restarted, 1, NOW)


def test_the_skew_bound_is_inclusive_and_counts_in_seconds():
    at_bound = make_epoch("abc123", NOW + int(MAX_EPOCH_SKEW_S * S))
    beyond = make_epoch("abc123", NOW + int(MAX_EPOCH_SKEW_S * S) + 1)
    assert accept(RUN, 3, at_bound, 1, NOW)  # a learner on a machine whose clock runs a little ahead
    assert not accept(RUN, 3, beyond, 1, NOW)
    # taken while it is within the bound; once the receiver's clock passes its start it is an ordinary epoch
    assert accept(at_bound, 1, at_bound, 2, NOW + 120 * S)


def test_epoch_format():
    assert epoch_start_ns(RESTARTED) == 2_000 and epoch_start_ns("legacy") is None
    with pytest.raises(ValueError):
        make_epoch("a:b", 1)
