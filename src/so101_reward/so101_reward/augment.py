"""Training-time augmentation of wrist frames: colour, sharpness and a small shift, batched in torch.

Room light changes over a session and the classifier must not learn it, hence the wide colour ranges of
``AugmentConfig``; the shift (DrQ's pad-and-crop, +-4 px) covers the camera sitting a little differently on the wrist
after a re-mount. Each sample draws its own factors and the colour operations run in a random order per batch.
Input and output: uint8 (B, 3, H, W) on any device; the network does its own scaling.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

LUMA = (0.299, 0.587, 0.114)  # ITU-R 601 weights, as PIL and torchvision use for grayscale


@dataclass(frozen=True)
class AugmentConfig:
    brightness: tuple[float, float] = (0.4, 1.6)
    contrast: tuple[float, float] = (0.7, 1.3)
    saturation: tuple[float, float] = (0.5, 1.5)
    hue: float = 0.1  # fraction of a full turn, +-
    sharpness: tuple[float, float] = (0.5, 2.0)
    shift: int = 4  # px, +-

    @classmethod
    def none(cls) -> AugmentConfig:
        return cls((1.0, 1.0), (1.0, 1.0), (1.0, 1.0), 0.0, (1.0, 1.0), 0)


def _factors(batch: int, bounds: tuple[float, float], device, generator) -> torch.Tensor:
    low, high = bounds
    return (low + (high - low) * torch.rand(batch, 1, 1, 1, device=device, generator=generator)).float()


def _gray(x: torch.Tensor) -> torch.Tensor:
    r, g, b = LUMA
    return r * x[:, 0:1] + g * x[:, 1:2] + b * x[:, 2:3]


def adjust_brightness(x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    return (x * factor).clamp(0.0, 1.0)


def adjust_contrast(x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    mean = _gray(x).mean(dim=(2, 3), keepdim=True)
    return (mean + factor * (x - mean)).clamp(0.0, 1.0)


def adjust_saturation(x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    gray = _gray(x)
    return (gray + factor * (x - gray)).clamp(0.0, 1.0)


def adjust_hue(x: torch.Tensor, turns: torch.Tensor) -> torch.Tensor:
    """Rotate the chroma plane (YIQ) by 2*pi*turns: a linear hue rotation that keeps luma. Positive turns go
    red -> green -> blue, the direction of HSV hue (torchvision's adjust_hue)."""
    to_yiq = torch.tensor(
        [[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]], device=x.device, dtype=x.dtype
    )
    from_yiq = torch.linalg.inv(to_yiq)
    angle = 2.0 * math.pi * turns.view(-1)
    cos, sin = torch.cos(angle), torch.sin(angle)
    rotation = torch.zeros(len(angle), 3, 3, device=x.device, dtype=x.dtype)
    rotation[:, 0, 0] = 1.0
    rotation[:, 1, 1], rotation[:, 1, 2] = cos, sin
    rotation[:, 2, 1], rotation[:, 2, 2] = -sin, cos
    matrix = from_yiq @ rotation @ to_yiq  # (B, 3, 3)
    return torch.einsum("bij,bjhw->bihw", matrix, x).clamp(0.0, 1.0)


def adjust_sharpness(x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """Blend with PIL's smoothing kernel [[1,1,1],[1,5,1],[1,1,1]]/13: factor 0 is blurred, 1 the original, 2
    sharpened; the one-pixel border stays as it is, as in PIL. The 3x3 box sum is two separable slice sums: on a
    CPU ~10x faster than a depthwise convolution or avg_pool2d."""
    rows = x[..., :-2, :] + x[..., 1:-1, :] + x[..., 2:, :]
    box_sum = rows[..., :-2] + rows[..., 1:-1] + rows[..., 2:]
    blurred = x.clone()
    blurred[..., 1:-1, 1:-1] = (box_sum + 4.0 * x[..., 1:-1, 1:-1]) / 13.0
    return (blurred + factor * (x - blurred)).clamp(0.0, 1.0)


def random_shift(x: torch.Tensor, pad: int, generator=None) -> torch.Tensor:
    """Each sample shifted by an integer offset in [-pad, pad] per axis, edges replicated (DrQ's augmentation)."""
    if pad <= 0:
        return x
    height, width = x.shape[-2:]
    padded = F.pad(x, (pad, pad, pad, pad), mode="replicate")
    offsets = torch.randint(0, 2 * pad + 1, (len(x), 2), generator=generator).tolist()
    # One slice copy per sample: cheaper than a gather over every pixel for batches of this size.
    return torch.stack([padded[i, :, dy : dy + height, dx : dx + width] for i, (dy, dx) in enumerate(offsets)])


def augment(frames: torch.Tensor, config: AugmentConfig = AugmentConfig(), generator=None) -> torch.Tensor:
    """uint8 (B, 3, H, W) -> augmented uint8 (B, 3, H, W)."""
    if frames.dtype != torch.uint8 or frames.ndim != 4 or frames.shape[1] != 3:
        raise ValueError(f"augment expects uint8 (B, 3, H, W), got {tuple(frames.shape)} {frames.dtype}")
    x = frames.float() / 255.0
    batch, device = x.shape[0], x.device
    ops = [
        lambda t: adjust_brightness(t, _factors(batch, config.brightness, device, generator)),
        lambda t: adjust_contrast(t, _factors(batch, config.contrast, device, generator)),
        lambda t: adjust_saturation(t, _factors(batch, config.saturation, device, generator)),
        lambda t: adjust_hue(t, _factors(batch, (-config.hue, config.hue), device, generator)),
        lambda t: adjust_sharpness(t, _factors(batch, config.sharpness, device, generator)),
    ]
    for index in torch.randperm(len(ops), generator=generator).tolist():
        x = ops[index](x)
    x = random_shift(x, config.shift, generator)
    return (x * 255.0).round().to(torch.uint8)
