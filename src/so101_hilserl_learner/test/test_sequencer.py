import random

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


def test_a_gap_cuts_the_segment_and_the_episode_goes_on_after_it():
    seq = TransitionSequencer()
    out = verdicts(seq, [("a", 1, 0, False), ("a", 1, 1, False), ("a", 1, 3, False), ("a", 1, 2, False)])
    assert out == [Verdict.ACCEPT, Verdict.ACCEPT, Verdict.GAP, Verdict.STALE]  # reordered step 2 is not revived
    assert seq.broken_segments == 1 and "expected step 4, got 6" in seq.push("a", 1, 6, False).reason
    assert verdicts(seq, [("a", 1, 7, False), ("a", 1, 3, False), ("a", 1, 8, True)]) == [
        Verdict.ACCEPT, Verdict.DUPLICATE, Verdict.ACCEPT,
    ]  # fmt: skip
    assert seq.broken_segments == 2 and seq.push("a", 1, 5, False).verdict == Verdict.DUPLICATE  # closed: late
    assert seq.push("a", 2, 0, False).verdict == Verdict.ACCEPT  # the next episode starts clean


def test_lost_closing_message_abandons_the_open_episode():
    seq = TransitionSequencer()
    verdicts(seq, [("a", 1, 0, False), ("a", 1, 1, False)])
    decision = seq.push("a", 2, 0, False)
    assert decision.verdict == Verdict.ACCEPT and decision.abandoned_episode == 1
    assert seq.broken_segments == 1


def test_episode_starting_late_and_stale_episodes():
    seq = TransitionSequencer()
    first = seq.push("a", 5, 3, False)
    assert first.verdict == Verdict.GAP and "starts at step 3, not 0" in first.reason
    assert seq.push("a", 5, 4, False).verdict == Verdict.ACCEPT  # the episode goes on from there
    assert seq.push("a", 5, 1, False).verdict == Verdict.STALE
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


def test_an_absurd_episode_id_does_not_silence_the_actor():
    """One message with episode_id 2**63 (garbled or hostile) is dropped; the actor's next episodes are accepted."""
    s = TransitionSequencer()
    for step in range(3):
        s.push("a", 1, step, step == 2)
    absurd = s.push("a", 2**63, 0, False)
    assert absurd.verdict is Verdict.IMPLAUSIBLE and str(2**63) in absurd.reason
    assert not s.known("a", 2, 0)  # the next normal episode is new, not stale
    for episode in (2, 3):
        assert [s.push("a", episode, step, step == 2).verdict for step in range(3)] == [Verdict.ACCEPT] * 3
    assert s.implausible == 1 and s.stale == 0 and s.rebased == 0


def test_a_confirmed_jump_rebases_the_stream_with_a_notice():
    """An actor that really jumped (a long outage, or restarted under the same id at episode 1) is followed after
    one more message near the new ids, with a notice for a warning."""
    s = TransitionSequencer(max_episode_gap=10)
    for episode in (100, 101):
        for step in range(2):
            s.push("a", episode, step, step == 1)
    assert s.push("a", 1, 0, False).verdict is Verdict.IMPLAUSIBLE
    second = s.push("a", 1, 1, False)  # confirms the jump; episode 1 lost its step 0: it starts after a gap
    assert second.verdict is Verdict.GAP and "re-based" in second.notice
    assert [s.push("a", 2, step, step == 1).verdict for step in range(2)] == [Verdict.ACCEPT] * 2
    assert s.rebased == 1


def test_known_is_exactly_what_push_calls_a_copy_or_late():
    """``known`` (used to keep copies out of the journal) agrees with push on random streams, without changing it."""
    rng = random.Random(7)
    for _ in range(200):
        s = TransitionSequencer(max_episode_gap=5)
        for _ in range(60):
            actor = rng.choice("ab")
            episode = rng.choice([1, 2, 3, 4, 20, 2**63])
            step = rng.randrange(4)
            known = s.known(actor, episode, step)
            assert s.known(actor, episode, step) == known  # pure
            verdict = s.push(actor, episode, step, rng.random() < 0.3).verdict
            assert known == (verdict in (Verdict.DUPLICATE, Verdict.STALE)), (actor, episode, step, verdict)
