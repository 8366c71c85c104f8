"""The DrQ-v2 networks as RoboBase builds them (the source of the sim-pretrained checkpoints).

What the actor runs (encoder + actor), used by the actor for inference and by the learner for training (the critics
are so101_hilserl_learner.critic). Module names mirror RoboBase's state-dict keys (encoder.convs_per_cam.0.*,
*.input_preprocess_modules.*, main_mlp, out_mlp), so importing a RoboBase snapshot is a key check, not a rewrite.

    pixels uint8 (B, 3*frames, 84, 84) --Encoder--> features (B, 39200)       # scale_pixels: x/255 - 0.5, only here
    features, state (B, 18*frames) --Actor--> mean action in [-1, 1]^4        # separate bottlenecks per modality
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from so101_hilserl_core.semantics import LEGACY_SEMANTICS, SEMANTIC_FIELDS, check_semantic


@dataclass(frozen=True)
class PolicyConfig:
    """Network sizes, and what the policy's action and state mean (its semantics; see semantics.py).

    Size defaults are RoboBase's DrQ-v2 as used for the SO-101 sim checkpoints; semantic defaults are the project's
    own policies (delta gripper, re-read EE target, home-relative rotation vector). Only the sizes decide whether
    weights fit a network (``network_fields``); the semantics decide how the actor applies its action and builds
    its state, so they come from the policy's file and are never overridden by a node's defaults.
    """

    frame_stack: int = 3
    image_size: int = 84
    image_channels: int = 3  # per frame (RGB)
    state_dim: int = 18  # per frame; 0 = pixels only (the original facebookresearch/drqv2)
    action_dim: int = 4
    encoder_channels: int = 32
    encoder_convs: int = 4  # one stride-2 conv, then stride-1 convs, all 3x3, no padding
    bottleneck: int = 50
    hidden: tuple[int, ...] = field(default=(256, 256))
    gripper_action: str = "delta"  # "delta" | "absolute"
    ee_target: str = "reread"  # "reread" | "accumulate"
    orientation: str = "home_rotvec"  # "home_rotvec" | "euler_zyx"

    def __post_init__(self) -> None:
        for name in SEMANTIC_FIELDS:
            check_semantic(name, getattr(self, name))
        if self.image_size < 2 * self.encoder_convs + 4:
            raise ValueError(f"image_size {self.image_size} is too small for {self.encoder_convs} convolutions")
        for name in ("frame_stack", "image_channels", "action_dim", "encoder_channels", "encoder_convs", "bottleneck"):
            if getattr(self, name) <= 0:
                raise ValueError(f"PolicyConfig.{name} must be positive, got {getattr(self, name)}")
        object.__setattr__(self, "hidden", tuple(int(h) for h in self.hidden))

    @classmethod
    def network_fields(cls) -> tuple[str, ...]:
        """The fields that decide tensor shapes (every field but the semantics)."""
        return tuple(name for name in cls.__dataclass_fields__ if name not in SEMANTIC_FIELDS)

    def semantics(self) -> dict[str, str]:
        """{"gripper_action": ..., "ee_target": ..., "orientation": ...}"""
        return {name: getattr(self, name) for name in SEMANTIC_FIELDS}

    @property
    def pixel_channels(self) -> int:
        return self.image_channels * self.frame_stack

    @property
    def stacked_state_dim(self) -> int:
        return self.state_dim * self.frame_stack

    @property
    def feature_map_size(self) -> int:
        size = (self.image_size - 3) // 2 + 1  # stride-2 conv
        return size - 2 * (self.encoder_convs - 1)

    @property
    def feature_dim(self) -> int:
        return self.encoder_channels * self.feature_map_size**2

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str, missing_semantics: dict[str, str] | None = None) -> PolicyConfig:
        """Parse to_json output. A semantic field the JSON lacks (written before semantics were recorded) takes
        its value from ``missing_semantics``, by default LEGACY_SEMANTICS: how the project then applied every policy.
        """
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError("PolicyConfig JSON must be an object")
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown PolicyConfig field(s): {sorted(unknown)}")
        fill = LEGACY_SEMANTICS if missing_semantics is None else missing_semantics
        return cls(**{**{name: fill[name] for name in SEMANTIC_FIELDS if name not in data}, **data})


def init_weights(module: nn.Module) -> None:
    """RoboBase/DrQ-v2 initialisation: orthogonal linear layers, orthogonal convs with ReLU gain, zero biases."""
    if isinstance(module, nn.Linear):
        nn.init.orthogonal_(module.weight.data)
        if module.bias is not None:
            module.bias.data.fill_(0.0)
    elif isinstance(module, nn.Conv2d):
        nn.init.orthogonal_(module.weight.data, nn.init.calculate_gain("relu"))
        if module.bias is not None:
            module.bias.data.fill_(0.0)
    elif isinstance(module, nn.LayerNorm):
        module.weight.data.fill_(1.0)
        module.bias.data.fill_(0.0)


def scale_pixels(pixels: torch.Tensor, channels_last: bool = False) -> torch.Tensor:
    """The one pixel scaling (uint8 everywhere, the encoder alone scales): 0..255 -> float32 x/255 - 0.5.

    Always a new tensor (``copy=True``: float input is never scaled in place), converted once and scaled in place,
    in the convolutions' memory format (channels-last is oneDNN's fast layout on CPU)."""
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    return pixels.to(dtype=torch.float32, memory_format=fmt, copy=True).div_(255.0).sub_(0.5)


class Encoder(nn.Module):
    def __init__(self, config: PolicyConfig):
        super().__init__()
        layers: list[nn.Module] = []
        in_channels = config.pixel_channels
        for index in range(config.encoder_convs):
            stride = 2 if index == 0 else 1
            # Conv, norm (Identity, as RoboBase's default), activation: keeps RoboBase's key indices 0, 3, 6, 9.
            layers += [nn.Conv2d(in_channels, config.encoder_channels, 3, stride=stride), nn.Identity(), nn.ReLU()]
            in_channels = config.encoder_channels
        self.convs_per_cam = nn.ModuleList([nn.Sequential(*layers)])
        self.apply(init_weights)

    def forward(self, pixels: torch.Tensor, channels_last: bool = False) -> torch.Tensor:
        """uint8 or float pixels in 0..255, (B, C, H, W) -> (B, feature_dim). ``channels_last``: the memory format
        the convolutions run in (the learner's choice, see scale_pixels)."""
        return self.convs_per_cam[0](scale_pixels(pixels, channels_last)).flatten(1)


def _bottleneck(in_dim: int, out_dim: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(in_dim, out_dim), nn.LayerNorm(out_dim), nn.Tanh())


class BottleneckMLP(nn.Module):
    """Per-modality bottlenecks (Linear, LayerNorm, Tanh), concatenated (+ extra inputs such as the action), then
    an MLP of Linear, Identity, ReLU layers (no LayerNorm there: it saturated the actions)."""

    def __init__(self, config: PolicyConfig, extra_dim: int, out_dim: int):
        super().__init__()
        modules = {"fused_view_feats": _bottleneck(config.feature_dim, config.bottleneck)}
        if config.state_dim > 0:
            modules["low_dim_obs"] = _bottleneck(config.stacked_state_dim, config.bottleneck)
        self.input_preprocess_modules = nn.ModuleDict(modules)
        layers: list[nn.Module] = []
        width = config.bottleneck * len(modules) + extra_dim
        for hidden in config.hidden:
            layers += [nn.Linear(width, hidden), nn.Identity(), nn.ReLU()]
            width = hidden
        self.main_mlp = nn.Sequential(*layers)
        self.out_mlp = nn.Sequential(nn.Linear(width, out_dim))

    def forward(self, features: torch.Tensor, state: torch.Tensor | None, extra: torch.Tensor | None = None):
        parts = [self.input_preprocess_modules["fused_view_feats"](features)]
        if "low_dim_obs" in self.input_preprocess_modules:
            parts.append(self.input_preprocess_modules["low_dim_obs"](state))
        if extra is not None:
            parts.append(extra)
        return self.out_mlp(self.main_mlp(torch.cat(parts, dim=-1)))


class Actor(nn.Module):
    def __init__(self, config: PolicyConfig):
        super().__init__()
        self.actor_model = BottleneckMLP(config, extra_dim=0, out_dim=config.action_dim)
        self.apply(init_weights)

    def forward(self, features: torch.Tensor, state: torch.Tensor | None) -> torch.Tensor:
        """The mean action, tanh-squashed into [-1, 1]."""
        return torch.tanh(self.actor_model(features, state))


class Policy(nn.Module):
    """What the actor runs: encoder + actor. Its state dict is what the learner publishes."""

    def __init__(self, config: PolicyConfig):
        super().__init__()
        self.config = config
        self.encoder = Encoder(config)
        self.actor = Actor(config)

    def forward(self, pixels: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        """Mean action; ``state`` is ignored when the network has no state input (pass zeros then)."""
        return self.actor(self.encoder(pixels), state if self.config.state_dim > 0 else None)

    @torch.no_grad()
    def act(self, pixels: torch.Tensor, state: torch.Tensor | None) -> torch.Tensor:
        return self.actor(self.encoder(pixels), state if self.config.state_dim > 0 else None)

    def traced(self) -> torch.jit.ScriptModule:
        """A TorchScript trace for the control loop: the whole forward runs in C++ with the GIL released once,
        instead of once per layer (with busy ROS callback threads that cut inference from ~30 to ~3 ms). It shares
        this module's parameters, so loading new weights into this module updates the trace too."""
        pixels = torch.zeros(
            1, self.config.pixel_channels, self.config.image_size, self.config.image_size, dtype=torch.uint8
        )
        state = torch.zeros(1, max(self.config.stacked_state_dim, 1))
        with torch.no_grad():
            return torch.jit.trace(self.eval(), (pixels, state), check_trace=False)


def parameter_count(module: nn.Module) -> int:
    return sum(math.prod(p.shape) for p in module.parameters())
