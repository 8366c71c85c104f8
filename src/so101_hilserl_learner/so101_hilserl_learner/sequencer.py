"""Order checking of the transition stream: loss, duplication and reordering never produce a wrong sample.

Inside an episode of one actor, steps must arrive 0, 1, 2, ... and the episode must close with a message flagged
terminated or truncated. The sequencer sees only (actor_id, episode_id, step, is_last) and tells the learner what
to do with each message; it never looks at payloads.

* ``ACCEPT``: store it; it continues its episode.
* ``DUPLICATE``: the same step arrived again; ignore it (the first copy was stored).
* ``STALE``: a message of an episode that is over or was dropped; ignore it.
* ``BROKEN``: a step is missing (lost or reordered): the open episode segment ends at the last good step; the
  learner must close it without a next observation (its last transition cannot be completed) and ignore the rest
  of that episode. The message itself is not stored.

A new episode that starts while the previous one of the same actor is still open means the previous episode's last
message was lost: ``abandoned`` names that episode, which the learner closes the same way. An actor that stops
mid-episode for good (a restarted actor has a new id) is cut by ``expire``: the learner calls it when that actor
has been silent too long, and any late message of the cut episode is then STALE.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class Verdict(enum.Enum):
    ACCEPT = "accept"
    DUPLICATE = "duplicate"
    STALE = "stale"
    BROKEN = "broken"


@dataclass
class Decision:
    verdict: Verdict
    abandoned_episode: int | None = None  # an open episode of this actor that can never be completed
    reason: str = ""


@dataclass
class _ActorState:
    episode_id: int | None = None
    next_step: int = 0
    open: bool = False  # an episode is in progress and intact
    broken: bool = False  # the current episode was cut; its remaining messages are ignored


@dataclass
class TransitionSequencer:
    actors: dict[str, _ActorState] = field(default_factory=dict)
    accepted: int = 0
    duplicates: int = 0
    stale: int = 0
    broken_segments: int = 0
    dropped_after_break: int = 0
    expired_segments: int = 0

    def expire(self, actor_id: str) -> bool:
        """Cut the open episode of a silent actor (its later messages become STALE). True if one was open."""
        state = self.actors.get(actor_id)
        if state is None or not state.open:
            return False
        state.open, state.broken = False, True
        self.broken_segments += 1
        self.expired_segments += 1
        return True

    def push(self, actor_id: str, episode_id: int, step: int, is_last: bool) -> Decision:
        state = self.actors.setdefault(actor_id, _ActorState())
        abandoned = None

        if state.episode_id is None or episode_id > state.episode_id:
            # A new episode. If the previous one is still open its closing message was lost.
            if state.open:
                abandoned = state.episode_id
                self.broken_segments += 1
            state.episode_id, state.next_step, state.open, state.broken = episode_id, 0, False, False
            if step != 0:
                # Its first steps were lost: nothing of this episode can be rebuilt from step 0.
                state.broken = True
                self.broken_segments += 1
                self.dropped_after_break += 1
                return Decision(Verdict.BROKEN, abandoned, f"episode {episode_id} starts at step {step}, not 0")
        elif episode_id < state.episode_id:
            self.stale += 1
            return Decision(Verdict.STALE, None, f"episode {episode_id} is older than {state.episode_id}")

        if state.broken or (not state.open and state.next_step > 0):
            # the episode was cut earlier, or it already closed and this is a late copy
            if not state.broken and step < state.next_step:
                self.duplicates += 1
                return Decision(Verdict.DUPLICATE, abandoned, f"step {step} of a closed episode arrived again")
            self.dropped_after_break += 1
            return Decision(Verdict.STALE, abandoned, f"episode {episode_id} was already cut")

        if step < state.next_step:
            self.duplicates += 1
            return Decision(Verdict.DUPLICATE, abandoned, f"step {step} arrived again (expected {state.next_step})")
        if step > state.next_step:
            state.broken, state.open = True, False
            self.broken_segments += 1
            self.dropped_after_break += 1
            return Decision(
                Verdict.BROKEN, abandoned, f"episode {episode_id}: expected step {state.next_step}, got {step}"
            )

        state.next_step = step + 1
        state.open = not is_last
        self.accepted += 1
        return Decision(Verdict.ACCEPT, abandoned)
