"""Replay buffer: exact stacks, n-step targets and ring safety, checked by frames whose pixels name themselves.

Every frame encodes (sequence, step, kind) in its pixels and in its state vector; every action encodes
(sequence, step). A sampled row therefore says which transition it is and which frames it was built from, and is
compared with an independent, brute-force reference of what that transition must be.
"""

import dataclasses

import numpy as np
import pytest

from so101_hilserl_core.observation import FrameStack
from so101_hilserl_core.policy import PolicyConfig
from so101_hilserl_learner.replay import MixedSampler, ReplayBuffer

SHAPE = (4, 5, 3)
STATE_DIM = 4
OBS, FINAL, CONTEXT = 0, 1, 2
G = 0.9


def frame(seq, step, kind=OBS):
    return np.broadcast_to(np.array([seq % 256, (step + 16) % 256, kind], np.uint8), SHAPE).copy()


def state(seq, step, kind=OBS):
    return np.array([seq, step, kind, 0.25], np.float32)


def action(seq, step):
    return np.array([seq, step, 0.5, -0.5], np.float32)


def make(capacity=1000, **kw):
    kw.setdefault("discount", G)
    return ReplayBuffer(capacity, frame_shape=SHAPE, state_dim=STATE_DIM, **kw)


def reference(seq, n_ctx, flags, rewards, end, nstep=3, gamma=G, stack=3):
    """Brute force: {(seq, t): (obs frame ids, next frame ids, return, discount, intervention)}."""
    n_added = len(flags)
    frames = [(seq, s, CONTEXT) for s in range(-n_ctx, 0)] + [(seq, s, OBS) for s in range(n_added)]
    if end == "abort":
        n_steps = n_added - 1  # the last step has no next observation; its frame is the final one
    else:
        n_steps = n_added
        frames.append((seq, n_added, FINAL))

    def stack_at(j):
        return [frames[max(n_ctx + j - o, 0)] for o in range(stack - 1, -1, -1)]

    out = {}
    for t in range(n_steps):
        k = 1
        while k < nstep and t + k < n_steps and flags[t + k] == flags[t]:
            k += 1
        ret = sum(gamma**i * rewards[t + i] for i in range(k))
        disc = 0.0 if (end == "term" and t + k == n_steps) else gamma**k
        out[(seq, t)] = (stack_at(t), stack_at(t + k), ret, disc, bool(flags[t]))
    return out


def feed(buf, seq, n_steps, flags=None, rewards=None, end="trunc", n_ctx=0, nstep=3):
    flags = [False] * n_steps if flags is None else list(flags)
    rewards = [float(t + 1) for t in range(n_steps)] if rewards is None else list(rewards)
    ctx = range(-n_ctx, 0)
    buf.begin_sequence([frame(seq, s, CONTEXT) for s in ctx], [state(seq, s, CONTEXT) for s in ctx])
    for t in range(n_steps):
        buf.add(frame(seq, t), state(seq, t), action(seq, t), rewards[t], flags[t])
    if end == "abort":
        buf.abort_sequence()
    else:
        buf.end_sequence(frame(seq, n_steps, FINAL), state(seq, n_steps, FINAL), terminated=end == "term")
    return reference(seq, n_ctx, flags, rewards, end, nstep=nstep)


def decode_stacks(pixels, states, stack=3):
    """Frame ids of a batch of stacked observations; asserts that pixels and states name the same frames."""
    ids = states.reshape(len(states), stack, STATE_DIM)[:, :, :3].astype(np.int64)  # (B, S, [seq, step, kind])
    expected = np.stack([ids[..., 0] % 256, (ids[..., 1] + 16) % 256, ids[..., 2]], axis=-1).astype(np.uint8)
    height, width, _ = SHAPE
    got = pixels.reshape(len(pixels), stack, 3, height, width)
    np.testing.assert_array_equal(got, np.broadcast_to(expected[..., None, None], got.shape))
    return [[tuple(f) for f in row] for row in ids.tolist()]


