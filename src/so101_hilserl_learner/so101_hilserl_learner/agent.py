"""DrQ-v2 training as RoboBase does it (the source of the sim checkpoints), written out step by step.

``DrQV2Agent.update`` is one DrQ-v2 update on a replay batch: random shifts, the critic loss (the only loss that
trains the encoder) against clipped-noise n-step targets from the target critics, the actor loss on detached
features, and a soft target update. The math is the reference's; how it is made fast on a CPU (integer uint8
shifts, channels-last convolutions, one device->host copy of the metrics), measured with ``so101_bench.learner``,
is written on ``DrQV2Agent``.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from so101_contract.settings import setting
from so101_hilserl_core import exploration
from so101_hilserl_core.policy import Actor, Encoder, Policy, PolicyConfig
from so101_hilserl_learner.critic import Critic
from so101_hilserl_learner.q_diagnostics import GROUPS, group_sums

_WEIGHT_PREFIXES = ("encoder.", "actor.", "critic.", "critic_target.")
_OPTIMIZERS = ("encoder", "critic", "actor")


@dataclass(frozen=True)
class AgentConfig:
    """RoboBase DrQ-v2 training hyperparameters (the seed's checkpoints') as defaults. The ``setting`` fields are
    the learner node's parameters of the same names (so101_contract.settings); the rest are set in code."""

    seed: int = setting(0, "seed of the networks and of batch sampling", (0, 2**31 - 1))
    lr: float = setting(1e-4, "AdamW learning rate of encoder, actor and critic", (1e-12, 1.0))
    critic_target_tau: float = setting(0.01, "soft target update rate", (1e-6, 1.0))
    stddev_clip: float = setting(0.3, "clip of the target policy noise", (0.0, 10.0))
    weight_decay: float = 0.0
    stddev_schedule: str = exploration.DEFAULT_SCRATCH_SCHEDULE  # read at environment steps, never update counts
    augmentation_pad: int = 4  # 0 disables the random shift
    num_critics: int = 2
    # act() returns uniform random actions before this step (not in eval mode); the one default, the actor's
    num_explore_steps: int = exploration.ExplorationConfig.num_explore_steps
    grad_clip: float | None = None  # max grad norm, applied per optimiser (RoboBase's critic/actor_grad_clip)
    mixed_precision: bool = False  # bfloat16 autocast for convs and MLPs; targets and losses stay float32
    channels_last: bool = True  # convolution memory format (faster on CPU oneDNN and on tensor cores)

    def __post_init__(self) -> None:
        if self.lr <= 0 or self.weight_decay < 0:
            raise ValueError(f"AgentConfig: lr must be > 0 and weight_decay >= 0, got {self.lr}, {self.weight_decay}")
        if not 0.0 < self.critic_target_tau <= 1.0:
            raise ValueError(f"AgentConfig.critic_target_tau must be in (0, 1], got {self.critic_target_tau}")
        if self.augmentation_pad < 0 or self.num_critics < 1 or self.num_explore_steps < 0:
            raise ValueError("AgentConfig: augmentation_pad >= 0, num_critics >= 1, num_explore_steps >= 0 required")
        if self.stddev_clip < 0 or (self.grad_clip is not None and self.grad_clip <= 0):
            raise ValueError("AgentConfig: stddev_clip must be >= 0 and grad_clip None or > 0")
        exploration.validate_schedule(self.stddev_schedule, "AgentConfig.stddev_schedule")


# ------------------------------------------------------------------------------------------------ augmentation


def random_shifts(batch: int, pad: int, generator: torch.Generator, device) -> torch.Tensor:
    """(batch, 2) integer shifts (x, y) in 0..2*pad, as DrQ-v2 draws them."""
    return torch.randint(0, 2 * pad + 1, (batch, 2), generator=generator, device=device)


