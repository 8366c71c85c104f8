"""Learner update speed: this package's DrQ-v2 agent next to a plain re-implementation of facebookresearch/drqv2.

Updates per second, batch 256 of 9x84x84 uint8 pixels, for (a) the default network (PolicyConfig()), (b) the reference
DrQ-v2 sizes (hidden (1024, 1024), no state, feature 50) with this agent and (c) ``ReferenceDrQV2``: drqv2's update
as its algorithm is published, at the sizes of (b). (b)/(c) is the speed-up from the implementation alone (same
sizes, same machine, same process and allocator).

    python -m so101_bench.learner --updates 5
"""

from __future__ import annotations

import argparse
import re
import time

import torch
import torch.nn.functional as F
from torch import nn

from so101_contract.cpu_allocator import configure_cpu_allocator
from so101_contract.devices import DEFAULT_DEVICE, DEVICES, device_name
from so101_hilserl_core.policy import PolicyConfig
from so101_hilserl_learner.agent import AgentConfig, DrQV2Agent
from so101_hilserl_learner.replay import Batch, ReplayConfig, random_batch

# facebookresearch/drqv2 itself (hidden 1024, batch 256, 9x84x84) on this project's 2-core CPU (ENVIRONMENT.md).
DRQV2_MEASURED_UPDATES_PER_S = 0.38


# ------------------------------------------------------------------------------- (c) the reference formulation


def reference_random_shift(x: torch.Tensor, pad: int, shift: torch.Tensor | None = None) -> torch.Tensor:
    """DrQ-v2's RandomShiftsAug: replicate-pad float images by ``pad``, then bilinear grid_sample at a grid moved by
    an integer number of pixels; ``shift`` (B, 2) = (x, y) in 0..2*pad, drawn at random when None."""
    n, _, h, w = x.shape
    if h != w:
        raise ValueError(f"reference_random_shift needs square images, got {h}x{w}")
    x = F.pad(x, (pad, pad, pad, pad), mode="replicate")
    eps = 1.0 / (h + 2 * pad)
    arange = torch.linspace(-1.0 + eps, 1.0 - eps, h + 2 * pad, device=x.device, dtype=x.dtype)[:h]
    arange = arange.unsqueeze(0).repeat(h, 1).unsqueeze(2)
    base_grid = torch.cat([arange, arange.transpose(1, 0)], dim=2).unsqueeze(0).repeat(n, 1, 1, 1)
    if shift is None:
        shift = torch.randint(0, 2 * pad + 1, size=(n, 2), device=x.device)
    grid = base_grid + shift.to(x.dtype).view(n, 1, 1, 2) * (2.0 / (h + 2 * pad))
    return F.grid_sample(x, grid, padding_mode="zeros", align_corners=False)


def _orthogonal_init(module: nn.Module) -> None:
    if isinstance(module, nn.Linear | nn.Conv2d):
        gain = nn.init.calculate_gain("relu") if isinstance(module, nn.Conv2d) else 1.0
        nn.init.orthogonal_(module.weight.data, gain)
        module.bias.data.fill_(0.0)


