"""Where steps a journal lacks belong: each before the first record of its actor that comes after it, so the learner
replays it where the actor sent it. Pure: (key, bytes) in, bytes out."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from rclpy.serialization import deserialize_message

from so101_hilserl_interfaces.msg import Transition

Key = tuple[str, int, int]  # (actor id, episode id, step)


def key_of(raw: bytes) -> Key | None:
    """The (actor, episode, step) of serialized Transition bytes; None for bytes that are not one."""
    try:
        msg = deserialize_message(raw, Transition)
    except Exception:  # rclpy raises RMWError (and others) for truncated or garbled CDR
        return None
    return msg.actor_id, int(msg.episode_id), int(msg.step)


def refilled(records: Iterable[tuple[Key | None, bytes]], fills: Iterable[tuple[Key, bytes]]) -> Iterator[bytes]:
    """``records`` (the journal's, in order) with each of ``fills`` placed before the first record of the same actor
    with a later (episode, step); fills after every record of their actor come last, in (episode, step) order."""
    pending: dict[str, list[tuple[Key, bytes]]] = {}
    for key, raw in sorted(fills, key=lambda fill: fill[0], reverse=True):
        pending.setdefault(key[0], []).append((key, raw))  # per actor, the earliest last (popped first)
    for key, raw in records:
        waiting = pending.get(key[0]) if key is not None else None
        while waiting and waiting[-1][0][1:] < key[1:]:
            yield waiting.pop()[1]
        yield raw
    for key in sorted(pending):
        while pending[key]:
            yield pending[key].pop()[1]