def shift_pixels(pixels: torch.Tensor, shifts: torch.Tensor, pad: int) -> torch.Tensor:
    """Random shift of uint8 (B, C, H, W) pixels: out[b, :, y, x] = padded[b, :, y + sy, x + sx], replicate padding.

    Done as one gather with clamped indices (clamping = replicate padding). The result is a (B, C, H, W) view with
    channels-last strides. Equals ``grid_sample`` on the replicate-padded float image with DrQ-v2's grid.
    """
    batch, _, height, width = pixels.shape
    rows = torch.arange(height, device=pixels.device) + (shifts[:, 1:2] - pad)
    cols = torch.arange(width, device=pixels.device) + (shifts[:, 0:1] - pad)
    rows, cols = rows.clamp_(0, height - 1), cols.clamp_(0, width - 1)
    index = torch.arange(batch, device=pixels.device)[:, None, None]
    return pixels[index, :, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)  # gathered as (B, H, W, C)


def truncated_normal_sample(mean: torch.Tensor, std: float, clip: float | None, generator) -> torch.Tensor:
    """DrQ-v2/RoboBase TruncatedNormal.sample: mean + clipped noise, clamped to +-(1 - 1e-6) with a straight-through
    gradient (the clamp does not block gradients to the mean, unlike a plain clamp)."""
    noise = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype) * std
    if clip is not None:
        noise = noise.clamp(-clip, clip)
    action = mean + noise
    clamped = action.detach().clamp(-1.0 + 1e-6, 1.0 - 1e-6)
    return action - action.detach() + clamped


# ----------------------------------------------------------------------------------------------------- the agent