def rows(batch):
    """[(key, (obs ids, next ids, return, discount, intervention))] for every row of a batch."""
    keys = [tuple(k) for k in batch.action[:, :2].astype(np.int64).tolist()]
    obs = decode_stacks(batch.pixels, batch.state)
    nxt = decode_stacks(batch.next_pixels, batch.next_state)
    rest = zip(batch.reward.tolist(), batch.discount.tolist(), batch.intervention.tolist(), strict=True)
    return [(k, (o, n, *r)) for k, o, n, r in zip(keys, obs, nxt, rest, strict=True)]


def check_rows(batch, ref):
    for key, (obs, nxt, ret, disc, flag) in rows(batch):
        assert key in ref, f"sampled transition {key} is not a stored one"
        r_obs, r_next, r_ret, r_disc, r_flag = ref[key]
        assert obs == r_obs, key
        assert nxt == r_next, key
        assert ret == pytest.approx(r_ret, rel=1e-6), key
        assert disc == pytest.approx(r_disc, rel=1e-6), key
        assert flag == r_flag, key


def all_transitions(buf):
    """Sample until every stored transition was seen; {key: row}."""
    seen = {}
    if len(buf) == 0:
        return seen
    for _ in range(20):
        for key, row in rows(buf.sample(64 * len(buf))):
            assert seen.setdefault(key, row) == row, f"{key} sampled with two different contents"
        if len(seen) == len(buf):
            return seen
    raise AssertionError(f"saw {len(seen)} distinct transitions, buffer says {len(buf)}")


def test_stacks_at_sequence_start_and_middle():
    buf = make()
    ref = feed(buf, seq=7, n_steps=10)
    seen = all_transitions(buf)
    assert set(seen) == {(7, t) for t in range(10)}
    assert seen[(7, 0)][0] == [(7, 0, OBS)] * 3  # first frame repeated, as the actor fills its stack
    assert seen[(7, 1)][0] == [(7, 0, OBS), (7, 0, OBS), (7, 1, OBS)]
    assert seen[(7, 5)][0] == [(7, 3, OBS), (7, 4, OBS), (7, 5, OBS)]
    check_rows(buf.sample(256), ref)


def test_mid_episode_window():
    buf = make()
    rewards = [0.1, -0.2, 0.3, 0.7, -1.1, 0.6, 0.0, 0.2, 0.9, 0.4]
    feed(buf, seq=1, n_steps=10, rewards=rewards)
    _, nxt, ret, disc, flag = all_transitions(buf)[(1, 2)]
    assert ret == pytest.approx(0.3 + 0.9 * 0.7 + 0.81 * -1.1, rel=1e-6)
    assert disc == pytest.approx(0.729)
    assert nxt == [(1, 3, OBS), (1, 4, OBS), (1, 5, OBS)]  # o_{t+3}, stacked
    assert not flag


def test_window_cut_by_termination_has_zero_discount():
    buf = make()
    feed(buf, seq=2, n_steps=5, rewards=[0, 0, 0, 0.5, 1.0], end="term")
    feed(buf, seq=3, n_steps=4)  # a following episode must never leak into the previous one's targets
    seen = all_transitions(buf)
    _, nxt, ret, disc, _ = seen[(2, 3)]
    assert ret == pytest.approx(0.5 + 0.9 * 1.0)
    assert disc == 0.0
    assert nxt == [(2, 3, OBS), (2, 4, OBS), (2, 5, FINAL)]
    assert seen[(2, 4)][2:4] == (pytest.approx(1.0), 0.0)
    assert seen[(2, 1)][3] == pytest.approx(0.729)  # the window 1..3 ends before the terminal step


def test_window_cut_by_truncation_bootstraps_from_the_stored_final_frame():
    buf = make()
    feed(buf, seq=4, n_steps=5, rewards=[1, 1, 1, 2.0, 3.0], end="trunc")
    feed(buf, seq=5, n_steps=5)
    seen = all_transitions(buf)
    _, nxt, ret, disc, _ = seen[(4, 3)]
    assert ret == pytest.approx(2.0 + 0.9 * 3.0)
    assert disc == pytest.approx(0.81)
    assert nxt == [(4, 3, OBS), (4, 4, OBS), (4, 5, FINAL)]  # never (5, 0, OBS), the next episode's first frame
    assert seen[(4, 4)][1][-1] == (4, 5, FINAL) and seen[(4, 4)][3] == pytest.approx(0.9)


