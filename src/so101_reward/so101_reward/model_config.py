"""The JSON that travels with every reward model: architecture, preprocessing and decision threshold.

A model is only valid with the preprocessing it was trained with: the reward node refuses a model whose
preprocessing differs from the actor's, instead of classifying frames it was never trained on.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from so101_driver.vision.preprocessing import ImagePreprocessing, PreprocessingError

FORMAT_VERSION = 1
ARCHITECTURES = ("small_cnn", "resnet10", "resnet18")


class RewardModelConfigError(ValueError):
    pass


@dataclass(frozen=True)
class RewardModelConfig:
    architecture: str = "small_cnn"  # small_cnn (trained from scratch) or resnet10/resnet18 (frozen backbone)
    preprocessing: ImagePreprocessing = field(default_factory=ImagePreprocessing)
    threshold: float = 0.7  # P(success) at or above which a frame counts as success
    channels: tuple[int, ...] = (16, 32, 64)  # small_cnn: one stride-2 stage per entry
    spatial_features: int = 8  # learned spatial embeddings over the last feature map (LeRobot's classifier: 8)
    hidden: int = 128  # width of the head's hidden layer
    dropout: float = 0.3

    def __post_init__(self) -> None:
        if not 0.0 < self.threshold < 1.0:
            raise RewardModelConfigError(f"threshold must be in (0, 1), got {self.threshold}")
        if self.architecture not in ARCHITECTURES:
            raise RewardModelConfigError(f"architecture must be one of {ARCHITECTURES}, got {self.architecture!r}")
        if not self.channels or min(self.channels) <= 0:
            raise RewardModelConfigError(f"channels must be positive widths, got {list(self.channels)}")
        if self.spatial_features <= 0 or self.hidden <= 0:
            raise RewardModelConfigError(
                f"spatial_features and hidden must be positive, got {self.spatial_features}, {self.hidden}"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise RewardModelConfigError(f"dropout must be in [0, 1), got {self.dropout}")

    def to_dict(self) -> dict:
        return {
            "format_version": FORMAT_VERSION,
            "architecture": self.architecture,
            "preprocessing": self.preprocessing.to_dict(),
            "threshold": self.threshold,
            "channels": list(self.channels),
            "spatial_features": self.spatial_features,
            "hidden": self.hidden,
            "dropout": self.dropout,
        }

    @classmethod
    def from_dict(cls, data: dict, source: str = "config") -> RewardModelConfig:
        version = data.get("format_version")
        if version != FORMAT_VERSION:
            raise RewardModelConfigError(f"{source}: format_version {version!r} is not {FORMAT_VERSION}")
        try:
            preprocessing = ImagePreprocessing.from_dict(data["preprocessing"])
            return cls(
                architecture=str(data["architecture"]),
                preprocessing=preprocessing,
                threshold=float(data["threshold"]),
                channels=tuple(int(c) for c in data.get("channels", cls.channels)),
                spatial_features=int(data.get("spatial_features", cls.spatial_features)),
                hidden=int(data.get("hidden", cls.hidden)),
                dropout=float(data.get("dropout", cls.dropout)),
            )
        except KeyError as err:
            raise RewardModelConfigError(f"{source}: missing field {err.args[0]!r}") from err
        except (PreprocessingError, TypeError, ValueError) as err:
            raise RewardModelConfigError(f"{source}: {err}") from err

    def save(self, path: Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n")

    @classmethod
    def load(cls, path: Path) -> RewardModelConfig:
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError as err:
            raise RewardModelConfigError(f"{path}: no such model config") from err
        except json.JSONDecodeError as err:
            raise RewardModelConfigError(f"{path}: not valid JSON ({err})") from err
        return cls.from_dict(data, source=str(path))


def check_same_preprocessing(model: ImagePreprocessing, actor: ImagePreprocessing) -> None:
    """Raise RewardModelConfigError naming every field in which the model's preprocessing differs from the actor's."""
    model_fields, actor_fields = model.to_dict(), actor.to_dict()
    diff = [
        f"{k}: model {model_fields[k]} vs actor {actor_fields[k]}"
        for k in model_fields
        if model_fields[k] != actor_fields[k]
    ]
    if diff:
        raise RewardModelConfigError(
            "the reward model was trained with a different image preprocessing than the actor uses ("
            + "; ".join(diff)
            + "). Retrain the classifier with the actor's preprocessing, or set the actor's preprocessing "
            "parameters to the model's."
        )
