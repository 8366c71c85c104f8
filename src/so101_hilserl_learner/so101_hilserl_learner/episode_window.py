"""The learner's view of recent episode outcomes: the numbers of LearnerStats and the TensorBoard ``episodes/`` and
``evaluation/`` scalars, from hilserl/episodes.

Training and evaluation episodes are kept apart (so101_contract.outcomes defines what counts as an autonomous or an
assisted success): a success that the simulated operator produced must not read as the policy's, and evaluation
episodes (deterministic policy, operator hands off) are the headline number. Plain Python, no ROS.
"""

from __future__ import annotations

from collections import deque

from so101_contract.outcomes import Outcome, OutcomeRates, rates
from so101_hilserl_learner import statistics

TRAINING_WINDOW = 50  # training episodes in the rolling rates
EVALUATION_WINDOW = 20  # evaluation episodes in the rolling evaluation success


class EpisodeWindow:
    def __init__(self, training: int = TRAINING_WINDOW, evaluation: int = EVALUATION_WINDOW):
        self.training: deque[Outcome] = deque(maxlen=training)
        self.evaluation: deque[Outcome] = deque(maxlen=evaluation)
        self.evaluation_episodes = 0  # evaluation episodes seen since this learner started

    def add(self, outcome: Outcome) -> None:
        if outcome.evaluation:
            self.evaluation.append(outcome)
            self.evaluation_episodes += 1
        else:
            self.training.append(outcome)

    def training_rates(self) -> OutcomeRates:
        return rates(self.training)

    def evaluation_rates(self) -> OutcomeRates:
        return rates(self.evaluation)

    def stats_fields(self) -> dict[str, float | int]:
        """The outcome fields of LearnerStats (NaN rates before the first episode of their kind)."""
        train, evaluation = self.training_rates(), self.evaluation_rates()
        return {
            "success_rate": train.success,
            "autonomous_success_rate": train.autonomous_success,
            "assisted_success_rate": train.assisted_success,
            "intervention_fraction": train.intervention_fraction,
            "evaluation_success_rate": evaluation.success,
            "evaluation_episodes": self.evaluation_episodes,
        }

    def training_scalars(self) -> dict[str, float]:
        """TensorBoard scalars of the training window; none before the first training episode (no point at 0).
        ``episodes/intervention_rate`` keeps its name: older runs and the report read it."""
        if not self.training:
            return {}
        fields = statistics.scalars(self.stats_fields(), statistics.TRAINING_WINDOW_FIELDS)
        return {**fields, statistics.EPISODE_RETURN_TAG: self.training_rates().mean_return}

    def evaluation_scalars(self, newest: Outcome) -> dict[str, float]:
        """TensorBoard scalars written when the evaluation episode ``newest`` (already added) arrives."""
        return {
            statistics.TAGS["evaluation_success_rate"]: self.evaluation_rates().success,
            "evaluation/success": float(newest.success),
            "evaluation/return": newest.episode_return,
        }
