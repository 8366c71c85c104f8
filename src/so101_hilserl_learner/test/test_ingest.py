"""The stream-to-buffer path: what lands in the online and demo buffers for clean, broken and mixed streams."""

import numpy as np
import pytest

from so101_hilserl_core.messages import observation_to_msg
from so101_hilserl_interfaces.msg import Transition
from so101_hilserl_learner.ingest import TransitionIngest
from so101_hilserl_learner.replay import ReplayBuffer
from so101_hilserl_learner.sequencer import Verdict

SIZE = 8


def frame(episode: int, step: int) -> np.ndarray:
    image = np.zeros((SIZE, SIZE, 3), np.uint8)
    image[..., 0], image[..., 1] = episode, step  # the pixels say which observation they are
    return image


def transition(episode, step, *, last=False, terminated=False, intervention=False, actor="a", evaluation=False):
    msg = Transition(actor_id=actor, episode_id=episode, step=step, intervention=intervention, evaluation=evaluation)
    msg.observation = observation_to_msg(frame(episode, step), np.full(18, step, np.float32))
    msg.action = [0.1, 0.0, -0.1, 1.0 if intervention else 0.0]
    msg.reward = 1.0 if terminated else -0.05
    if last:
        msg.terminated, msg.truncated = terminated, not terminated
        msg.next_observation = [observation_to_msg(frame(episode, step + 1), np.full(18, step + 1, np.float32))]
    return msg


def buffers():
    online, demo = (ReplayBuffer(200, frame_shape=(SIZE, SIZE, 3), nstep=1, discount=0.9, seed=0) for _ in "od")
    return online, demo, TransitionIngest(online, demo, image_size=SIZE)


def episode(ingest, episode_id, length, interventions=(), terminated=False, **kwargs):
    verdicts = []
    for step in range(length):
        msg = transition(
            episode_id,
            step,
            last=step == length - 1,
            terminated=terminated,
            intervention=step in interventions,
            **kwargs,
        )
        verdicts.append(ingest.ingest(msg))
    return verdicts