def test_window_cut_at_intervention_boundary():
    buf = make()
    flags = [False, False, True, True, True, False, False, False]
    rewards = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]
    ref = feed(buf, seq=6, n_steps=8, flags=flags, rewards=rewards)
    seen = all_transitions(buf)
    assert seen == {key: (o, n, pytest.approx(r), pytest.approx(d), f) for key, (o, n, r, d, f) in ref.items()}
    # Hand-computed: the policy's window 0..1 stops where the human takes over at step 2.
    assert seen[(6, 0)][2:4] == (pytest.approx(1.0 + 0.9 * 2.0), pytest.approx(0.81))
    assert seen[(6, 0)][1][-1] == (6, 2, OBS)
    assert seen[(6, 2)][2:] == (pytest.approx(3.0 + 0.9 * 4.0 + 0.81 * 5.0), pytest.approx(0.729), True)
    assert seen[(6, 3)][2:4] == (pytest.approx(4.0 + 0.9 * 5.0), pytest.approx(0.81))
    assert seen[(6, 4)][1][-1] == (6, 5, OBS) and seen[(6, 4)][3] == pytest.approx(0.9)
    assert seen[(6, 6)][1][-1] == (6, 8, FINAL) and seen[(6, 6)][3] == pytest.approx(0.81)


def test_demo_segment_starting_mid_episode_uses_context_frames():
    """An intervention from episode step 4 to 6: stacks equal what the actor saw in the episode."""
    buf = make()
    ep = 9
    buf.begin_sequence([frame(ep, s) for s in (1, 2, 3)], [state(ep, s) for s in (1, 2, 3)])  # only 2, 3 matter
    for s in (4, 5, 6):
        buf.add(frame(ep, s), state(ep, s), action(ep, s), 1.0, True)
    buf.end_sequence(frame(ep, 7), state(ep, 7), terminated=False)  # the human lets go: bootstrap from o_7
    seen = all_transitions(buf)
    assert set(seen) == {(ep, 4), (ep, 5), (ep, 6)}
    obs, nxt, ret, disc, flag = seen[(ep, 4)]
    assert obs == [(ep, 2, OBS), (ep, 3, OBS), (ep, 4, OBS)]
    assert nxt == [(ep, 5, OBS), (ep, 6, OBS), (ep, 7, OBS)]
    assert (ret, disc, flag) == (pytest.approx(1 + 0.9 + 0.81), pytest.approx(0.729), True)
    assert seen[(ep, 5)][0] == [(ep, 3, OBS), (ep, 4, OBS), (ep, 5, OBS)]
    # A segment starting at episode step 1 has one context frame; the actor's stack then held frame 0 twice.
    buf.begin_sequence([frame(ep + 1, 0)], [state(ep + 1, 0)])
    buf.add(frame(ep + 1, 1), state(ep + 1, 1), action(ep + 1, 1), 0.0, True)
    buf.end_sequence(frame(ep + 1, 2), state(ep + 1, 2), terminated=True)
    obs, nxt, ret, disc, _ = all_transitions(buf)[(ep + 1, 1)]
    assert obs == [(ep + 1, 0, OBS), (ep + 1, 0, OBS), (ep + 1, 1, OBS)]
    assert nxt == [(ep + 1, 0, OBS), (ep + 1, 1, OBS), (ep + 1, 2, OBS)] and disc == 0.0


def test_incomplete_windows_are_not_sampleable_until_complete():
    buf = make()
    buf.begin_sequence()
    for t in range(5):
        buf.add(frame(0, t), state(0, t), action(0, t), 0.0, False)
    assert len(buf) == 2  # t=0, 1 have o_3, o_4; t=2 waits for o_5
    assert set(all_transitions(buf)) == {(0, 0), (0, 1)}
    buf.add(frame(0, 5), state(0, 5), action(0, 5), 0.0, True)  # control changes hands at step 5
    assert len(buf) == 5  # the windows of t=3, 4 are now cut at 5; t=5 itself waits
    buf.end_sequence(frame(0, 6), state(0, 6), terminated=False)
    assert len(buf) == 6


