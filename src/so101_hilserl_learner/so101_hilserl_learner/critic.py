"""The critics: trained only by the learner, so they live here (the actor package holds what it runs).

Module names mirror RoboBase's state-dict keys (critic.qs.{0,1}.*), built from the same bottleneck MLP as the
actor (so101_hilserl_core.policy.BottleneckMLP), so importing a RoboBase snapshot is a key check, not a rewrite.

    features, state, action --Critic--> (num_critics, B, 1) Q values     # each head with its own bottlenecks
"""

from __future__ import annotations

import torch
from torch import nn

from so101_hilserl_core.policy import BottleneckMLP, PolicyConfig, init_weights
from so101_hilserl_core.policy_io import module_shapes

# The key prefixes of an agent file's critic tensors (the rest is the policy: encoder.*, actor.*).
CRITIC_PREFIXES = ("critic.", "critic_target.")


class Critic(nn.Module):
    def __init__(self, config: PolicyConfig, num_critics: int = 2):
        super().__init__()
        self.qs = nn.ModuleList(
            [BottleneckMLP(config, extra_dim=config.action_dim, out_dim=1) for _ in range(num_critics)]
        )
        self.apply(init_weights)

    def forward(self, features: torch.Tensor, state: torch.Tensor | None, action: torch.Tensor) -> torch.Tensor:
        """(num_critics, B, 1) Q values."""
        return torch.stack([q(features, state, action) for q in self.qs])


def expected_critic_shapes(config: PolicyConfig, num_critics: int, prefix: str) -> dict[str, tuple[int, ...]]:
    """Every key of Critic(config, num_critics).state_dict() under ``prefix``, with its shape (meta device)."""
    with torch.device("meta"):
        return module_shapes(Critic(config, num_critics=num_critics), prefix)
