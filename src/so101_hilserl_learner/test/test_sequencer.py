from so101_hilserl_learner.sequencer import TransitionSequencer, Verdict


def verdicts(seq, items):
    return [seq.push(*item).verdict for item in items]


def test_clean_episodes_are_accepted():
    seq = TransitionSequencer()
    stream = [("a", 1, 0, False), ("a", 1, 1, False), ("a", 1, 2, True), ("a", 2, 0, False), ("a", 2, 1, True)]
    assert verdicts(seq, stream) == [Verdict.ACCEPT] * 5
    assert seq.accepted == 5 and seq.broken_segments == 0


def test_duplicate_is_ignored_without_breaking_the_episode():
    seq = TransitionSequencer()
    out = verdicts(seq, [("a", 1, 0, False), ("a", 1, 1, False), ("a", 1, 1, False), ("a", 1, 2, True)])
    assert out == [Verdict.ACCEPT, Verdict.ACCEPT, Verdict.DUPLICATE, Verdict.ACCEPT]
    assert seq.duplicates == 1
    assert seq.push("a", 1, 2, True).verdict == Verdict.DUPLICATE  # a late copy of the closing step


def test_a_gap_cuts_the_segment_and_the_rest_of_the_episode():
    seq = TransitionSequencer()
    out = verdicts(seq, [("a", 1, 0, False), ("a", 1, 1, False), ("a", 1, 3, False), ("a", 1, 2, False)])
    assert out == [Verdict.ACCEPT, Verdict.ACCEPT, Verdict.BROKEN, Verdict.STALE]  # reordered step 2 is not revived
    assert seq.broken_segments == 1
    assert seq.push("a", 2, 0, False).verdict == Verdict.ACCEPT  # the next episode starts clean


def test_lost_closing_message_abandons_the_open_episode():
    seq = TransitionSequencer()
    verdicts(seq, [("a", 1, 0, False), ("a", 1, 1, False)])
    decision = seq.push("a", 2, 0, False)
    assert decision.verdict == Verdict.ACCEPT and decision.abandoned_episode == 1
    assert seq.broken_segments == 1


def test_episode_starting_late_and_stale_episodes():
    seq = TransitionSequencer()
    assert seq.push("a", 5, 3, False).verdict == Verdict.BROKEN
    assert seq.push("a", 5, 4, False).verdict == Verdict.STALE
    assert seq.push("a", 4, 0, False).verdict == Verdict.STALE
    assert seq.push("a", 6, 0, True).verdict == Verdict.ACCEPT


def test_actors_are_independent():
    seq = TransitionSequencer()
    assert (
        verdicts(seq, [("a", 1, 0, False), ("b", 1, 0, False), ("a", 1, 1, True), ("b", 1, 1, True)])
        == [Verdict.ACCEPT] * 4
    )


def test_expire_cuts_a_silent_actors_open_episode():
    seq = TransitionSequencer()
    verdicts(seq, [("a", 1, 0, False), ("a", 1, 1, False)])
    assert seq.expire("a") and seq.expired_segments == 1 and seq.broken_segments == 1
    assert not seq.expire("a") and not seq.expire("never-seen")  # nothing open any more
    assert seq.push("a", 1, 2, False).verdict == Verdict.STALE  # the cut episode stays cut
    assert seq.push("a", 2, 0, False).verdict == Verdict.ACCEPT
    verdicts(seq, [("b", 1, 0, True)])
    assert not seq.expire("b")  # a closed episode is not cut