def test_abort_drops_exactly_the_incomplete_transition():
    buf = make()
    ref = feed(buf, seq=11, n_steps=6, rewards=[1, 2, 3, 4, 5, 6], end="abort")
    seen = all_transitions(buf)
    assert set(seen) == {(11, t) for t in range(5)}
    assert seen[(11, 3)][1] == [(11, 3, OBS), (11, 4, OBS), (11, 5, OBS)]  # bootstraps from the dropped step's o_5
    assert seen[(11, 3)][2:4] == (pytest.approx(4 + 0.9 * 5), pytest.approx(0.81))
    assert seen[(11, 1)][2:4] == (pytest.approx(2 + 0.9 * 3 + 0.81 * 4), pytest.approx(0.729))  # exact, untouched
    check_rows(buf.sample(128), ref)
    feed(buf, seq=12, n_steps=1, end="abort")  # one step and a break: nothing can be completed
    assert len(buf) == 5
    buf.abort_sequence()  # nothing open: no-op
    ref.update(feed(buf, seq=13, n_steps=3))
    assert len(buf) == 8
    check_rows(buf.sample(256), ref)


def test_ring_wrap_never_yields_overwritten_frames():
    rng = np.random.default_rng(1)
    capacity = 30
    buf = make(capacity=capacity, seed=3)
    ref, order = {}, []
    start_frames = buf.frame_capacity
    for seq in range(300):
        n = int(rng.integers(1, 13))
        end = str(rng.choice(["term", "trunc", "abort"]))
        flags = rng.random(n) < 0.3
        new = feed(buf, seq, n, flags=flags, rewards=rng.normal(size=n), end=end, n_ctx=int(rng.integers(0, 4)))
        ref.update(new)
        order.extend(sorted(new))
        assert len(buf) == min(capacity, len(order))
        newest = set(order[-capacity:])
        for key, _ in rows(buf.sample(48)):
            assert key in newest, f"{key} was evicted but sampled"
        check_rows(buf.sample(48), ref)
    assert set(all_transitions(buf)) == set(order[-capacity:])
    # Short sequences with context need more than one frame per transition: the frame ring grew instead of limiting.
    assert start_frames < buf.frame_capacity <= 4 * capacity + 20


def test_tight_frame_ring_at_the_tail():
    """Episodes longer than the capacity: each new frame lands right behind the oldest frame still referenced.

    With capacity 5, stack 3 and n=3, inside an episode the live frames span the tail's stack (2 older frames), the
    5 stored transitions and the 3 pending steps; just after an episode boundary also the old episode's final frame:
    11 frames, so writing the next needs 12 slots. 11 must grow; 12 must wrap exactly at the tail without ever
    overwriting a frame of the tail transition's stack.
    """
    for frame_capacity, grows in ((12, False), (11, True), (3, True)):
        buf = make(capacity=5, frame_capacity=frame_capacity)
        ref, done = {}, []
        for seq in range(3):
            n = 17
            ref.update(reference(seq, 0, [False] * n, [0.5] * n, "trunc"))
            buf.begin_sequence()
            for t in range(n):
                buf.add(frame(seq, t), state(seq, t), action(seq, t), 0.5, False)
                if t >= 3:
                    done.append((seq, t - 3))  # o_t completes the window of step t-3
                assert set(all_transitions(buf)) == set(done[-5:])
                if len(buf):
                    check_rows(buf.sample(64), ref)
            buf.end_sequence(frame(seq, n, FINAL), state(seq, n, FINAL), terminated=False)
            done.extend((seq, t) for t in range(n - 3, n))
            check_rows(buf.sample(64), ref)
        assert (buf.frame_capacity > frame_capacity) == grows


def test_mixed_sampler_proportions():
    online, demo = make(seed=1), make(seed=2)
    feed(online, seq=1, n_steps=20)
    mixed = MixedSampler(online, demo, demo_fraction=0.5)
    assert all(key[0] == 1 for key, _ in rows(mixed.sample(64)))  # empty demo buffer: all online
    for seq in range(500, 507):  # 140 transitions: more than half a batch of 256
        feed(demo, seq=seq, n_steps=20, flags=[True] * 20)
    batch = mixed.sample(256)
    seqs = batch.action[:, 0]
    assert np.all(seqs[:128] == 1) and np.all(seqs[128:] >= 500)
    assert not batch.intervention[:128].any() and batch.intervention[128:].all()
    batch = MixedSampler(online, demo, demo_fraction=0.25).sample(256)
    assert np.sum(batch.action[:, 0] >= 500) == 64 and np.all(batch.action[:192, 0] == 1)


