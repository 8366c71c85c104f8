"""DrQ-v2 agent: the augmentation, gradient routing, target update, TD target, checkpoints and acting."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from so101_hilserl_core import exploration
from so101_hilserl_core.policy import PolicyConfig, scale_pixels
from so101_hilserl_learner import agent as agent_module
from so101_hilserl_learner.agent import (
    AgentConfig,
    DrQV2Agent,
    truncated_normal_sample,
)
from so101_hilserl_learner.q_diagnostics import GROUPS, QWindow
from so101_hilserl_learner.replay import MixedSampler, ReplayBuffer, random_batch

TINY = PolicyConfig(image_size=20, state_dim=2, action_dim=2, encoder_channels=8, bottleneck=8, hidden=(32, 32))


def make_agent(**overrides) -> DrQV2Agent:
    return DrQV2Agent(TINY, AgentConfig(**{"num_explore_steps": 0, **overrides}))


def test_scale_pixels_is_x_over_255_minus_half_in_either_layout_and_never_in_place():
    pixels = torch.randint(0, 256, (2, 9, 20, 20), dtype=torch.uint8)
    for channels_last in (True, False):
        assert torch.equal(scale_pixels(pixels, channels_last), pixels.float() / 255.0 - 0.5)
    floats = pixels.float()
    scale_pixels(floats)
    assert torch.equal(floats, pixels.float())  # float input is left as it was


def _count_grad_hooks(module: torch.nn.Module) -> list[int]:
    counts = [0]

    def hook(grad):
        counts[0] += 1
        return grad

    for param in module.parameters():
        param.register_hook(hook)
    return counts


def test_actor_gradients_never_reach_the_encoder_critic_gradients_do():
    agent = make_agent()
    n_params = {name: len(list(getattr(agent, name).parameters())) for name in ("encoder", "actor", "critic")}
    counts = {name: _count_grad_hooks(getattr(agent, name)) for name in n_params}
    before = {name: [p.detach().clone() for p in getattr(agent, name).parameters()] for name in n_params}
    agent.update(random_batch(8, TINY), 0)
    # One backward pass reaches each: the critic loss (encoder, critic) and the actor loss (actor only).
    assert counts == {name: [n] for name, n in n_params.items()}
    for name in n_params:
        after = list(getattr(agent, name).parameters())
        assert all(not torch.equal(a, b) for a, b in zip(after, before[name], strict=True)), name


def test_target_moves_by_tau_towards_the_critic():
    agent = make_agent(critic_target_tau=0.25)
    with torch.no_grad():  # make target and critic differ first
        for param in agent.critic_target.parameters():
            param.add_(0.1)
    target_before = [p.detach().clone() for p in agent.critic_target.parameters()]
    agent.update(random_batch(8, TINY), 0)
    for old, new, critic in zip(
        target_before, agent.critic_target.parameters(), agent.critic.parameters(), strict=True
    ):
        torch.testing.assert_close(new, old + 0.25 * (critic - old), rtol=0, atol=1e-7)
        assert not torch.equal(new, old)


def test_td_target_and_critic_loss_match_a_hand_computation():
    agent = make_agent(augmentation_pad=0, stddev_schedule="0.5", stddev_clip=0.3)
    batch = random_batch(4, TINY, seed=1)
    batch.reward[:] = [0.5, -1.0, 2.0, 0.25]
    batch.discount[:] = [0.99**3, 0.0, 0.99, 0.99**2]  # row 1 ends in a terminal: no bootstrap
    b = agent._batch_to_device(batch)
    state = agent.update_generator.get_state()
    with torch.no_grad():
        next_features = agent.encoder(torch.from_numpy(batch.next_pixels))
        mean = agent.actor(next_features, b["next_state"])
        noise = torch.randn(mean.shape, generator=agent.update_generator).mul(0.5).clamp(-0.3, 0.3)
        next_action = (mean + noise).clamp(-1 + 1e-6, 1 - 1e-6)
        q_next = np.stack(
            [q(next_features, b["next_state"], next_action).numpy()[:, 0] for q in agent.critic_target.qs]
        )
        expected_y = batch.reward + batch.discount * q_next.min(axis=0)
        features = agent.encoder(torch.from_numpy(batch.pixels))
        qs = agent.critic(features, b["state"], b["action"]).numpy()[:, :, 0]  # (critics, B)
    expected_loss = np.mean((qs - expected_y[None]) ** 2)
    assert expected_y[1] == pytest.approx(-1.0, abs=1e-7)
    agent.update_generator.set_state(state)
    y = agent.td_target(next_features, b, 0)[:, 0].numpy()
    np.testing.assert_allclose(y, expected_y, rtol=1e-5, atol=1e-6)
    agent.update_generator.set_state(state)
    metrics = agent.update(batch, 0)
    assert metrics["critic_loss"] == pytest.approx(expected_loss, rel=1e-4)  # averaged over critics, not summed
    assert metrics["target_q_mean"] == pytest.approx(expected_y.mean(), rel=1e-5)


def test_state_dict_round_trip_reproduces_the_next_updates():
    agent = make_agent(seed=5)
    for step in range(2):
        agent.update(random_batch(8, TINY, seed=step), step)
    state = agent.state_dict()
    assert all(isinstance(v, torch.Tensor) for v in state.values())
    clone = make_agent(seed=99)
    clone.load_state_dict(state)
    assert clone.num_updates == 2
    for step in range(2, 4):
        batch = random_batch(8, TINY, seed=step)
        assert agent.update(batch, step) == clone.update(batch, step)
    for key, value in agent.state_dict().items():
        assert torch.equal(value, clone.state_dict()[key]), key
    pixels = random_batch(3, TINY).pixels
    state_in = np.zeros((3, 6), np.float32)
    np.testing.assert_array_equal(agent.act(pixels, state_in, 10, False), clone.act(pixels, state_in, 10, False))


def test_stddev_schedule_and_noise_clipping():
    agent = make_agent()  # the from-scratch default, linear(1.0,0.1,100000) (RoboBase rlbench/easy, drqv2 easy)
    assert agent.config.stddev_schedule == exploration.DEFAULT_SCRATCH_SCHEDULE
    assert agent.stddev(0) == pytest.approx(1.0)
    assert agent.stddev(50_000) == pytest.approx(0.55)
    assert agent.stddev(10**7) == pytest.approx(0.1)
    gen = torch.Generator().manual_seed(0)
    mean = torch.zeros(10_000, 2, requires_grad=True)
    sample = truncated_normal_sample(mean, std=5.0, clip=0.3, generator=gen)
    assert sample.abs().max() <= 0.3 + 1e-7 and (sample.abs() > 0.2999).float().mean() > 0.9
    near_edge = truncated_normal_sample(torch.full((1000, 2), 0.95), std=1.0, clip=0.3, generator=gen)
    assert near_edge.max() <= 1 - 1e-6 and near_edge.max() > 0.999
    sample.sum().backward()  # straight-through clamp: gradient 1 to the mean everywhere (DrQ-v2's TruncatedNormal)
    assert torch.equal(mean.grad, torch.ones_like(mean))


def test_act_explores_then_follows_the_schedule():
    agent = DrQV2Agent(TINY, AgentConfig(num_explore_steps=100, stddev_schedule="linear(0.2,0.1,1000)"))
    pixels = np.repeat(random_batch(1, TINY).pixels, 4000, axis=0)
    state = np.zeros((4000, 6), np.float32)
    greedy = agent.act(pixels[:1], state[:1], 0, eval_mode=True)
    random_actions = agent.act(pixels, state, 50, eval_mode=False)
    assert random_actions.min() < -0.95 and random_actions.max() > 0.95
    assert abs(random_actions.std() - 1 / np.sqrt(3)) < 0.03  # uniform in [-1, 1]
    noisy = agent.act(pixels, state, 100, eval_mode=False)
    np.testing.assert_allclose(noisy.mean(axis=0), greedy[0], atol=0.02)
    np.testing.assert_allclose(noisy.std(axis=0), agent.stddev(100), rtol=0.06)  # 0.19
    np.testing.assert_allclose(agent.act(pixels, state, 1000, eval_mode=False).std(axis=0), 0.1, rtol=0.06)


def test_policy_copy_acts_like_the_agent():
    agent = make_agent()
    agent.update(random_batch(8, TINY), 0)
    batch = random_batch(5, TINY, seed=4)
    policy = agent.policy()
    expected = agent.act(batch.pixels, batch.state, 0, eval_mode=True)
    got = policy.act(torch.from_numpy(batch.pixels), torch.from_numpy(batch.state)).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-5)
    agent.update(random_batch(8, TINY, seed=1), 1)  # a copy: later training does not change it
    np.testing.assert_array_equal(policy.act(torch.from_numpy(batch.pixels), torch.from_numpy(batch.state)), got)
    weights = agent.weights()
    assert {k.split(".")[0] for k in weights} == {"encoder", "actor", "critic", "critic_target"}


@pytest.mark.parametrize("transitions", [0, 3_000, 7_500, 10_000, 50_000])
def test_learner_noise_at_transition_k_is_the_schedule_the_actor_reads(monkeypatch, transitions):
    """The target-policy noise and the actor-loss noise of an update at environment step k have the std
    exploration.stddev(schedule, k): the reading the actor makes from the schedule and step in PolicyWeights."""
    schedule = exploration.DEFAULT_PRETRAINED_SCHEDULE
    agent = make_agent(stddev_schedule=schedule)
    stds = []
    real = agent_module.truncated_normal_sample

    def recording(mean, std, clip, generator):
        stds.append(std)
        return real(mean, std, clip, generator)

    monkeypatch.setattr(agent_module, "truncated_normal_sample", recording)
    for _ in range(3):  # the update count must not move the schedule
        metrics = agent.update(random_batch(8, TINY), transitions)
    expected = exploration.stddev(schedule, transitions)
    assert stds == [pytest.approx(expected)] * 6  # target noise and actor-loss noise, three updates
    assert metrics["actor_stddev"] == pytest.approx(expected)
    pixels = np.repeat(random_batch(1, TINY).pixels, 4000, axis=0)
    state = np.zeros((4000, 6), np.float32)
    greedy = agent.act(pixels[:1], state[:1], transitions, eval_mode=True)
    acting = agent.act(pixels, state, transitions, eval_mode=False)  # acting noise (unclipped), as the actor's
    inside = np.abs(greedy[0]) < 0.5  # away from the [-1, 1] clamp the spread is the std
    assert inside.any()
    np.testing.assert_allclose(acting.std(axis=0)[inside], expected, rtol=0.08)


def test_q_groups_are_the_critics_q_and_the_returns_of_each_kind_of_row():
    """Real buffers and agent: per group, the sums are of the Q the critic loss saw (the critics' mean on the stored
    action, before the step) and of the rows' hand-computed returns-to-go; rows of an open episode count nowhere."""
    gamma, size = 0.9, TINY.image_size
    online, demo = (ReplayBuffer.for_policy(TINY, 500, nstep=2, discount=gamma, seed=s) for s in (0, 1))
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (31, size, size, 3), dtype=np.uint8)
    states = rng.normal(size=(31, TINY.state_dim)).astype(np.float32)
    rewards = rng.normal(size=30).round(2)
    helped = [10 <= t < 20 for t in range(30)]

    def act(t, tag):  # the action says which step (and buffer) a sampled row is
        return np.array([t / 100, tag], np.float32)

    online.begin_sequence()
    for t in range(30):
        online.add(frames[t], states[t], act(t, 0.0), rewards[t], helped[t])
    online.end_sequence(frames[30], states[30], terminated=True)
    returns = {t: sum(gamma**k * rewards[t + k] for k in range(30 - t)) for t in range(30)}  # by hand
    demo.begin_sequence(frames[8:10], states[8:10])  # the segment, as ingest stores it
    for t in range(10, 20):
        demo.add(frames[t], states[t], act(t, 0.5), rewards[t], True)
    demo.end_sequence(frames[20], states[20], terminated=False, return_after=returns[20], exact_return=True)
    online.begin_sequence()  # a second episode still open: its stored rows have no return yet
    for t in range(5):
        online.add(frames[t], states[t], act(t, -0.5), 1.0, False)

    batch = MixedSampler(online, demo, demo_fraction=0.5).sample(64)
    steps, tags = np.round(batch.action[:, 0] * 100).astype(int), batch.action[:, 1]
    known = tags != -0.5
    assert (~known).any() and np.isnan(batch.mc_return[~known]).all()
    np.testing.assert_allclose(batch.mc_return[known], [returns[t] for t in steps[known]], rtol=1e-5)
    masks = {
        "online_policy": (tags == 0.0) & ~batch.intervention,
        "online_intervention": (tags == 0.0) & batch.intervention,
        "demo": tags == 0.5,
    }
    agent = make_agent(augmentation_pad=0)
    with torch.no_grad():
        t = batch.to_torch()
        q = agent.critic(agent.encoder(t.pixels), t.state, t.action).mean(dim=0)[:, 0].numpy()
    agent.update(batch, 0)
    assert set(agent.q_groups) == set(masks)
    for group, mask in masks.items():
        q_sum, mc_sum, rows = agent.q_groups[group]
        assert rows == mask.sum() > 0, group
        assert q_sum == pytest.approx(q[mask].sum(), rel=1e-4, abs=1e-5), group
        assert mc_sum == pytest.approx(sum(returns[s] for s in steps[mask]), rel=1e-5), group


def test_q_window_means_are_row_weighted_and_nan_without_rows():
    window = QWindow()
    window.add({"online_policy": (6.0, 3.0, 3), "online_intervention": (0.0, 0.0, 0), "demo": (1.0, -1.0, 1)})
    window.add({"online_policy": (4.0, 1.0, 1), "online_intervention": (0.0, 0.0, 0), "demo": (5.0, 2.0, 3)})
    means = window.take()
    assert means["q/online_policy"] == 2.5 and means["mc_return/online_policy"] == 1.0
    assert means["q/demo"] == 1.5 and means["mc_return/demo"] == 0.25 and means["rows/demo"] == 4
    assert np.isnan(means["q/online_intervention"]) and np.isnan(means["mc_return/online_intervention"])
    fresh = window.take()  # a new window
    assert all(np.isnan(fresh[f"q/{group}"]) and fresh[f"rows/{group}"] == 0 for group in GROUPS)
