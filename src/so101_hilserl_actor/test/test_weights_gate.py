"""Weight versions never go backwards for a running actor, and a new learner epoch is taken though its versions
restart (a restarted learner, a fresh run dir), while a stale learner's weights are refused."""

import pytest

from so101_hilserl_actor.weights_gate import accept, epoch_start_ns, make_epoch

RUN = make_epoch("abc123", 1_000)
RESTARTED = make_epoch("abc123", 2_000)  # same run dir, learner restarted later
FRESH_DIR = make_epoch("def456", 3_000)  # a new run dir


def test_within_one_epoch_only_newer_versions():
    assert accept(RUN, 5, RUN, 6)
    assert not accept(RUN, 5, RUN, 5)
    assert not accept(RUN, 5, RUN, 4)


def test_first_weights_are_taken_but_never_version_zero():
    assert accept(None, None, RUN, 1)
    assert not accept(None, None, RUN, 0)


def test_a_restarted_learner_and_a_fresh_run_dir_are_taken_with_lower_versions():
    assert accept(RUN, 24, RESTARTED, 1)  # the restarted learner begins again at version 1
    assert accept(RESTARTED, 3, FRESH_DIR, 1)
    # once on the new epoch, the monotonic rule applies to it
    assert accept(RESTARTED, 1, RESTARTED, 2) and not accept(RESTARTED, 2, RESTARTED, 1)


def test_weights_of_an_older_learner_are_refused():
    assert not accept(RESTARTED, 1, RUN, 30)  # a late message of the learner that was restarted
    assert not accept(FRESH_DIR, 1, RESTARTED, 99)


def test_epochs_without_start_times_are_taken_when_different():
    assert accept("legacy", 3, RUN, 1)
    assert accept(RUN, 3, "", 1)


def test_epoch_format():
    assert epoch_start_ns(RESTARTED) == 2_000 and epoch_start_ns("legacy") is None
    with pytest.raises(ValueError):
        make_epoch("a:b", 1)
