"""The update-to-data contract: updates per committed training transition, with a capped backlog.

Data counts once its episode is committed (the learner cannot sample it before) and only if it is trained on
(evaluation episodes are not, unless asked): the caller passes exactly those counts to ``commit``. Each owes ``ratio``
updates; the backlog of owed updates is capped at ``max_backlog``, so a learner slower than its data sheds the excess
(reported as ``behind``, with an achieved ratio below the requested one) instead of running hundreds of updates back
to back on stale data or owing without bound. Plain Python, no locking: the learner calls it under its own lock.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from so101_contract.settings import setting


@dataclass(frozen=True)
class UtdConfig:
    utd_ratio: float = setting(1.0, "updates per committed training transition (update-to-data ratio)", (0.0, 1000.0))
    max_backlog_transitions: int = setting(
        200, "owed updates are capped at utd_ratio x this many transitions' worth", (1, 10**9)
    )
    warmup_transitions: int = setting(1000, "online transitions needed before training starts", (1, 10**9))

    def budget(self) -> UtdBudget:
        """A fresh budget under this contract."""
        return UtdBudget(self.utd_ratio, UtdBudget.cap_for(self.utd_ratio, self.max_backlog_transitions))


class UtdBudget:
    def __init__(self, ratio: float, max_backlog: int):
        if not (math.isfinite(ratio) and ratio >= 0):
            raise ValueError(f"utd_ratio must be >= 0 (0: collect without training), got {ratio}")
        if max_backlog < 1:
            raise ValueError(f"the update backlog cap must be >= 1 update, got {max_backlog}")
        self.ratio = float(ratio)
        self.max_backlog = int(max_backlog)
        self.transitions = 0  # committed training transitions counted since this budget started
        self.updates = 0  # updates done since this budget started
        self.shed = 0.0  # updates owed beyond the cap, given up
        self.behind = False  # the newest commit found the backlog at its cap
        self._owed = 0.0

    def commit(self, n_transitions: int) -> None:
        """``n_transitions`` training transitions were committed to the replay buffer."""
        if n_transitions < 0:
            raise ValueError(f"commit: n_transitions must be >= 0, got {n_transitions}")
        if n_transitions == 0:
            return
        self.transitions += n_transitions
        owed = self._owed + self.ratio * n_transitions
        self.behind = owed > self.max_backlog
        if self.behind:
            self.shed += owed - self.max_backlog
            owed = float(self.max_backlog)
        self._owed = owed

    def updates_due(self) -> int:
        """Whole updates owed now (the backlog)."""
        return int(self._owed + 1e-9)

    def did_update(self) -> None:
        if self.updates_due() < 1:
            raise RuntimeError("did_update: no update was due")
        self._owed -= 1.0
        self.updates += 1

    @property
    def backlog(self) -> int:
        return self.updates_due()

    @property
    def achieved(self) -> float:
        """Updates per committed training transition so far (NaN before any data)."""
        return self.updates / self.transitions if self.transitions else float("nan")

    @classmethod
    def cap_for(cls, ratio: float, backlog_transitions: int) -> int:
        """The cap in updates for a backlog of ``backlog_transitions`` transitions' worth of updates."""
        return max(1, math.ceil(ratio * backlog_transitions))
