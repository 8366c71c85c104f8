"""A small pixel task on which DrQ-v2 learns within minutes on a CPU: move a dot onto a target.

The learner's update must be shown to *learn*, not only to run, and the real task needs a robot or a slow simulator.
Here a 2-D action in [-1, 1]^2 moves a red dot (by up to ``max_step``) on a black image with a green target; pixels
are all the agent sees (3 stacked frames), like facebookresearch/drqv2. Success (the dot within ``success_radius``)
ends the episode with reward +1; potential-based ``shaping`` rewards progress; ``episode_length`` is a time limit;
``reset(seed)`` draws start and target from that seed only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PixelTaskConfig:
    image_size: int = 32
    episode_length: int = 30  # a time limit, not a terminal state: the learner bootstraps there
    max_step: float = 0.1  # arena fraction moved per step at |action| = 1 (per axis)
    success_radius: float = 0.1
    min_start_distance: float = 0.3
    dot_radius_px: int = 1  # drawn as a (2r+1)^2 square
    shaping: float = 1.0  # reward shaping * (d_before - d_after) per step: potential-based, the best policy stays best
    success_reward: float = 1.0

    def __post_init__(self) -> None:
        if self.image_size < 8 or self.episode_length < 1:
            raise ValueError(f"PixelTaskConfig: image_size >= 8 and episode_length >= 1 required, got {self}")
        if not 0 < self.max_step <= 1 or not 0 < self.success_radius < self.min_start_distance < 1:
            raise ValueError(
                "PixelTaskConfig: need 0 < max_step <= 1 and 0 < success_radius < min_start_distance < 1, "
                f"got max_step={self.max_step}, success_radius={self.success_radius}, "
                f"min_start_distance={self.min_start_distance}"
            )


class PixelReachEnv:
    """reset(seed) -> frame; step(action) -> (frame, reward, terminated, truncated). Frames are (H, W, 3) uint8."""

    action_dim = 2
    state_dim = 0

    def __init__(self, config: PixelTaskConfig | None = None):
        self.config = config or PixelTaskConfig()
        self._dot = np.zeros(2)
        self._target = np.zeros(2)
        self._t = 0

    def reset(self, seed: int) -> np.ndarray:
        rng = np.random.default_rng(seed)
        while True:
            self._dot, self._target = rng.uniform(0.05, 0.95, size=(2, 2))
            if np.linalg.norm(self._dot - self._target) >= self.config.min_start_distance:
                break
        self._t = 0
        return self.render()

    def step(self, action) -> tuple[np.ndarray, float, bool, bool]:
        action = np.clip(np.asarray(action, np.float64).reshape(-1)[:2], -1.0, 1.0)
        before = self.distance
        self._dot = np.clip(self._dot + self.config.max_step * action, 0.0, 1.0)
        self._t += 1
        after = self.distance
        terminated = after < self.config.success_radius
        reward = self.config.shaping * (before - after) + (self.config.success_reward if terminated else 0.0)
        truncated = not terminated and self._t >= self.config.episode_length
        return self.render(), float(reward), bool(terminated), bool(truncated)

    @property
    def distance(self) -> float:
        return float(np.linalg.norm(self._dot - self._target))

    def render(self) -> np.ndarray:
        size, r = self.config.image_size, self.config.dot_radius_px
        frame = np.zeros((size, size, 3), np.uint8)
        for pos, channel in ((self._target, 1), (self._dot, 0)):
            col, row = np.rint(pos * (size - 1)).astype(int)
            frame[max(row - r, 0) : row + r + 1, max(col - r, 0) : col + r + 1, channel] = 255
        return frame


def random_policy_success(config: PixelTaskConfig, episodes: int, seed: int) -> float:
    """Success rate of uniform random actions: the baseline a learner must beat clearly."""
    env, rng, successes = PixelReachEnv(config), np.random.default_rng(seed), 0
    for episode in range(episodes):
        env.reset(seed * 100_003 + episode)
        for _ in range(config.episode_length):
            _, _, terminated, truncated = env.step(rng.uniform(-1, 1, size=2))
            if terminated or truncated:
                successes += terminated
                break
    return successes / episodes
