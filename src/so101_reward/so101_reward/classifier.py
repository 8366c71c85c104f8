"""A trained reward model on disk and in use: ``model.safetensors`` + ``model.json`` in one directory.

    classifier = RewardClassifier.load("runs/reward/model")      # the directory, or either of its two files
    p = classifier.probability_of_image(raw_640x480_rgb)          # preprocess + forward, one frame
    ps = classifier.probabilities(frames_uint8_nhwc_84)           # already preprocessed frames, a batch

Loading reads tensors with safetensors and the config as JSON: nothing in a model directory is ever executed.
``model_id`` names the model in every reward/signal (directory name and a checksum prefix of the weights).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from so101_contract.files import atomic_write
from so101_reward.model import RewardNet
from so101_reward.model_config import RewardModelConfig, RewardModelConfigError

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "model.json"


class RewardModelError(RewardModelConfigError):
    pass


def model_directory(path: Path | str) -> Path:
    """The model directory from the directory itself or either of its files."""
    path = Path(path)
    directory = path.parent if path.name in (WEIGHTS_FILE, CONFIG_FILE) else path
    for name in (WEIGHTS_FILE, CONFIG_FILE):
        if not (directory / name).is_file():
            raise RewardModelError(
                f"{directory}: no {name} here; a reward model directory holds {WEIGHTS_FILE} and {CONFIG_FILE} "
                "(written by `python -m so101_reward.train`)"
            )
    return directory


class RewardClassifier:
    def __init__(self, config: RewardModelConfig, net: RewardNet | None = None, model_id: str = "untrained"):
        self.config = config
        self.net = (net or RewardNet(config)).eval()
        self.model_id = model_id
        self.threshold = config.threshold

    @classmethod
    def load(cls, path: Path | str, device: str = "cpu") -> RewardClassifier:
        directory = model_directory(path)
        config = RewardModelConfig.load(directory / CONFIG_FILE)
        net = RewardNet(config)
        weights = directory / WEIGHTS_FILE
        try:
            state = load_file(str(weights))
        except Exception as err:  # safetensors raises several types for a damaged file
            raise RewardModelError(f"{weights}: not a readable safetensors file ({err})") from err
        expected = net.state_dict()
        missing, unexpected = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
        if missing or unexpected:
            raise RewardModelError(
                f"{weights}: tensors do not match {CONFIG_FILE}'s {config.architecture} "
                f"(missing {missing[:5]}, unexpected {unexpected[:5]})"
            )
        bad_shapes = [k for k in expected if tuple(expected[k].shape) != tuple(state[k].shape)]
        if bad_shapes:
            raise RewardModelError(f"{weights}: tensor shapes differ from {CONFIG_FILE} for {bad_shapes[:5]}")
        net.load_state_dict(state)
        digest = hashlib.sha256(weights.read_bytes()).hexdigest()[:12]
        classifier = cls(config, net, model_id=f"{directory.name}:{digest}")
        return classifier.to(device)

    def to(self, device: str) -> RewardClassifier:
        self.net.to(device)
        return self

    @property
    def device(self) -> torch.device:
        return next(self.net.parameters()).device

    def save(self, directory: Path | str) -> Path:
        """Write both files atomically (temporary file, fsync, rename): a crash leaves the old model or the new."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().cpu().contiguous() for k, v in self.net.state_dict().items()}
        atomic_write(directory / WEIGHTS_FILE, lambda tmp: save_file(state, tmp))
        atomic_write(directory / CONFIG_FILE, lambda tmp: self.config.save(Path(tmp)))
        return directory

    @torch.inference_mode()
    def logits(self, frames: np.ndarray, batch_size: int = 256) -> np.ndarray:
        frames = self._check_frames(frames)
        out = []
        for start in range(0, len(frames), batch_size):
            batch = torch.from_numpy(frames[start : start + batch_size]).to(self.device).permute(0, 3, 1, 2)
            out.append(self.net(batch).float().cpu().numpy())
        return np.concatenate(out) if out else np.zeros(0, dtype=np.float32)

    def probabilities(self, frames: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """P(success) of preprocessed frames, (N, S, S, 3) uint8 RGB -> (N,) float32."""
        return (1.0 / (1.0 + np.exp(-self.logits(frames, batch_size)))).astype(np.float32)

    def probability_of_image(self, image: np.ndarray, encoding: str = "rgb8") -> float:
        """P(success) of one raw camera frame: the project's preprocessing, then the network."""
        frame = self.config.preprocessing.apply(image, encoding)
        return float(self.probabilities(frame[None])[0])

    def _check_frames(self, frames: np.ndarray) -> np.ndarray:
        size = self.config.preprocessing.output_size
        frames = np.asarray(frames)
        if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[1:] != (size, size, 3):
            raise RewardModelError(
                f"expected preprocessed frames (N, {size}, {size}, 3) uint8, got {frames.shape} {frames.dtype}: "
                "apply the model's preprocessing (config.preprocessing.apply) to raw camera frames first"
            )
        return np.ascontiguousarray(frames)
