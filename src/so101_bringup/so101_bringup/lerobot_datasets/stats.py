"""meta/stats.json as LeRobot computes it: per feature min, max, mean, std, count and the quantiles q01..q99.

Numeric features are reduced over all frames (one value per dimension); camera features per colour channel, in
[0, 1], over a sample of frames, shaped (3, 1, 1) as LeRobot's normalisation expects.
"""

from __future__ import annotations

import numpy as np

QUANTILES = (0.01, 0.10, 0.50, 0.90, 0.99)


def feature_stats(values: np.ndarray) -> dict:
    """(frames, dims) -> {stat: list of dims values}."""
    values = np.asarray(values, dtype=np.float64).reshape(len(values), -1)
    stats = {
        "min": values.min(axis=0), "max": values.max(axis=0), "mean": values.mean(axis=0),
        "std": values.std(axis=0), "count": np.array([len(values)]),
    }  # fmt: skip
    for q in QUANTILES:
        stats[f"q{round(q * 100):02d}"] = np.quantile(values, q, axis=0)
    return {name: value.tolist() for name, value in stats.items()}


def image_stats(frames: np.ndarray) -> dict:
    """(frames, H, W, 3) uint8 -> per-channel stats in [0, 1], each shaped (3, 1, 1)."""
    pixels = np.asarray(frames, dtype=np.float64).reshape(-1, 3) / 255.0
    return {name: np.asarray(value).reshape(-1, 1, 1).tolist() if name != "count" else value
            for name, value in feature_stats(pixels).items()}  # fmt: skip
