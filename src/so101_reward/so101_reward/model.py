"""The reward classifier's network: wrist frame (uint8, preprocessed) -> logit of P(success).

    frame uint8 (B, 3, 84, 84) --backbone--> feature map (B, C, h, w) --SpatialEmbeddings--> (B, C*F)
        --head: Linear -> LayerNorm -> ReLU -> Dropout -> Linear--> logit (B,)

The backbone is ``small_cnn`` (default, trained from scratch, about a millisecond per frame on one CPU thread) or a
frozen ``resnet10``/``resnet18`` loaded from a local weights file. Pixels are scaled here and only here (x/255 - 0.5,
or ImageNet statistics for a pretrained backbone), as the DrQ-v2 encoder does: dataset, node and preview feed uint8.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import torch
from torch import nn

from so101_reward.model_config import RewardModelConfig

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
RESNET_BLOCKS = {"resnet10": (1, 1, 1, 1), "resnet18": (2, 2, 2, 2)}


class ModelWeightsError(ValueError):
    pass


class SmallCNN(nn.Module):
    """One 3x3 stride-2 conv + ReLU per entry of ``channels``: 84 -> 42 -> 21 -> 11 with the default three."""

    def __init__(self, channels: tuple[int, ...]):
        super().__init__()
        layers, width = [], 3
        for out in channels:
            layers += [nn.Conv2d(width, out, 3, stride=2, padding=1), nn.ReLU(inplace=True)]
            width = out
        self.convs = nn.Sequential(*layers)
        self.out_channels = width

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.convs(pixels / 255.0 - 0.5)


class BasicBlock(nn.Module):
    def __init__(self, inplanes: int, planes: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = None
        if stride != 1 or inplanes != planes:
            self.downsample = nn.Sequential(nn.Conv2d(inplanes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        identity = x if self.downsample is None else self.downsample(x)
        return torch.relu(out + identity)


class ResNetBackbone(nn.Module):
    """torchvision's ResNet up to layer4 (same state-dict keys, so its exported weights load as they are)."""

    def __init__(self, blocks: tuple[int, int, int, int]):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        inplanes = 64
        for index, (planes, count) in enumerate(zip((64, 128, 256, 512), blocks, strict=True), start=1):
            stride = 1 if index == 1 else 2
            layer = [BasicBlock(inplanes, planes, stride)] + [BasicBlock(planes, planes, 1) for _ in range(count - 1)]
            setattr(self, f"layer{index}", nn.Sequential(*layer))
            inplanes = planes
        self.out_channels = 512
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1) * 255.0)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1) * 255.0)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        x = (pixels - self.mean) / self.std
        x = self.maxpool(torch.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))


class SpatialEmbeddings(nn.Module):
    """F learned weightings of each channel's h x w map: (B, C, h, w) -> (B, C * F).

    Where the cube sits in the wrist image is what tells success from a near miss, so the features keep their layout
    (LeRobot's SpatialLearnedEmbeddings) instead of averaging the position away.
    """

    def __init__(self, channels: int, height: int, width: int, features: int):
        super().__init__()
        self.kernel = nn.Parameter(torch.empty(channels, height, width, features))
        nn.init.kaiming_normal_(self.kernel, mode="fan_in", nonlinearity="linear")

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return torch.einsum("bchw,chwf->bcf", features, self.kernel).flatten(1)


class RewardNet(nn.Module):
    """uint8 frames (B, 3, S, S) -> success logits (B,)."""

    def __init__(self, config: RewardModelConfig):
        super().__init__()
        size = config.preprocessing.output_size
        if config.architecture == "small_cnn":
            self.backbone = SmallCNN(config.channels)
        else:
            self.backbone = ResNetBackbone(RESNET_BLOCKS[config.architecture])
        with torch.no_grad():
            _, channels, height, width = self.backbone(torch.zeros(1, 3, size, size)).shape
        self.spatial = SpatialEmbeddings(channels, height, width, config.spatial_features)
        self.head = nn.Sequential(
            nn.Linear(channels * config.spatial_features, config.hidden),
            nn.LayerNorm(config.hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(config.dropout),
            nn.Linear(config.hidden, 1),
        )
        self.frozen_backbone = config.architecture != "small_cnn"

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        features = self.backbone(pixels.float())
        return self.head(self.spatial(features)).squeeze(-1)

    def train(self, mode: bool = True) -> RewardNet:
        super().train(mode)
        if self.frozen_backbone:
            self.backbone.eval()  # frozen BatchNorm statistics stay the pretrained ones
        return self

    def trainable_parameters(self) -> list[nn.Parameter]:
        modules = [self.spatial, self.head] if self.frozen_backbone else [self]
        return [p for m in modules for p in m.parameters()]


def _first_line(err: BaseException) -> str:
    """A reader's error in one line (torch's unpickling refusals span a paragraph)."""
    return next((line.strip() for line in str(err).splitlines() if line.strip()), type(err).__name__)


def load_backbone_weights(net: RewardNet, path: Path) -> None:
    """Load a ResNet backbone from a local file (safetensors, or a torch state dict read with weights_only=True so
    nothing in the file is executed) and freeze it. Keys may carry torchvision's full-model names (fc.* ignored)."""
    if not net.frozen_backbone:
        raise ModelWeightsError("backbone weights only apply to the resnet10/resnet18 architectures")
    path = Path(path)
    if not path.is_file():
        raise ModelWeightsError(f"{path}: no such backbone weights file")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            state = load_file(str(path))
        except Exception as err:  # the Rust reader's own error type: a cut-short or foreign file
            raise ModelWeightsError(f"{path}: not a readable safetensors file ({_first_line(err)})") from None
    else:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError:  # torch's text suggests weights_only=False: never, for a file we do not know
            raise ModelWeightsError(
                f"{path}: not a plain tensor state dict (torch's weights-only reader refused it; nothing in it was "
                "run); save torchvision's resnet state_dict() as .safetensors or .pth"
            ) from None
        except Exception as err:  # a damaged or foreign file, reported with the file name
            raise ModelWeightsError(f"{path}: not a plain tensor state dict ({_first_line(err)})") from None
        if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
            state = state["state_dict"]
    if not isinstance(state, dict):
        raise ModelWeightsError(f"{path}: expected a dict of tensors, got {type(state).__name__}")
    state = {k.removeprefix("backbone.").removeprefix("module."): v for k, v in state.items()}
    state = {k: v for k, v in state.items() if not k.startswith("fc.")}
    expected = {k for k in net.backbone.state_dict() if k not in ("mean", "std")}
    missing, unexpected = sorted(expected - set(state)), sorted(set(state) - expected)
    if missing or unexpected:
        raise ModelWeightsError(
            f"{path}: does not match the {type(net.backbone).__name__} layout: missing {missing[:5]}, "
            f"unexpected {unexpected[:5]} (export torchvision's resnet18/resnet10 state_dict)"
        )
    try:
        net.backbone.load_state_dict(state, strict=False)
    except RuntimeError as err:
        raise ModelWeightsError(f"{path}: tensor shapes do not match the backbone ({err})") from err
    for parameter in net.backbone.parameters():
        parameter.requires_grad_(False)
