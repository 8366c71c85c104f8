"""Sizes of the simulated HIL graph for the machine it runs on: the full networks and renders with a GPU, and without
one the CPU size that ``make bench-hil`` measures on 2 cores. One definition, used by the runner (``make sim``) and
by the benchmark, written into the graph's parameter file on top of config/sim.yaml.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from so101_bringup.graph import config_path
from so101_driver.sim.world import SimConfig
from so101_hilserl_learner.pretrain import PretrainConfig
from so101_hilserl_learner.replay import ReplayConfig

PROFILE_CHOICES = ("auto", "cpu", "full")


@dataclass(frozen=True)
class SimProfile:
    """What differs from config/sim.yaml for one machine size."""

    name: str
    description: str
    stage: int | None = None  # curriculum stage of the episodes (None: sim.yaml's)
    network: dict = field(default_factory=dict)  # PolicyConfig size overrides (actor, learner, pretraining)
    # wrist render (px); the policy sees its centre square at image_size
    camera: tuple[int, int] = (SimConfig.camera_width, SimConfig.camera_height)
    batch_size: int = ReplayConfig.batch_size
    pretrain_steps: int = 0  # a weak start pretrained in the Gymnasium task first (0: none)
    evaluation_every_episodes: int | None = None  # None: sim.yaml's
    warmup_transitions: int | None = None  # None: sim.yaml's

    def pretrain_command(self, out: Path, seed: int, device: str = "cpu", eval_episodes: int = 50) -> list[str]:
        """The pretraining run (so101_hilserl_learner.pretrain) of this profile's weak start, stopped early."""
        starts = max(100, min(1000, self.pretrain_steps // 2))
        cmd = ["-m", "so101_hilserl_learner.pretrain", "--out", str(out), "--seed", str(seed), "--device", device]
        cmd += ["--stage", str(self.stage if self.stage is not None else 0), "--steps", str(self.pretrain_steps)]
        cmd += [
            "--camera",
            f"{self.camera[0]}x{self.camera[1]}",
            "--batch-size",
            str(self.batch_size),
            "--utd-ratio",
            "1",
        ]
        cmd += ["--warmup-transitions", str(starts), "--num-explore-steps", str(starts)]
        names = {"hidden": "--hidden", "encoder_channels": "--encoder-channels", "bottleneck": "--bottleneck",
                 "image_size": "--image-size"}  # fmt: skip
        for key, value in self.network.items():
            cmd += [names[key], ",".join(map(str, value)) if isinstance(value, list | tuple) else str(value)]
        return [*cmd, "--eval-every", "0", "--eval-episodes", str(eval_episodes), "--no-progress"]

    def preprocessing(self):
        """The pretraining's crop and resize at this camera and image size: the graph's actor sees the same."""
        image_size = self.network.get("image_size", PretrainConfig.image_size)
        return PretrainConfig(camera=self.camera, image_size=image_size).preprocessing()


PROFILES = {
    "cpu": SimProfile(
        name="cpu",
        description="no GPU: a 16-channel encoder on 64x64 crops of 320x240 renders, batch 64, curriculum stage 3, "
        "a start pretrained for 700 env steps",
        stage=3,
        network={"encoder_channels": 16, "image_size": 64},
        camera=(320, 240),
        batch_size=64,
        pretrain_steps=700,
        evaluation_every_episodes=3,  # evaluation episodes often enough for a rolling-20 curve within minutes
        warmup_transitions=200,
    ),
    "full": SimProfile(name="full", description="the full-size networks and 640x480 renders"),
}


def choose(name: str) -> SimProfile:
    """``auto``: full with a CUDA GPU, cpu without."""
    if name not in PROFILE_CHOICES:
        raise ValueError(f"profile must be one of {PROFILE_CHOICES}, got {name!r}")
    if name == "auto":
        import torch

        name = "full" if torch.cuda.is_available() else "cpu"
    return PROFILES[name]


def write_params(path: Path, profile: SimProfile, overrides: dict[str, dict] | None = None) -> Path:
    """config/sim.yaml with the profile's sizes, then ``overrides`` ({node name: {parameter: value}})."""
    data = yaml.safe_load(config_path("sim.yaml").read_text())

    def node(name: str) -> dict:
        return data.setdefault(f"/**/{name}", {}).setdefault("ros__parameters", {})

    network = json.dumps(profile.network) if profile.network else ""
    width, height = profile.camera
    node("so101_sim").update(camera_width=width, camera_height=height)
    if profile.stage is not None:
        node("so101_sim")["curriculum_stage"] = profile.stage
    node("actor").update(network=network, preprocessing=json.dumps(profile.preprocessing().to_dict()))
    node("learner").update(network=network, batch_size=profile.batch_size)
    if profile.evaluation_every_episodes is not None:
        node("actor")["evaluation_every_episodes"] = profile.evaluation_every_episodes
    if profile.warmup_transitions is not None:
        node("learner")["warmup_transitions"] = profile.warmup_transitions
    for name, values in (overrides or {}).items():
        node(name).update(values)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path