class _RefEncoder(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.convnet = nn.Sequential(
            nn.Conv2d(channels, 32, 3, stride=2), nn.ReLU(), nn.Conv2d(32, 32, 3, stride=1), nn.ReLU(),
            nn.Conv2d(32, 32, 3, stride=1), nn.ReLU(), nn.Conv2d(32, 32, 3, stride=1), nn.ReLU(),
        )  # fmt: skip
        self.apply(_orthogonal_init)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.convnet(obs / 255.0 - 0.5).view(obs.shape[0], -1)


def _mlp(in_dim: int, hidden: int, out_dim: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(in_dim, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                         nn.Linear(hidden, out_dim))  # fmt: skip


class _RefActor(nn.Module):
    def __init__(self, repr_dim: int, action_dim: int, feature_dim: int, hidden: int):
        super().__init__()
        self.trunk = nn.Sequential(nn.Linear(repr_dim, feature_dim), nn.LayerNorm(feature_dim), nn.Tanh())
        self.policy = _mlp(feature_dim, hidden, action_dim)
        self.apply(_orthogonal_init)

    def forward(self, obs: torch.Tensor, std: float) -> _TruncatedNormal:
        mu = torch.tanh(self.policy(self.trunk(obs)))
        return _TruncatedNormal(mu, torch.ones_like(mu) * std)


class _RefCritic(nn.Module):
    def __init__(self, repr_dim: int, action_dim: int, feature_dim: int, hidden: int):
        super().__init__()
        self.trunk = nn.Sequential(nn.Linear(repr_dim, feature_dim), nn.LayerNorm(feature_dim), nn.Tanh())
        self.q1 = _mlp(feature_dim + action_dim, hidden, 1)
        self.q2 = _mlp(feature_dim + action_dim, hidden, 1)
        self.apply(_orthogonal_init)

    def forward(self, obs: torch.Tensor, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h_action = torch.cat([self.trunk(obs), action], dim=-1)
        return self.q1(h_action), self.q2(h_action)


class _TruncatedNormal(torch.distributions.Normal):
    def __init__(self, loc, scale, low=-1.0, high=1.0, eps=1e-6):
        super().__init__(loc, scale, validate_args=False)
        self.low, self.high, self.eps = low, high, eps

    def sample(self, clip=None, sample_shape=torch.Size()):  # noqa: B008
        noise = torch.randn(self._extended_shape(sample_shape), dtype=self.loc.dtype, device=self.loc.device)
        noise = noise * self.scale
        if clip is not None:
            noise = noise.clamp(-clip, clip)
        x = self.loc + noise
        clamped = x.clamp(self.low + self.eps, self.high - self.eps)
        return x - x.detach() + clamped.detach()


def _schedule(spec: str, step: int) -> float:
    start, end, duration = (float(v) for v in re.match(r"linear\((.+),(.+),(.+)\)", spec).groups())
    mix = min(max(step / duration, 0.0), 1.0)
    return (1.0 - mix) * start + mix * end


REFERENCE_LR = 1e-4  # drqv2's published learning rate (the reference's own, not the project's setting)


class ReferenceDrQV2:
    """facebookresearch/drqv2's agent update (pixels only), as published; only used to time it.

    Written here from the algorithm description: Adam, RandomShiftsAug by bilinear grid_sample on float, separate
    encoder passes, critic loss summed over the two Qs, NCHW float32, one shared critic trunk.
    """

    def __init__(self, channels=9, action_dim=4, feature_dim=50, hidden=1024, image_size=84, device="cpu"):
        self.device = torch.device(device)
        self.encoder = _RefEncoder(channels).to(self.device)
        repr_dim = 32 * ((image_size - 3) // 2 + 1 - 6) ** 2
        self.actor = _RefActor(repr_dim, action_dim, feature_dim, hidden).to(self.device)
        self.critic = _RefCritic(repr_dim, action_dim, feature_dim, hidden).to(self.device)
        self.critic_target = _RefCritic(repr_dim, action_dim, feature_dim, hidden).to(self.device)
        self.critic_target.load_state_dict(self.critic.state_dict())
        self.encoder_opt = torch.optim.Adam(self.encoder.parameters(), lr=REFERENCE_LR)
        self.actor_opt = torch.optim.Adam(self.actor.parameters(), lr=REFERENCE_LR)
        self.critic_opt = torch.optim.Adam(self.critic.parameters(), lr=REFERENCE_LR)
        self.stddev_schedule, self.stddev_clip, self.tau = "linear(1.0,0.1,500000)", 0.3, 0.01

    def update(self, batch: Batch, step: int) -> dict[str, float]:
        obs, action, reward, discount, next_obs = (
            torch.as_tensor(getattr(batch, k), device=self.device)
            for k in ("pixels", "action", "reward", "discount", "next_pixels")
        )
        reward, discount = reward[:, None], discount[:, None]
        obs = reference_random_shift(obs.float(), 4)
        next_obs = reference_random_shift(next_obs.float(), 4)
        obs = self.encoder(obs)
        with torch.no_grad():
            next_obs = self.encoder(next_obs)
        metrics = self.update_critic(obs, action, reward, discount, next_obs, step)
        metrics.update(self.update_actor(obs.detach(), step))
        with torch.no_grad():
            for param, target in zip(self.critic.parameters(), self.critic_target.parameters(), strict=True):
                target.data.copy_(self.tau * param.data + (1 - self.tau) * target.data)
        return metrics

    def update_critic(self, obs, action, reward, discount, next_obs, step) -> dict[str, float]:
        with torch.no_grad():
            dist = self.actor(next_obs, _schedule(self.stddev_schedule, step))
            next_action = dist.sample(clip=self.stddev_clip)
            target_q1, target_q2 = self.critic_target(next_obs, next_action)
            target_q = reward + discount * torch.min(target_q1, target_q2)
        q1, q2 = self.critic(obs, action)
        critic_loss = F.mse_loss(q1, target_q) + F.mse_loss(q2, target_q)
        self.encoder_opt.zero_grad(set_to_none=True)
        self.critic_opt.zero_grad(set_to_none=True)
        critic_loss.backward()
        self.critic_opt.step()
        self.encoder_opt.step()
        return {"critic_target_q": target_q.mean().item(), "critic_q1": q1.mean().item(),
                "critic_q2": q2.mean().item(), "critic_loss": critic_loss.item()}  # fmt: skip

    def update_actor(self, obs, step) -> dict[str, float]:
        dist = self.actor(obs, _schedule(self.stddev_schedule, step))
        action = dist.sample(clip=self.stddev_clip)
        log_prob = dist.log_prob(action).sum(-1, keepdim=True)
        q1, q2 = self.critic(obs, action)
        actor_loss = -torch.min(q1, q2).mean()
        self.actor_opt.zero_grad(set_to_none=True)
        actor_loss.backward()
        self.actor_opt.step()
        return {"actor_loss": actor_loss.item(), "actor_logprob": log_prob.mean().item(),
                "actor_ent": dist.entropy().sum(dim=-1).mean().item()}  # fmt: skip


# ------------------------------------------------------------------------------------------------- benchmark


def updates_per_second(update, batch: Batch, updates: int, warmup: int, device: torch.device) -> float:
    for step in range(warmup):
        update(batch, step)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    for step in range(updates):
        update(batch, warmup + step)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return updates / (time.perf_counter() - start)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", choices=DEVICES, default=DEFAULT_DEVICE)
    parser.add_argument("--batch", type=int, default=ReplayConfig.batch_size)
    parser.add_argument("--updates", type=int, default=None, help="timed updates per case (default 5 CPU, 50 GPU)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed updates first")
    parser.add_argument("--amp", action="store_true", help="bfloat16 mixed precision for (a) and (b)")
    parser.add_argument("--no-allocator-tuning", action="store_true", help="leave glibc malloc at its defaults")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--skip-reference", action="store_true", help="do not time (c)")
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(device_name(args.device))
    updates = args.updates or (50 if device.type == "cuda" else 5)
    print(f"device {device}, {torch.get_num_threads()} threads, batch {args.batch}, 9x84x84, {updates} timed updates "
          f"after {args.warmup} warm-up; amp {args.amp}")  # fmt: skip
    reference_sizes = PolicyConfig(hidden=(1024, 1024), state_dim=0, bottleneck=50)

    def reference_rate(label: str) -> float:
        reference = ReferenceDrQV2(hidden=1024, device=device)
        rate = updates_per_second(
            reference.update, random_batch(args.batch, reference_sizes), updates, args.warmup, device
        )
        print(f"{label:44s} {rate:8.2f} updates/s  ({1000 / rate:7.1f} ms/update)")
        return rate

    # drqv2 runs with the default allocator: measure it first, before this process tunes malloc (process-wide).
    as_published = None if args.skip_reference else reference_rate("(c) drqv2 re-implementation, default malloc")
    tuned = False if args.no_allocator_tuning else configure_cpu_allocator()
    print(f"allocator tuning (the learner node's setting): {'on' if tuned else 'off'}")
    agent_config = AgentConfig(mixed_precision=args.amp)
    cases = {"(a) default network": PolicyConfig(), "(b) reference sizes, this agent": reference_sizes}
    rates = {}
    for name, config in cases.items():
        agent = DrQV2Agent(config, agent_config, device=device)
        rates[name] = updates_per_second(agent.update, random_batch(args.batch, config), updates, args.warmup, device)
        print(f"{name:44s} {rates[name]:8.2f} updates/s  ({1000 / rates[name]:7.1f} ms/update)")
        del agent
    ours = rates["(b) reference sizes, this agent"]
    if as_published is not None:
        same_allocator = reference_rate("(c') drqv2 re-implementation, tuned malloc") if tuned else as_published
        print(f"speed-up at identical sizes vs drqv2 as it runs (default malloc): {ours / as_published:.2f}x (goal 2x)")
        print(f"speed-up from the implementation alone (same allocator):          {ours / same_allocator:.2f}x")
    print(
        f"vs facebookresearch/drqv2 itself as measured on this CPU ({DRQV2_MEASURED_UPDATES_PER_S} updates/s, "
        f"ENVIRONMENT.md): {ours / DRQV2_MEASURED_UPDATES_PER_S:.2f}x"
    )


if __name__ == "__main__":
    main()
