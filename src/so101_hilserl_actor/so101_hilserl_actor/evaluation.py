"""Which episodes are evaluation episodes: the deterministic policy (its mean: no exploration noise, no random
actions), flagged ``evaluation`` in their transitions and summary, and in simulation with the simulated operator's
hands off (the sim/reset request's ``operator_hands_off``), so they measure the policy alone.

Two parameters decide: ``evaluation`` (the whole run evaluates: every episode) and ``evaluation_every_episodes``
(N > 0: after every N training episodes, one evaluation episode; 0: never). An episode counts once it has ended
(its summary is published); a reset that fails before the episode starts does not change the choice.
"""

from __future__ import annotations


class EvaluationSchedule:
    def __init__(self, every_episodes: int = 0, always: bool = False, training_since_evaluation: int = 0):
        if int(every_episodes) < 0:
            raise ValueError(f"evaluation_every_episodes must be >= 0 (0 = never), got {every_episodes}")
        self.every_episodes, self.always = int(every_episodes), bool(always)
        self.training_since_evaluation = int(training_since_evaluation)  # > 0: a resumed run's schedule goes on
        self.training_episodes = self.evaluation_episodes = 0

    def next_is_evaluation(self) -> bool:
        """Whether the next episode to start is an evaluation episode."""
        if self.always:
            return True
        return self.every_episodes > 0 and self.training_since_evaluation >= self.every_episodes

    def record(self, evaluation: bool) -> None:
        """An episode of this kind has ended."""
        if evaluation:
            self.evaluation_episodes += 1
            self.training_since_evaluation = 0
        else:
            self.training_episodes += 1
            self.training_since_evaluation += 1
