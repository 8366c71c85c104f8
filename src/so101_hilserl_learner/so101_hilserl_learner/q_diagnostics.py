"""Q next to Monte-Carlo returns, per kind of row: tells a critic that overestimates from a reward that pays for
not finishing (Q close to high returns) and shows where the two part (the policy's rows, interventions, demos).

Groups of a batch's rows: ``online_policy`` (online buffer, the policy acted), ``online_intervention`` (online
buffer, the person acted) and ``demo`` (the demonstration buffer: interventions and demonstrations). A row whose
return is not known exactly counts in no group: its episode is still open, broke, or hit the time limit (a partial
sum would be a lower bound that a correct, bootstrapped Q exceeds). Q is the mean of the critics on the stored
action, as in the critic loss.
"""

from __future__ import annotations

import math
import threading
from typing import Any

import torch

GROUPS = ("online_policy", "online_intervention", "demo")


def group_sums(q: torch.Tensor, mc_return: torch.Tensor, intervention: Any, from_demo: Any) -> torch.Tensor:
    """(3 groups, [sum of Q, sum of returns, rows]) float32 for per-row Q (B,) and a batch's row fields. A few small
    kernels and no host sync: the caller copies the result with its other metrics."""
    known = torch.isfinite(mc_return)
    demo, helped = from_demo.bool(), intervention.bool()
    masks = (torch.stack([~demo & ~helped, ~demo & helped, demo]) & known).float()  # (3, B)
    values = torch.stack([q.float(), mc_return.float().nan_to_num(0.0), torch.ones_like(q, dtype=torch.float32)], 1)
    return masks @ values


class QWindow:
    """Row-weighted means of Q and of the returns per group over the updates since the last ``take``. The training
    thread adds, the stats timer takes."""

    def __init__(self):
        self._lock = threading.Lock()
        self._sums = {group: [0.0, 0.0, 0] for group in GROUPS}

    def add(self, sums: dict[str, tuple[float, float, int]]) -> None:
        with self._lock:
            for group, (q_sum, mc_sum, rows) in sums.items():
                entry = self._sums[group]
                entry[0] += q_sum
                entry[1] += mc_sum
                entry[2] += rows

    def take(self) -> dict[str, float]:
        """{"q/<group>": mean Q, "mc_return/<group>": mean return, "rows/<group>": rows}; NaN means for a group
        without rows since the last take. Starts a new window."""
        with self._lock:
            sums, self._sums = self._sums, {group: [0.0, 0.0, 0] for group in GROUPS}
        out = {}
        for group, (q_sum, mc_sum, rows) in sums.items():
            out[f"q/{group}"] = q_sum / rows if rows else math.nan
            out[f"mc_return/{group}"] = mc_sum / rows if rows else math.nan
            out[f"rows/{group}"] = float(rows)
        return out
