"""Which PolicyWeights a running actor takes: versions never go backwards within a learner epoch, and a new
learner (restarted, or on a fresh run dir) is recognised by its epoch and taken even though its versions restart.

A learner epoch is ``"<run id>:<start time ns>"`` (``make_epoch``): the run id is created once per run dir, the
start time once per learner process. Weights of an *older* learner process (a smaller start time, e.g. a late
latched message of a learner that has since been restarted) are refused, so two epochs never alternate. The
actor applies what it accepts at its next episode boundary (its own rule), and checks format, checksum and shapes
separately.
"""

from __future__ import annotations


def make_epoch(run_id: str, start_time_ns: int) -> str:
    if not run_id or ":" in run_id:
        raise ValueError(f"run id must be non-empty and without ':', got {run_id!r}")
    return f"{run_id}:{int(start_time_ns)}"


def epoch_start_ns(epoch: str) -> int | None:
    """The learner start time an epoch carries, or None for an epoch not made by ``make_epoch``."""
    _, sep, stamp = epoch.rpartition(":")
    return int(stamp) if sep and stamp.isdigit() else None


def accept(current_epoch: str | None, current_version: int | None, msg_epoch: str, msg_version: int) -> bool:
    """True when weights (``msg_epoch``, ``msg_version``) should replace the current ones.

    ``current_*`` None: the actor holds no learner weights yet (anything with version >= 1 is taken). Same epoch:
    only a strictly newer version. Another epoch: taken, whatever its version, unless both epochs carry start
    times and the message's learner started earlier than the current one (a stale learner)."""
    if msg_version < 1:
        return False
    if current_epoch is None or current_version is None:
        return True
    if msg_epoch == current_epoch:
        return msg_version > current_version
    current_start, msg_start = epoch_start_ns(current_epoch), epoch_start_ns(msg_epoch)
    if current_start is not None and msg_start is not None:
        return msg_start > current_start
    return True
