"""The actor's run, as plain Python: what keeps it from starting an episode, which episode comes next (evaluation or
training, evaluation.py), when the run is over, and its tally (episodes, successes, steps, failed resets), with the
log lines that report them."""

from __future__ import annotations

from so101_hilserl_actor.actor_config import ActorConfig
from so101_hilserl_actor.control_step import EpisodeRecord
from so101_hilserl_actor.evaluation import EvaluationSchedule


def waiting_for(missing_inputs: list[str], takers: int, config: ActorConfig, holds_learner_weights: bool) -> str:
    """What keeps the actor from starting an episode, in words ('' when nothing does): inputs not heard yet, too few
    takers of its transitions, the learner's weights when it must wait for them."""
    missing = list(missing_inputs)
    if takers < config.wait_for_subscribers:
        missing.append(f"{config.wait_for_subscribers - takers} more taker(s) of hilserl/transitions (the learner)")
    if config.wait_for_learner_weights and not holds_learner_weights:
        missing.append("the learner's weights (a resumed run starts from its newest checkpoint)")
    return ", ".join(missing)


class RunTally:
    """The run's episodes so far and the evaluation schedule they drive."""

    def __init__(self, config: ActorConfig):
        self.max_episodes = config.max_episodes
        self.evaluation_run = config.control.evaluation
        self.schedule = EvaluationSchedule(config.evaluation_every_episodes, always=self.evaluation_run,
                                           training_since_evaluation=config.training_since_evaluation)  # fmt: skip
        self.episodes = self.successes = self.steps = self.reset_failures = self.evaluation_successes = 0

    @property
    def over(self) -> bool:
        """The run has had its ``max_episodes`` (never with 0)."""
        return bool(self.max_episodes) and self.episodes >= self.max_episodes

    def next_is_evaluation(self) -> bool:
        return self.schedule.next_is_evaluation()

    def mode(self) -> str:
        """The run's kind, in words, for the start line."""
        if self.evaluation_run:
            return "evaluation"
        every = self.schedule.every_episodes
        return f"training, an evaluation episode after every {every}" if every else "training"

    def reset_failed(self, problem: str, retry_s: float) -> str:
        """Count a failed reset; the line to log."""
        self.reset_failures += 1
        return (f"reset failed ({self.reset_failures} so far), the episode does not start: {problem}; retrying in "
                f"{retry_s} s")  # fmt: skip

    def record(self, e: EpisodeRecord) -> str:
        """Count an ended episode; the line to log."""
        self.episodes, self.successes, self.steps = (
            self.episodes + 1,
            self.successes + int(e.success),
            self.steps + e.steps,
        )
        self.schedule.record(e.evaluation)
        self.evaluation_successes += int(e.evaluation and e.success)
        kind = "evaluation episode" if e.evaluation else "episode"
        return (f"{kind} {e.episode_id}: {e.end_reason} after {e.steps} steps, return {e.episode_return:.2f}, "
                f"intervention {e.intervention_steps}/{e.steps}, weights v{e.policy_version}")  # fmt: skip

    def summary(self) -> str:
        """The run's last line: episodes, success rate, mean steps, failed resets, evaluation episodes."""
        rate, steps = self.successes / max(self.episodes, 1), self.steps / max(self.episodes, 1)
        evaluations = ""
        if not self.evaluation_run and self.schedule.evaluation_episodes:
            evaluations = (f", of which {self.schedule.evaluation_episodes} evaluation episodes with success rate "
                           f"{self.evaluation_successes / self.schedule.evaluation_episodes:.0%}")  # fmt: skip
        return (f"{'evaluation' if self.evaluation_run else 'run'} finished: {self.episodes} episodes, success rate "
                f"{rate:.0%}, mean steps {steps:.1f}, {self.reset_failures} failed resets{evaluations}")  # fmt: skip
