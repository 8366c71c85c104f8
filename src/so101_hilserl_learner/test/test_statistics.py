"""The statistics table covers the message: every LearnerStats field has its TensorBoard tag or is message-only,
and tags are unique, so a field added to the message without a decision fails here."""

import math

from so101_hilserl_interfaces.msg import LearnerStats
from so101_hilserl_learner import statistics


def test_every_learner_stats_field_is_tagged_or_message_only():
    fields = set(LearnerStats.get_fields_and_field_types()) - {"header"}
    tagged, only = set(statistics.TAGS), set(statistics.MESSAGE_ONLY)
    assert not tagged & only
    assert fields == tagged | only, f"untabled: {fields - tagged - only}; not fields: {(tagged | only) - fields}"
    assert len(set(statistics.TAGS.values())) == len(statistics.TAGS)


def test_scalars_leave_out_nan_and_periodic_fields_skip_q_without_updates():
    stats = {name: 1.0 for name in statistics.TAGS}
    stats["q_demo"] = math.nan
    written = statistics.scalars(stats, statistics.periodic_fields(q_sampled=True))
    assert "q/demo" not in written and written["q/online_policy"] == 1.0 and written["utd/achieved"] == 1.0
    assert "evaluation/success_rate" not in written and "episodes/success_rate" not in written
    assert not any(
        tag.startswith(("q/", "mc_return/")) for tag in statistics.scalars(stats, statistics.periodic_fields(False))
    )