class DrQV2Agent:
    """Encoder, actor, critic and target critic with their AdamW optimisers.

    One update, given a replay batch (uint8 stacked pixels, n-step reward, discount = gamma^k or 0 at a terminal)::

        obs, next_obs   = random_shift(pixels), random_shift(next_pixels)       # independent shifts, pad 4, replicate
        h               = encoder(obs);  h' = encoder(next_obs) without grad
        a'              = clip_noise(actor(h'), std(step), clip) ; y = r + discount * min_i Q_target_i(h', a')
        critic_loss     = mean over critics and batch of (Q_i(h, a) - y)^2       # RoboBase: averaged, not summed
                          -> AdamW step of critic AND encoder (the only loss that trains the encoder)
        actor_loss      = -mean(min_i Q_i(h.detach(), a~pi(h.detach())))         # encoder never sees actor gradients
        Q_target       <- Q_target + tau (Q - Q_target)

    Speed (same math as the reference formulation, measured with ``so101_bench.learner``):

    * The random shift is an integer gather of uint8 pixels with clamped row/column indices (= replicate padding),
      equal to DrQ-v2's bilinear ``grid_sample`` on float (whose sample points fall exactly on pixel centres) up to
      float rounding; ``test_agent`` checks it. 4x fewer bytes are moved and the result comes out channels-last.
    * Convolutions run channels-last (oneDNN's fast layout on CPU: forward+backward about 2.5x faster here).
    * uint8 -> float conversion happens once, in place; the next observation is encoded without autograd.
    * During the actor step the critic's parameters do not require grad, so no critic weight gradients are computed
      that the reference throws away.
    * Metrics are gathered in one device->host copy at the end of the update, the per-group Q and Monte-Carlo return
      sums of ``q_diagnostics`` (from the Q the critic loss computed anyway) with them: ``q_groups`` after each update.
    * ``so101_contract.cpu_allocator.configure_cpu_allocator()`` (the caller's choice, like torch.set_num_threads):
      glibc hands every tensor above its mmap threshold fresh pages from the OS and takes them back on free, so each
      update page-faults through ~1 GB of activations. Keeping freed memory in the heap made one CPU update about
      1.4x faster here.
    """

    def __init__(self, policy_config: PolicyConfig, agent_config: AgentConfig | None = None, device: Any = "cpu"):
        self.policy_config = policy_config
        self.config = agent_config or AgentConfig()
        self.device = torch.device(device)
        cfg = self.config
        with torch.random.fork_rng(devices=[]):  # seeded init without touching the caller's global RNG
            torch.manual_seed(cfg.seed)
            self.encoder = Encoder(policy_config)
            self.actor = Actor(policy_config)
            self.critic = Critic(policy_config, cfg.num_critics)
            self.critic_target = Critic(policy_config, cfg.num_critics)
        self.critic_target.load_state_dict(self.critic.state_dict())
        fmt = torch.channels_last if cfg.channels_last else torch.contiguous_format
        self.encoder.to(self.device, memory_format=fmt)
        for module in (self.actor, self.critic, self.critic_target):
            module.to(self.device)
        self.critic_target.requires_grad_(False)
        self.optimizers = {
            name: torch.optim.AdamW(getattr(self, name).parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
            for name in _OPTIMIZERS
        }
        self.update_generator = torch.Generator(self.device).manual_seed(cfg.seed + 1)
        self.act_generator = torch.Generator(self.device).manual_seed(cfg.seed + 2)
        self.num_updates = 0
        self._uses_state = policy_config.state_dim > 0
        # The last update's batch, per q_diagnostics group: (sum of Q, sum of Monte-Carlo returns, rows).
        self.q_groups: dict[str, tuple[float, float, int]] = {}

    # ------------------------------------------------------------------------------------------- forward passes
    def _autocast(self):
        if not self.config.mixed_precision:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=torch.bfloat16)

    def _encode(self, pixels: torch.Tensor, augment: bool) -> torch.Tensor:
        """uint8 (B, C, H, W) -> features (B, feature_dim); with the random shift when ``augment``."""
        pad = self.config.augmentation_pad
        if augment and pad > 0:
            pixels = shift_pixels(pixels, random_shifts(len(pixels), pad, self.update_generator, self.device), pad)
        with self._autocast():  # the pixel scaling inside is elementwise float32: autocast leaves it alone
            return self.encoder(pixels, self.config.channels_last)

    def _state(self, state: torch.Tensor) -> torch.Tensor | None:
        return state if self._uses_state else None

    def stddev(self, environment_steps: int) -> float:
        """The schedule's std at ``environment_steps``: exactly what the actor reads (exploration.stddev)."""
        return exploration.stddev(self.config.stddev_schedule, environment_steps)

    # -------------------------------------------------------------------------------------------------- update
    def update(self, batch: Any, environment_steps: int) -> dict[str, float]:
        """One DrQ-v2 update from a replay ``Batch`` (numpy or torch). Returns float metrics.

        ``environment_steps`` is the exploration schedule's step: the environment steps collected so far (the
        learner's committed training transitions), as drqv2 passes its global step, NOT the number of updates;
        the target and actor-loss noise then have the std the actor acts with at that step."""
        step = environment_steps
        b = self._batch_to_device(batch)
        features = self._encode(b["pixels"], augment=True)
        with torch.no_grad():
            next_features = self._encode(b["next_pixels"], augment=True)
        metrics, q = self._update_critic(features, b, next_features, step)
        groups = group_sums(q, b["mc_return"], b["intervention"], b["from_demo"])
        metrics.update(self._update_actor(features.detach(), b["state"], step))
        self._soft_update_target()
        self.num_updates += 1
        names = list(metrics)
        values = torch.cat([torch.stack([metrics[n].detach().float() for n in names]), groups.flatten()])
        values = values.cpu().tolist()  # the one sync
        scalars, sums = values[: len(names)], values[len(names) :]
        self.q_groups = {g: (sums[3 * i], sums[3 * i + 1], round(sums[3 * i + 2])) for i, g in enumerate(GROUPS)}
        return dict(zip(names, scalars, strict=True)) | {"actor_stddev": self.stddev(step)}

    def q_values(self, batch: Any) -> np.ndarray:
        """The critics' mean Q(h, a) on a batch's stored actions, without augmentation or gradient: (B,) float32,
        what the Q diagnostics compare with Monte-Carlo returns."""
        b = self._batch_to_device(batch)
        with torch.no_grad():
            features = self._encode(b["pixels"], augment=False)
            with self._autocast():
                q = self.critic(features, self._state(b["state"]), b["action"])
        return q.float().mean(0)[:, 0].cpu().numpy()

    def _batch_to_device(self, batch: Any) -> dict[str, torch.Tensor]:
        names = ("pixels", "state", "action", "reward", "discount", "next_pixels", "next_state")
        names += ("mc_return", "intervention", "from_demo")  # for q_diagnostics only
        out = {}
        for name in names:
            value = getattr(batch, name)
            tensor = torch.from_numpy(np.ascontiguousarray(value)) if isinstance(value, np.ndarray) else value
            out[name] = tensor.to(self.device, non_blocking=True)
        for name in ("state", "action", "reward", "discount", "next_state"):
            out[name] = out[name].float()
        return out

    def td_target(self, next_features: torch.Tensor, batch: dict[str, torch.Tensor], step: int) -> torch.Tensor:
        """y = reward + discount * min_i Q_target_i(h', a'), a' = clipped-noise sample of pi(h'); (B, 1) float32."""
        with torch.no_grad():
            next_state = self._state(batch["next_state"])
            with self._autocast():
                next_mean = self.actor(next_features, next_state).float()
            next_action = truncated_normal_sample(
                next_mean, self.stddev(step), self.config.stddev_clip, self.update_generator
            )
            with self._autocast():
                target_qs = self.critic_target(next_features, next_state, next_action)
            min_q = target_qs.float().min(dim=0).values  # (B, 1)
            return batch["reward"][:, None] + batch["discount"][:, None] * min_q

    def _update_critic(self, features, batch, next_features, step) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """Metrics, and the critics' mean Q on the stored actions per row (B,), detached."""
        target_q = self.td_target(next_features, batch, step)
        with self._autocast():
            qs = self.critic(features, self._state(batch["state"]), batch["action"])
        qs = qs.float()  # (num_critics, B, 1)
        critic_loss = (qs - target_q.unsqueeze(0)).pow(2).mean()  # averaged over critics and batch (RoboBase)
        for name in ("encoder", "critic"):
            self.optimizers[name].zero_grad(set_to_none=True)
        critic_loss.backward()
        for name in ("critic", "encoder"):
            self._clip(name)
            self.optimizers[name].step()
        metrics = {"critic_loss": critic_loss, "q_mean": qs.mean(), "target_q_mean": target_q.mean()}
        return metrics, qs.detach().mean(dim=0)[:, 0]

    def _update_actor(self, features: torch.Tensor, state: torch.Tensor, step: int) -> dict[str, torch.Tensor]:
        """Features come detached: the actor loss trains the actor only. The critic's weights are frozen for the
        backward pass (the reference computes their gradients and discards them at the next critic step)."""
        state = self._state(state)
        with self._autocast():
            mean = self.actor(features, state).float()
        action = truncated_normal_sample(mean, self.stddev(step), self.config.stddev_clip, self.update_generator)
        self.critic.requires_grad_(False)
        try:
            with self._autocast():
                qs = self.critic(features, state, action)
            actor_loss = -qs.float().min(dim=0).values.mean()
            self.optimizers["actor"].zero_grad(set_to_none=True)
            actor_loss.backward()
        finally:
            self.critic.requires_grad_(True)
        self._clip("actor")
        self.optimizers["actor"].step()
        return {"actor_loss": actor_loss, "actor_mean_abs": mean.detach().abs().mean()}

    def _clip(self, name: str) -> None:
        if self.config.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(getattr(self, name).parameters(), self.config.grad_clip)

    @torch.no_grad()
    def _soft_update_target(self) -> None:
        """target <- target + tau * (critic - target)."""
        target = list(self.critic_target.parameters())
        source = list(self.critic.parameters())
        torch._foreach_lerp_(target, source, self.config.critic_target_tau)

    # ----------------------------------------------------------------------------------------------------- acting
    @torch.no_grad()
    def act(self, pixels: Any, state: Any, step: int, eval_mode: bool) -> np.ndarray:
        """Action(s) in [-1, 1] for uint8 pixels (C, H, W) or (B, C, H, W) and state; numpy, same batch-ness.

        eval_mode: the mean action. Otherwise uniform random before ``num_explore_steps``, then the mean plus
        Gaussian noise of the scheduled std: exploration.act, the rule the actor's control step follows."""
        pixels = torch.as_tensor(np.asarray(pixels), device=self.device)
        single = pixels.dim() == 3
        pixels = pixels[None] if single else pixels
        state_t = None
        if self._uses_state:
            state_t = torch.as_tensor(np.asarray(state, np.float32), device=self.device).reshape(len(pixels), -1)
        action = (
            exploration.act(
                lambda: self.actor(self.encoder(pixels, self.config.channels_last), state_t),
                (len(pixels), self.policy_config.action_dim),
                self.config.stddev_schedule,
                step,
                self.config.num_explore_steps,
                eval_mode,
                self.act_generator,
            )
            .float()
            .cpu()
            .numpy()
        )
        return action[0] if single else action

    def policy(self, device: Any = "cpu") -> Policy:
        """A separate Policy (encoder + actor) holding a copy of the current weights, e.g. for publishing."""
        policy = Policy(self.policy_config)
        policy.encoder.load_state_dict(self.encoder.state_dict())
        policy.actor.load_state_dict(self.actor.state_dict())
        return policy.to(device).eval()

    # --------------------------------------------------------------------------------------------- checkpoints
    def weights(self) -> dict[str, torch.Tensor]:
        """Network tensors in the AGENT_FORMAT key layout (encoder.*, actor.actor_model.*, critic.qs.*,
        critic_target.qs.*), as ``agent_file.save_agent_weights`` takes them."""
        out = {}
        for name in ("encoder", "actor", "critic", "critic_target"):
            for key, value in getattr(self, name).state_dict().items():
                out[f"{name}.{key}"] = value.detach().contiguous()
        return out

    def load_weights(self, tensors: dict[str, torch.Tensor]) -> None:
        """Strictly load ``weights()``-layout tensors (e.g. an imported RoboBase checkpoint)."""
        for name in ("encoder", "actor", "critic", "critic_target"):
            prefix = f"{name}."
            part = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
            getattr(self, name).load_state_dict(part, strict=True)

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Everything to continue training bit for bit: weights, AdamW moments and steps, counters, RNG states.
        A flat dict of tensors (safetensors-ready; nothing pickled)."""
        out = {key: value.cpu() for key, value in self.weights().items()}
        for name, optimizer in self.optimizers.items():
            for index, param in enumerate(optimizer.param_groups[0]["params"]):
                for key, value in optimizer.state.get(param, {}).items():
                    out[f"optim.{name}.{index}.{key}"] = torch.as_tensor(value).detach().cpu().clone()
        out["counters.num_updates"] = torch.tensor(self.num_updates, dtype=torch.int64)
        out["rng.update"] = self.update_generator.get_state().clone()
        out["rng.act"] = self.act_generator.get_state().clone()
        return out

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        unknown = [k for k in state if not k.startswith((*_WEIGHT_PREFIXES, "optim.", "counters.", "rng."))]
        if unknown:
            raise ValueError(f"DrQV2Agent.load_state_dict: unknown keys {unknown[:5]}")
        self.load_weights({k: v for k, v in state.items() if k.startswith(_WEIGHT_PREFIXES)})
        for name, optimizer in self.optimizers.items():
            optimizer.state.clear()
            for index, param in enumerate(optimizer.param_groups[0]["params"]):
                prefix = f"optim.{name}.{index}."
                entry = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
                if entry:
                    step = entry.pop("step")
                    moments = {k: v.to(param.device, param.dtype).clone() for k, v in entry.items()}
                    optimizer.state[param] = {"step": step.float().clone(), **moments}
        self.num_updates = int(state["counters.num_updates"])
        self.update_generator.set_state(state["rng.update"].clone())
        self.act_generator.set_state(state["rng.act"].clone())
