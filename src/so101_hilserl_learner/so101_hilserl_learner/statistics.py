"""The learner's statistics, one table: each LearnerStats field with the TensorBoard tag it is also written under.
The learner fills the message and the scalars from it, the report plots the same tags, the runner's status line
reads the message's fields. A field without a tag is in the message only."""

from __future__ import annotations

import math

from so101_hilserl_learner.q_diagnostics import GROUPS

TAGS = {
    "updates_per_second": "learner/updates_per_second",
    "update_to_data_ratio": "utd/achieved",
    "requested_utd": "utd/requested",
    "update_backlog": "utd/backlog",
    "training_transitions": "data/training_transitions",
    "transitions_received": "data/transitions",
    "transitions_dropped": "data/dropped",
    "online_buffer_size": "buffer/online",
    "demo_buffer_size": "buffer/demo",
    "actor_stddev": "exploration/stddev",
    "critic_loss": "loss/critic_loss",
    "actor_loss": "loss/actor_loss",
    "q_mean": "loss/q_mean",
    **{f"{kind}_{group}": f"{kind}/{group}" for kind in ("q", "mc_return") for group in GROUPS},
    # Over the training window (written once there is a training episode) and, as each evaluation episode
    # arrives, the evaluation window. intervention_rate is the tag's older name: earlier runs and the report read it.
    "success_rate": "episodes/success_rate",
    "autonomous_success_rate": "episodes/autonomous_success_rate",
    "assisted_success_rate": "episodes/assisted_success_rate",
    "intervention_fraction": "episodes/intervention_rate",
    "evaluation_success_rate": "evaluation/success_rate",
}
MESSAGE_ONLY = ("updates", "utd_behind", "learner_epoch", "segments_dropped", "weights_version", "evaluation_episodes")
TRAINING_WINDOW_FIELDS = ("success_rate", "autonomous_success_rate", "assisted_success_rate", "intervention_fraction")
Q_FIELDS = tuple(f"{kind}_{group}" for kind in ("q", "mc_return") for group in GROUPS)
# A scalar that is no message field: the training window's mean return (EpisodeWindow writes it).
EPISODE_RETURN_TAG = "episodes/return"


def scalars(stats: dict, fields) -> dict[str, float]:
    """{tag: value} of ``fields`` of a LearnerStats dict, leaving out NaN (no point where there is no number)."""
    out = {}
    for name in fields:
        value = float(stats[name])
        if math.isfinite(value):
            out[TAGS[name]] = value
    return out


def periodic_fields(q_sampled: bool) -> list[str]:
    """The fields written every stats period: all tagged ones but the evaluation window (written per evaluation
    episode), the training window's (EpisodeWindow writes those) and Q unless this period had updates."""
    skip = {"evaluation_success_rate", *TRAINING_WINDOW_FIELDS, *(() if q_sampled else Q_FIELDS)}
    return [name for name in TAGS if name not in skip]
