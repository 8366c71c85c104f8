"""The layout of a run directory, named once: what the runner, the learner, the report, the importer and the
benchmarks read and write there (docs/architecture.md, "A run directory")."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class LearnerDir:
    """The learner's own directory (pretraining's output too): the transition journal, the checkpoints, the
    TensorBoard events, refused transitions."""

    root: Path

    @property
    def journal(self) -> Path:
        return Path(self.root) / "journal"

    @property
    def checkpoints(self) -> Path:
        return Path(self.root) / "checkpoints"

    @property
    def tensorboard(self) -> Path:
        return Path(self.root) / "tensorboard"

    @property
    def quarantine(self) -> Path:
        return Path(self.root) / "quarantine"  # refused transition bytes, kept for a look, never trained on


@dataclass(frozen=True)
class RunDir:
    """One run: node logs, the episode log (and the lines moved out of it as damaged), the learner, the bags."""

    root: Path

    @property
    def logs(self) -> Path:
        return Path(self.root) / "logs"

    @property
    def episodes(self) -> Path:
        return Path(self.root) / EPISODE_LOG

    @property
    def damaged_episodes(self) -> Path:
        return Path(self.root) / "episodes.damaged.csv"

    @property
    def learner(self) -> LearnerDir:
        return LearnerDir(Path(self.root) / "learner")

    @property
    def bags(self) -> Path:
        return Path(self.root) / "bags"

    def session_bag(self) -> Path:
        """Where a recording of a session starting now goes (a new rosbag2 directory)."""
        return self.bags / time.strftime("session_%Y%m%d_%H%M%S")


EPISODE_LOG = "episodes.csv"