def ids(pixels: np.ndarray) -> list[tuple[int, int]]:
    """(episode, step) of each stacked frame of one sampled row (channels: frames x RGB)."""
    return [(int(pixels[3 * k, 0, 0]), int(pixels[3 * k + 1, 0, 0])) for k in range(pixels.shape[0] // 3)]


def test_clean_episode_goes_to_online_only():
    online, demo, ingest = buffers()
    assert episode(ingest, 1, 10) == [Verdict.ACCEPT] * 10
    assert len(online) == 10 and len(demo) == 0
    batch = online.sample(64)
    for pixels, next_pixels in zip(batch.pixels, batch.next_pixels, strict=True):
        (_, newest) = ids(pixels)[-1]
        assert ids(next_pixels)[-1] == (1, newest + 1)  # the final step's next obs is the stored final frame


def test_intervention_segment_goes_to_both_with_its_context():
    online, demo, ingest = buffers()
    episode(ingest, 1, 12, interventions={5, 6, 7})
    assert len(online) == 12 and len(demo) == 3
    batch = demo.sample(64)
    assert batch.intervention.all()
    for pixels, next_pixels in zip(batch.pixels, batch.next_pixels, strict=True):
        stack = ids(pixels)
        newest = stack[-1][1]
        assert 5 <= newest <= 7
        assert stack == [(1, max(newest - 2, 0)), (1, max(newest - 1, 0)), (1, newest)]  # context from steps 3, 4
        assert ids(next_pixels)[-1] == (1, newest + 1)  # after step 7: the policy's step 8 observation


def test_a_gap_loses_only_the_transitions_that_need_the_missing_step():
    """Step 4 of 12 lost (frame stack 3): lost are step 3 (its o_{t+1} is gone), step 4, and steps 5 and 6 (their
    stacks hold frame 4); steps 0-2 and 7-11 are stored, every stack and next observation the actor's own."""
    online, demo, ingest = buffers()
    for step in (0, 1, 2, 3):
        assert ingest.ingest(transition(1, step, intervention=step == 2)) == Verdict.ACCEPT
    assert ingest.ingest(transition(1, 5)) == Verdict.GAP and "expected step 4, got 5" in ingest.last_problem
    for step in range(6, 12):
        assert ingest.ingest(transition(1, step, last=step == 11, intervention=step in (8, 9))) == Verdict.ACCEPT
    assert ingest.sequencer.broken_segments == 1 and ingest.counters.episodes == 1
    assert len(online) == ingest.counters.training_transitions == 3 + 5 and ingest.dropped == 0
    assert len(demo) == 1 + 2  # step 2 (bootstraps from step 3), steps 8-9
    batch = online.sample(256)
    newest = {ids(pixels)[-1][1] for pixels in batch.pixels}
    assert newest == {0, 1, 2, 7, 8, 9, 10, 11}
    for pixels, next_pixels in zip(batch.pixels, batch.next_pixels, strict=True):
        step = ids(pixels)[-1][1]
        assert ids(pixels) == [(1, max(step - 2, 0)), (1, max(step - 1, 0)), (1, step)]  # never frame 4
        assert ids(next_pixels)[-1] == (1, step + 1)
    episode(ingest, 2, 5)
    assert len(online) == 13


def test_an_episode_whose_first_steps_are_lost_starts_after_them():
    online, _demo, ingest = buffers()
    assert ingest.ingest(transition(1, 2)) == Verdict.GAP and "starts at step 2, not 0" in ingest.last_problem
    for step in range(3, 8):
        ingest.ingest(transition(1, step, last=step == 7))
    assert len(online) == 4 and ingest.counters.episodes == 1  # steps 4-7: steps 2, 3 are context only
    assert {ids(pixels)[0][1] for pixels in online.sample(64).pixels} == {2, 3, 4, 5}


def test_invalid_message_is_counted_and_its_hole_cut_at_the_next_message():
    online, _demo, ingest = buffers()
    for step in (0, 1, 2):
        ingest.ingest(transition(1, step))
    bad = transition(1, 3)
    bad.observation.state[4] = float("nan")
    assert ingest.ingest(bad) is None
    assert ingest.counters.invalid == 1 and "non-finite" in ingest.last_problem
    assert len(online) == 0  # invisible to the stream: a journal that never held it replays the same
    assert ingest.ingest(transition(1, 4)) == Verdict.GAP  # the hole is noticed, nothing stored wrong
    assert len(online) == 2  # steps 0, 1; step 2 lost its next observation, step 4 is stack context


def serialized(msg) -> bytes:
    from rclpy.serialization import serialize_message

    return serialize_message(msg)


def _set(field: str, value: float):
    """A function that puts ``value`` into one float of a transition (an episode's last step, so it has them all)."""

    def put(msg: Transition) -> None:
        if field in ("action", "policy_action"):
            values = list(getattr(msg, field))
            values[2] = value
            setattr(msg, field, values)
        elif field in ("observation.state", "next_observation.state"):
            observation = msg.observation if field == "observation.state" else msg.next_observation[0]
            observation.state[5] = value
        else:
            setattr(msg, field, value)

    return put


NAN, INF = float("nan"), float("inf")


@pytest.mark.parametrize(
    ("field", "value", "named"),
    [
        ("action", NAN, "action has non-finite values at indices [2]"),
        ("action", -INF, "action has non-finite values at indices [2]"),
        ("policy_action", NAN, "policy_action has non-finite values at indices [2]"),
        ("policy_action", INF, "policy_action has non-finite values at indices [2]"),
        ("reward", NAN, "reward is not finite"),
        ("reward", INF, "reward is not finite"),
        ("success_probability", INF, "success_probability must be NaN (not judged) or in [0, 1]"),
        ("success_probability", 1.5, "success_probability must be NaN (not judged) or in [0, 1]"),
        ("observation.state", NAN, "observation.state has non-finite values at indices [5]"),
        ("next_observation.state", -INF, "next_observation.state has non-finite values at indices [5]"),
    ],
)
def test_a_non_finite_float_in_any_field_is_refused_by_name(field, value, named):
    """Every float of a transition, through the learner's live path (bytes in): refused before it is recorded, the
    refusal names the message and the field; the same message with a finite value is taken."""
    online, _demo, ingest = buffers()
    msg = transition(1, 0, last=True)
    _set(field, value)(msg)
    recorded = []
    assert ingest.receive(serialized(msg), recorded.append) is None
    assert recorded == [] and ingest.counters.invalid == 1 and len(online) == 0
    assert ingest.last_problem.startswith("actor 'a' episode 1 step 0: ") and named in ingest.last_problem
    _set(field, 0.5)(msg)
    assert ingest.receive(serialized(msg), recorded.append) is Verdict.ACCEPT and len(recorded) == 1


def test_an_unjudged_success_probability_is_nan_and_taken():
    """NaN success_probability is the message's "no classifier judged this step", not damage."""
    online, _demo, ingest = buffers()
    msg = transition(1, 0, last=True)
    msg.success_probability = NAN
    assert ingest.receive(serialized(msg)) is Verdict.ACCEPT and len(online) == 1


def test_receive_records_only_valid_new_messages():
    """Bad bytes (truncated CDR, oversized, bad fields) and copies are never recorded; the rest is, in order."""
    online, _demo, ingest = buffers()
    recorded = []
    good = [serialized(transition(1, step, last=step == 3)) for step in range(4)]
    big = transition(1, 0)
    big.observation = observation_to_msg(np.zeros((4000, 1000, 3), np.uint8), np.zeros(18, np.float32))
    nan = transition(1, 2)
    nan.reward = float("nan")
    stream = [good[0], good[1][: len(good[1]) // 2], serialized(big), good[1], serialized(nan), good[1], good[2]]
    stream += [good[3], good[0], good[3]]  # a re-delivered backlog: copies
    verdicts = [ingest.receive(raw, recorded.append) for raw in stream]
    accept, dup = Verdict.ACCEPT, Verdict.DUPLICATE
    assert verdicts == [accept, None, None, accept, None, dup, accept, accept, dup, dup]
    assert recorded == good  # exactly the four valid, new messages, once each
    assert ingest.counters.invalid == 3 and len(online) == 4
    assert ingest.receive(good[2][:-7]) is None and "not a Transition" in ingest.last_problem

    replayed_online, _, replay = buffers()
    for raw in recorded:  # a journal replay of what was recorded rebuilds the same buffer
        replay.receive(raw)
    assert len(replayed_online) == len(online)
    assert np.array_equal(replayed_online._frames, online._frames)


def test_duplicates_interleaved_actors_and_evaluation_episodes():
    online, _demo, ingest = buffers()
    for step in range(5):
        for actor in ("a", "b"):
            ingest.ingest(transition(1, step, last=step == 4, actor=actor))
        if step == 2:
            assert ingest.ingest(transition(1, 2, actor="a")) == Verdict.DUPLICATE
    assert len(online) == 10 and ingest.counters.episodes == 2
    episode(ingest, 2, 5, evaluation=True)
    assert len(online) == 10 and ingest.counters.evaluation_episodes_skipped == 1


def test_terminated_episode_does_not_bootstrap():
    _online, demo, ingest = buffers()
    episode(ingest, 1, 4, interventions={2, 3}, terminated=True)
    batch = demo.sample(32)
    last = [i for i, p in enumerate(batch.pixels) if ids(p)[-1] == (1, 3)]
    assert last and all(batch.discount[i] == 0.0 for i in last)
    assert all(batch.reward[i] == 1.0 for i in last)


def test_mc_returns_are_the_episodes_in_both_buffers():
    """An intervention segment's demo rows carry the episode's return-to-go (what followed after the person let go
    included), equal to the same steps' online rows: sum_k 0.9^k r_{t+k} to the episode's end."""
    online, demo, ingest = buffers()
    rewards = [0.1 * (t + 1) for t in range(12)]
    for t, reward in enumerate(rewards):
        msg = transition(1, t, last=t == 11, terminated=True, intervention=t in (5, 6, 7))
        msg.reward = reward
        ingest.ingest(msg)
    want = {t: sum(0.9**k * rewards[t + k] for k in range(12 - t)) for t in range(12)}
    for buf, steps in ((online, range(12)), (demo, range(5, 8))):
        batch = buf.sample(512)
        got = {ids(p)[-1][1]: float(g) for p, g in zip(batch.pixels, batch.mc_return, strict=True)}
        assert set(got) == set(steps)
        assert got == pytest.approx({t: want[t] for t in steps}, rel=1e-6)


def test_training_transitions_count_committed_samples_only():
    online, _demo, ingest = buffers()
    for step in range(4):  # staged, not committed: no data yet for the schedule or the UTD budget
        ingest.ingest(transition(1, step))
    assert ingest.counters.training_transitions == 0 and ingest.staged_episodes == 1
    ingest.ingest(transition(1, 4, last=True))
    assert ingest.counters.training_transitions == 5 == len(online)
    episode(ingest, 2, 6, evaluation=True)  # evaluation steps never count (nor are trained on)
    assert ingest.counters.training_transitions == 5 == len(online)
    for step in range(3):
        ingest.ingest(transition(3, step))
    ingest.ingest(transition(3, 5))  # a gap: the cut episode keeps 2 complete samples, the third has no o'
    assert ingest.counters.training_transitions == 7 == len(online)


def test_evaluation_counts_when_it_is_trained_on():
    online, demo = (ReplayBuffer(200, frame_shape=(SIZE, SIZE, 3), nstep=1, discount=0.9, seed=0) for _ in "od")
    ingest = TransitionIngest(online, demo, image_size=SIZE, train_on_evaluation=True)
    episode(ingest, 1, 6, evaluation=True)
    assert ingest.counters.training_transitions == 6 == len(online)


def stream_with_a_silent_actor(ingest):
    """Actor "old" stops in the middle of an episode (a restarted actor has a new id); "new" goes on."""
    verdicts = [ingest.ingest(transition(9, step, actor="old")) for step in range(4)]
    for episode_id in range(1, 4):
        verdicts += episode(ingest, episode_id, 5, actor="new")
    return verdicts


def test_a_silent_actors_staged_episode_is_cut_after_a_bounded_count():
    online, demo = (ReplayBuffer(200, frame_shape=(SIZE, SIZE, 3), nstep=1, discount=0.9, seed=0) for _ in "od")
    ingest = TransitionIngest(online, demo, image_size=SIZE, stale_after=12)
    stream_with_a_silent_actor(ingest)
    # 15 messages of "new" after old's last: cut at the 13th, its 4 steps committed as a cut episode (3 samples)
    assert ingest.counters.expired_episodes == 1 and ingest.staged_episodes == 0
    assert ingest.sequencer.expired_segments == 1
    assert len(ingest.expired) == 1 and "'old' episode 9" in ingest.expired[0]
    assert ingest.counters.training_transitions == 15 + 3 == len(online)
    old = {ids(p)[-1] for p in online.sample(400).pixels if ids(p)[-1][0] == 9}
    assert old == {(9, 0), (9, 1), (9, 2)}  # the samples of old's steps; step 3 only as their next observation
    # a late message of the cut episode is refused, never appended to a committed episode
    assert ingest.ingest(transition(9, 4, actor="old")) == Verdict.STALE
    assert ingest.ingest(transition(10, 0, actor="old")) == Verdict.ACCEPT  # its next episode is fine


def test_cutting_silent_actors_is_deterministic_for_journal_replay():
    results = []
    for _ in range(2):
        online, demo = (ReplayBuffer(200, frame_shape=(SIZE, SIZE, 3), nstep=1, discount=0.9, seed=0) for _ in "od")
        ingest = TransitionIngest(online, demo, image_size=SIZE, stale_after=12)
        verdicts = stream_with_a_silent_actor(ingest)
        results.append((verdicts, len(online), ingest.counters.training_transitions, ingest.counters.expired_episodes))
    assert results[0] == results[1]


def test_an_actor_within_the_bound_keeps_its_episode():
    online, demo = (ReplayBuffer(200, frame_shape=(SIZE, SIZE, 3), nstep=1, discount=0.9, seed=0) for _ in "od")
    ingest = TransitionIngest(online, demo, image_size=SIZE, stale_after=100)
    stream_with_a_silent_actor(ingest)
    assert ingest.counters.expired_episodes == 0 and ingest.staged_episodes == 1
    assert ingest.ingest(transition(9, 4, actor="old", last=True)) == Verdict.ACCEPT
    assert ingest.counters.training_transitions == 20


def test_replaying_what_receive_recorded_rebuilds_the_same_buffers():
    """Live: several actors interleaved, with losses, copies, bad bytes, an absurd episode id and silent actors.
    Replaying only what was recorded (the journal) gives the same buffers and the same accepted/committed counts."""
    import random

    rng = random.Random(3)
    stream = []
    next_episode = {"a": 1, "b": 1, "c": 1}
    for _ in range(40):
        actor = rng.choice("abc")
        episode = next_episode[actor]
        next_episode[actor] += 1
        length = rng.randrange(2, 7)
        for step in range(length):
            helped = 1 <= step <= 2 and episode % 2 == 0  # interventions: demo segments with their context
            last, terminated = step == length - 1, episode % 3 != 0  # a third hit the time limit
            raw = serialized(
                transition(episode, step, last=last, terminated=terminated, actor=actor, intervention=helped)
            )
            roll = rng.random()
            if roll < 0.05:
                continue  # lost
            if roll < 0.1:
                raw = raw[: len(raw) // 3]  # truncated
            stream.append(raw)
            if rng.random() < 0.1:
                stream.append(raw)  # a copy
        if rng.random() < 0.1:
            absurd = transition(1, 0, actor=actor)
            absurd.episode_id = 2**63
            stream.append(serialized(absurd))
    stream += stream[: len(stream) // 3]  # a re-delivered backlog

    def run(messages, record=None):
        online, demo = (ReplayBuffer(500, frame_shape=(SIZE, SIZE, 3), nstep=1, discount=0.9, seed=0) for _ in "od")
        ingest = TransitionIngest(online, demo, image_size=SIZE, stale_after=5)
        for raw in messages:
            ingest.receive(raw, record)
        return online, demo, ingest

    recorded = []
    live = run(stream, recorded.append)
    replayed = run(recorded)
    assert len(recorded) < len(stream) and live[2].counters.invalid > 0 and live[2].counters.expired_episodes > 0
    assert live[2].sequencer.implausible > 0 and live[2].sequencer.duplicates > 0
    for a, b in zip(live[:2], replayed[:2], strict=True):
        assert len(a) == len(b) > 0
        assert np.array_equal(a._frames, b._frames) and np.array_equal(a._obs_idx, b._obs_idx)
        assert np.array_equal(a._mc_return, b._mc_return, equal_nan=True) and np.isfinite(a._mc_return).any()
    for name in ("accepted", "training_transitions", "episodes", "intervention_steps", "expired_episodes"):
        assert getattr(live[2].counters, name) == getattr(replayed[2].counters, name), name