def test_a_small_demo_buffer_supplies_as_many_rows_as_it_holds():
    """Until the demonstration buffer holds its share of a batch (B * f transitions) it supplies one row per
    transition it holds, not the full share: 12 demonstration transitions are not drawn 128 times each batch."""
    online, demo = make(seed=1), make(seed=2)
    feed(online, seq=1, n_steps=300)
    mixed = MixedSampler(online, demo, demo_fraction=0.5)
    seq = 500
    while len(demo) < 160:
        feed(demo, seq=seq, n_steps=12, flags=[True] * 12)
        seq += 1
        want = min(128, len(demo))
        assert mixed.split(256) == (256 - want, want)
        batch = mixed.sample(256)
        assert np.all(batch.action[: 256 - want, 0] == 1) and np.all(batch.action[256 - want :, 0] >= 500)
    assert MixedSampler(online, demo, demo_fraction=0.25).split(256) == (192, 64)
    assert MixedSampler(online, demo, demo_fraction=0.0).split(256) == (256, 0)
    assert MixedSampler(make(), demo, demo_fraction=0.5).split(256) == (0, 256)  # nothing online yet


def test_stacks_equal_the_actors_frame_stack():
    """The buffer rebuilds stacks by index (storage); they must equal what the actor's one FrameStack gave the
    policy, first frame repeated at the episode start included."""
    buf = make(nstep=1, frame_stack=3)
    stack, expected = FrameStack(3, SHAPE, STATE_DIM), []
    buf.begin_sequence()
    for t in range(6):
        (stack.reset if t == 0 else stack.push)(frame(7, t), state(7, t))
        expected.append((stack.pixels(), stack.state()))
        buf.add(frame(7, t), state(7, t), action(7, t), 0.0, intervention=False)
    buf.end_sequence(frame(7, 6, FINAL), state(7, 6, FINAL), terminated=False)
    batch = buf.sample(64)
    assert len(buf) == 6
    for row in range(64):
        t = int(batch.action[row, 1])
        np.testing.assert_array_equal(batch.pixels[row], expected[t][0])
        np.testing.assert_array_equal(batch.state[row], expected[t][1])


def test_for_policy_takes_the_policys_shapes():
    config = PolicyConfig(frame_stack=2, image_size=16, state_dim=0, action_dim=2)
    buf = ReplayBuffer.for_policy(config, 10, nstep=1, seed=3)
    assert (buf.frame_shape, buf.state_dim, buf.action_dim, buf.frame_stack) == ((16, 16, 3), 0, 2, 2)
    assert ReplayBuffer.for_policy(config, 10, state_dim=18).state_dim == 18  # the graph's messages carry 18


def test_same_seed_same_samples_other_seed_differs():
    bufs = [make(seed=s) for s in (4, 4, 5)]
    for buf in bufs:
        feed(buf, 0, 30)
    a, b, c = (buf.sample(32) for buf in bufs)
    np.testing.assert_array_equal(a.action, b.action)
    assert not np.array_equal(a.action, c.action)


def test_bytes_per_transition_within_goal_at_84x84():
    capacity = 1000
    buf = ReplayBuffer(capacity)
    pixels = np.zeros((84, 84, 3), np.uint8)
    for _ in range(12):  # 1200 transitions of 100-step episodes: the ring is full and has wrapped
        buf.begin_sequence()
        for _ in range(100):
            buf.add(pixels, np.zeros(18), np.zeros(4), 0.0, False)
        buf.end_sequence(pixels, np.zeros(18), terminated=False)
    assert len(buf) == capacity
    one = 84 * 84 * 3 + 18 * 4 + 4 * 4
    assert buf.nbytes / len(buf) <= 1.1 * one
    batch = buf.sample(8)
    assert batch.pixels.shape == (8, 9, 84, 84) and batch.pixels.dtype == np.uint8
    assert batch.state.shape == (8, 54) and batch.next_state.dtype == np.float32
    import torch

    tensors = batch.to_torch()
    assert tensors.pixels.dtype == torch.uint8 and tuple(tensors.next_pixels.shape) == (8, 9, 84, 84)
    assert torch.equal(tensors.reward, torch.from_numpy(batch.reward))


