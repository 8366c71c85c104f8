"""What an episode's outcome counts as, defined once for the learner's stats, the runner's status line, the report
and the benchmarks.

In human-in-the-loop training a success can be the policy's or the person's. An episode is an *autonomous* success
when it ended in success and no step of it was driven by a person, an *assisted* success when it ended in success
with at least one intervention step. Evaluation episodes (deterministic policy, the simulated operator's hands off)
are kept apart from training episodes: their success rate is the headline number of every learning claim, because
it measures the policy alone.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Outcome:
    """One finished episode, as EpisodeSummary reports it."""

    success: bool
    intervention_steps: int
    steps: int
    evaluation: bool = False
    episode_return: float = 0.0

    @property
    def autonomous_success(self) -> bool:
        return self.success and self.intervention_steps == 0

    @property
    def assisted_success(self) -> bool:
        return self.success and self.intervention_steps > 0

    @property
    def intervention_fraction(self) -> float:
        """Share of the episode's steps driven by a person (0 for an empty episode)."""
        return self.intervention_steps / self.steps if self.steps > 0 else 0.0

    @classmethod
    def from_msg(cls, msg) -> Outcome:
        """From a so101_hilserl_interfaces/EpisodeSummary (or anything with its fields)."""
        return cls(
            success=bool(msg.success),
            intervention_steps=int(msg.intervention_steps),
            steps=int(msg.steps),
            evaluation=bool(msg.evaluation),
            episode_return=float(msg.episode_return),
        )


@dataclass(frozen=True)
class OutcomeRates:
    """Rates over a group of episodes; NaN for an empty group (no episode is not a 0 % success rate)."""

    episodes: int
    success: float
    autonomous_success: float
    assisted_success: float
    intervention_fraction: float  # intervention steps / steps over the group (long episodes weigh more)
    mean_return: float


def rates(outcomes: Iterable[Outcome]) -> OutcomeRates:
    group = list(outcomes)
    if not group:
        nan = math.nan
        return OutcomeRates(0, nan, nan, nan, nan, nan)
    n = len(group)
    steps = sum(o.steps for o in group)
    return OutcomeRates(
        episodes=n,
        success=sum(o.success for o in group) / n,
        autonomous_success=sum(o.autonomous_success for o in group) / n,
        assisted_success=sum(o.assisted_success for o in group) / n,
        intervention_fraction=sum(o.intervention_steps for o in group) / steps if steps else 0.0,
        mean_return=sum(o.episode_return for o in group) / n,
    )
