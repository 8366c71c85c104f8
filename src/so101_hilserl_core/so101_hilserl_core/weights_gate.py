"""Which PolicyWeights a running actor takes: versions never go backwards within a learner epoch, and a new learner
(restarted, or on a fresh run dir) is recognised by its epoch and taken even though its versions restart.

A learner epoch is ``"<run id>:<start time ns>"`` (``make_epoch``): the run id once per run dir, the wall-clock start
time once per learner process. Weights of an older learner process (e.g. a late latched message) are refused, so two
epochs never alternate, and so is an epoch too far in the future (``refusal`` says exactly when). The actor applies
what it accepts at its next episode boundary, and checks format, checksum and shapes separately.
"""

from __future__ import annotations

# How far (s) a learner's start time may lie ahead of the receiver's wall clock: room for clocks of two machines
# that disagree a little; beyond it the stamp is forged or a clock is wrong (synchronise them, e.g. with chrony).
# Such an epoch is refused: taken, it would make every real learner older, hence refused, until the actor restarts.
MAX_EPOCH_SKEW_S = 60.0


def make_epoch(run_id: str, start_time_ns: int) -> str:
    if not run_id or ":" in run_id:
        raise ValueError(f"run id must be non-empty and without ':', got {run_id!r}")
    return f"{run_id}:{int(start_time_ns)}"


def epoch_start_ns(epoch: str) -> int | None:
    """The learner start time an epoch carries, or None for an epoch not made by ``make_epoch``."""
    _, sep, stamp = epoch.rpartition(":")
    return int(stamp) if sep and stamp.isdigit() else None


def refusal(
    current_epoch: str | None, current_version: int | None, msg_epoch: str, msg_version: int, now_ns: int
) -> str:
    """'' when weights (``msg_epoch``, ``msg_version``) should replace the current ones, else why not.

    ``now_ns``: the receiver's wall clock (ns since the Unix epoch). ``current_*`` None: the actor holds no learner
    weights yet (anything with version >= 1 is taken). Same epoch: only a strictly newer version. Another epoch:
    taken, whatever its version, unless both epochs carry start times and the message's learner started earlier
    than the current one (a stale learner). Never an epoch that starts more than MAX_EPOCH_SKEW_S in the future."""
    if msg_version < 1:
        return f"version {msg_version} is not a learner's (they start at 1)"
    msg_start = epoch_start_ns(msg_epoch)
    if msg_start is not None and msg_start - now_ns > MAX_EPOCH_SKEW_S * 1e9:
        return (
            f"learner epoch {msg_epoch!r} starts {(msg_start - now_ns) / 1e9:.0f} s ahead of this machine's clock "
            f"(more than {MAX_EPOCH_SKEW_S:.0f} s): a forged stamp, or clocks that disagree; synchronise them"
        )
    if current_epoch is None or current_version is None:
        return ""
    stale = f"version {msg_version} of epoch {msg_epoch!r} is not newer than {current_version} of {current_epoch!r}"
    if msg_epoch == current_epoch:
        return "" if msg_version > current_version else stale
    current_start = epoch_start_ns(current_epoch)
    if current_start is not None and msg_start is not None and msg_start <= current_start:
        return stale
    return ""


def accept(
    current_epoch: str | None, current_version: int | None, msg_epoch: str, msg_version: int, now_ns: int
) -> bool:
    """True when ``refusal`` finds nothing against the weights."""
    return not refusal(current_epoch, current_version, msg_epoch, msg_version, now_ns)