def test_bad_inputs_are_rejected_with_the_field_named():
    buf = make()
    with pytest.raises(RuntimeError, match="begin_sequence"):
        buf.add(frame(0, 0), state(0, 0), action(0, 0), 0.0, False)
    buf.begin_sequence()
    with pytest.raises(ValueError, match="uint8"):
        buf.add(frame(0, 0).astype(np.float32), state(0, 0), action(0, 0), 0.0, False)
    with pytest.raises(ValueError, match="action"):
        buf.add(frame(0, 0), state(0, 0), np.zeros(3), 0.0, False)
    with pytest.raises(RuntimeError, match="still open"):
        buf.begin_sequence()
    with pytest.raises(ValueError, match="no complete transition"):
        buf.sample(4)
    buf.end_sequence(frame(0, 1), state(0, 1), terminated=True)
    with pytest.raises(ValueError, match="out.pixels"):
        buf.sample(4, out=buf.empty_batch(8))


def test_sampling_into_a_reused_batch_matches_fresh_sampling():
    a, b = make(seed=8), make(seed=8)
    for buf in (a, b):
        feed(buf, 0, 12, flags=[t > 6 for t in range(12)])
    out = b.empty_batch(32)
    for _ in range(2):
        fresh, reused = a.sample(32), b.sample(32, out=out)
        assert reused is out
        for name in [f.name for f in dataclasses.fields(fresh)]:
            np.testing.assert_array_equal(getattr(fresh, name), getattr(reused, name), err_msg=name)


def mc_returns(buf):
    """{(seq, t): Monte-Carlo return} of every stored transition (sampled until each was seen)."""
    seen = {}
    for _ in range(20):
        batch = buf.sample(64 * len(buf))
        for key, value in zip(batch.action[:, :2].astype(np.int64).tolist(), batch.mc_return.tolist(), strict=True):
            seen[tuple(key)] = value
        if len(seen) == len(buf):
            return seen
    raise AssertionError(f"saw {len(seen)} distinct transitions, buffer says {len(buf)}")


def hand_returns(seq, rewards, first=0, gamma=G, after=0.0):
    """By hand: G_t = sum_k gamma^k r_{t+k} to the sequence's end, + gamma^(T-t) * after."""
    n = len(rewards)
    return {(seq, t): sum(gamma**k * rewards[t + k] for k in range(n - t)) + gamma ** (n - t) * after
            for t in range(first, n)}  # fmt: skip


@pytest.mark.parametrize("end", ["term", "trunc"])
def test_mc_return_is_the_discounted_return_to_go_of_the_episode(end):
    """Terminated: the exact return. Truncated (time limit): unknown (NaN), since the partial sum would only be a
    lower bound that the critic's bootstrapped Q rightly exceeds; the n-step targets still bootstrap."""
    rewards = [1.0, 0.0, -0.5, 2.0, 0.0, 0.0, 10.0]
    buf = make(nstep=3)
    feed(buf, seq=3, n_steps=len(rewards), rewards=rewards, end=end)
    got = mc_returns(buf)
    want = hand_returns(3, rewards)
    assert want[(3, 6)] == 10.0 and want[(3, 0)] == pytest.approx(1 - 0.5 * G**2 + 2 * G**3 + 10 * G**6)
    if end == "term":
        assert got == pytest.approx(want, rel=1e-6)
    else:
        assert set(got) == set(want) and all(np.isnan(v) for v in got.values())
    last = buf.sample(256)
    rows_of_last = last.action[:, 1] == 6
    assert rows_of_last.any() and np.all(last.discount[rows_of_last] == (0.0 if end == "term" else G))


def test_mc_return_is_nan_until_the_sequence_ends_and_sequences_do_not_mix():
    buf = make(nstep=1)
    feed(buf, seq=1, n_steps=4, rewards=[5.0] * 4, end="term")
    buf.begin_sequence()
    rewards = [1.0, 2.0, 3.0, 4.0, 5.0]
    for t, reward in enumerate(rewards):
        buf.add(frame(2, t), state(2, t), action(2, t), reward, False)
    open_rows = mc_returns(buf)
    assert all(np.isnan(v) for (seq, _), v in open_rows.items() if seq == 2) and len(open_rows) == 8
    buf.end_sequence(frame(2, 5, FINAL), state(2, 5, FINAL), terminated=True)
    assert mc_returns(buf) == pytest.approx(hand_returns(1, [5.0] * 4) | hand_returns(2, rewards), rel=1e-6)


def test_mc_return_after_an_abort_a_wrap_and_with_return_after():
    # abort: the stream broke, the episode's return is unknown: the stored rows have none
    buf = make(nstep=2)
    rewards = [1.0, 2.0, 3.0, 4.0]
    feed(buf, seq=1, n_steps=4, rewards=rewards, end="abort")
    got = mc_returns(buf)
    assert set(got) == {(1, t) for t in range(3)} and all(np.isnan(v) for v in got.values())
    # a sequence longer than the capacity: the steps still stored get their own returns
    small = make(capacity=5, nstep=2)
    rewards = [float(t) for t in range(12)]
    feed(small, seq=4, n_steps=12, rewards=rewards, end="term")
    assert mc_returns(small) == pytest.approx(hand_returns(4, rewards, first=7), rel=1e-6)
    # an intervention segment continues with what the episode earned after it
    seg = make(nstep=3)
    seg.begin_sequence()
    for t in range(3):
        seg.add(frame(5, t), state(5, t), action(5, t), 1.0, True)
    seg.end_sequence(frame(5, 3, FINAL), state(5, 3, FINAL), terminated=False, return_after=7.5, exact_return=True)
    assert mc_returns(seg) == pytest.approx(hand_returns(5, [1.0] * 3, after=7.5), rel=1e-6)
    # ... unless the episode it belongs to did not terminate: then its return is unknown
    cut = make(nstep=3)
    cut.begin_sequence()
    for t in range(3):
        cut.add(frame(7, t), state(7, t), action(7, t), 1.0, True)
    cut.end_sequence(frame(7, 3, FINAL), state(7, 3, FINAL), terminated=False, return_after=7.5, exact_return=False)
    assert all(np.isnan(v) for v in mc_returns(cut).values())
    with pytest.raises(ValueError, match="return_after"):
        seg.begin_sequence()
        seg.add(frame(6, 0), state(6, 0), action(6, 0), 1.0, True)
        seg.end_sequence(frame(6, 1, FINAL), state(6, 1, FINAL), terminated=True, return_after=1.0)


def test_mixed_sampler_marks_the_demonstration_rows():
    online, demo = make(seed=1), make(seed=2)
    feed(online, seq=1, n_steps=200, flags=[t % 3 == 0 for t in range(200)])
    feed(demo, seq=500, n_steps=200, flags=[True] * 200)
    batch = MixedSampler(online, demo, demo_fraction=0.5).sample(256)
    np.testing.assert_array_equal(batch.from_demo, batch.action[:, 0] >= 500)
    assert batch.from_demo.sum() == 128 and batch.intervention[:128].any() and not batch.intervention[:128].all()
    assert not online.sample(16).from_demo.any()


def test_rows_are_the_stored_transitions_in_order_and_match_what_sampling_draws():
    buf = make(capacity=10, nstep=1)
    feed(buf, seq=1, n_steps=8, end="term")
    feed(buf, seq=2, n_steps=6, end="term")  # 14 steps into 10 slots: the oldest 4 are gone
    got = buf.rows(0, len(buf))
    assert [tuple(a) for a in got.action[:, :2].astype(int).tolist()] == [(1, t) for t in range(4, 8)] + [
        (2, t) for t in range(6)
    ]
    assert np.isfinite(got.mc_return).all() and not got.from_demo.any()
    sampled = buf.sample(512)  # every row sampling can draw is one of these, field for field
    keys = {tuple(a): i for i, a in enumerate(got.action[:, :2].astype(int).tolist())}
    for j, a in enumerate(sampled.action[:, :2].astype(int).tolist()):
        i = keys[tuple(a)]
        np.testing.assert_array_equal(sampled.pixels[j], got.pixels[i])
        assert sampled.mc_return[j] == got.mc_return[i] and sampled.discount[j] == got.discount[i]
    with pytest.raises(IndexError):
        buf.rows(5, 6)
