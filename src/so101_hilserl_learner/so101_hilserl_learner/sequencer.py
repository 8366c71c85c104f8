"""Order checking of the transition stream: loss, duplication and reordering never produce a wrong sample.

Inside an episode of one actor, steps must arrive 0, 1, 2, ... and the episode must close with a message flagged
terminated or truncated. The sequencer sees only (actor_id, episode_id, step, is_last) and tells the learner what to
do with each message (a ``Verdict``); it never looks at payloads. Only what needs a missing step is lost: a gap ends
the open segment at the last good step and the episode goes on in a new segment.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class Verdict(enum.Enum):
    """What the learner does with one message.

    * ``ACCEPT``: store it; it continues its episode.
    * ``DUPLICATE``: the same step arrived again; ignore it (the first copy was stored).
    * ``STALE``: a message of an episode that is over or was cut, or a missing step that arrives after the gap it
      left was cut; ignore it.
    * ``GAP``: steps are missing (lost, or reordered): the open episode segment ends at the last good step (the
      learner closes it without a next observation: its last transition cannot be completed) and this message starts
      a new segment of the same episode, which the learner stores (its first frames serve as stack context). An
      episode whose first steps are missing starts the same way.
    * ``IMPLAUSIBLE``: an episode id more than ``max_episode_gap`` away from the actor's current one (an actor counts
      its episodes 1, 2, 3, ...): one garbled or hostile message would otherwise make every later episode of that
      actor older, hence stale, for good. It is dropped and remembered; a later message within the gap of it confirms
      a real jump (a long outage), and the actor's stream is re-based there (``Decision.notice`` says so).
    """

    ACCEPT = "accept"
    DUPLICATE = "duplicate"
    STALE = "stale"
    GAP = "gap"
    IMPLAUSIBLE = "implausible"


MAX_EPISODE_GAP = 1000  # episodes an actor may plausibly run between two of its messages that reach the learner


@dataclass
class Decision:
    verdict: Verdict
    abandoned_episode: int | None = None  # an open episode of this actor that can never be completed
    reason: str = ""
    notice: str = ""  # the actor's stream was re-based: worth a warning


@dataclass
class _ActorState:
    episode_id: int | None = None
    next_step: int = 0
    open: bool = False  # an episode is in progress and intact
    broken: bool = False  # the current episode was cut (a silent actor); its remaining messages are ignored
    gap: tuple[int, int] | None = None  # steps [first, end) of the current episode found missing last
    candidate: int | None = None  # an implausible episode id seen last: a real jump if another message confirms it


@dataclass
class TransitionSequencer:
    """The per-actor order check (see Verdict).

    A new episode that starts while the previous one of the same actor is still open means the previous episode's
    last message was lost: ``Decision.abandoned_episode`` names that episode, which the learner closes like a
    gap. An actor that stops mid-episode for good (a restarted actor has a new id) is cut by ``expire``: the learner
    calls it when that actor has been silent too long, and any late message of the cut episode is then STALE.
    ``known`` tells, without changing anything, whether a message is a copy or a late message (DUPLICATE or STALE):
    what the learner does not journal again.
    """

    actors: dict[str, _ActorState] = field(default_factory=dict)
    accepted: int = 0
    duplicates: int = 0
    stale: int = 0
    broken_segments: int = 0
    dropped_after_break: int = 0
    expired_segments: int = 0
    implausible: int = 0
    rebased: int = 0
    max_episode_gap: int = MAX_EPISODE_GAP

    def expire(self, actor_id: str) -> bool:
        """Cut the open episode of a silent actor (its later messages become STALE). True if one was open."""
        state = self.actors.get(actor_id)
        if state is None or not state.open:
            return False
        state.open, state.broken = False, True
        self.broken_segments += 1
        self.expired_segments += 1
        return True

    def known(self, actor_id: str, episode_id: int, step: int) -> bool:
        """True for a message ``push`` would call DUPLICATE or STALE: a copy, or late; it changes nothing."""
        state = self.actors.get(actor_id)
        return state is not None and self._known(state, episode_id, step) is not None

    def _known(self, state: _ActorState, episode_id: int, step: int) -> tuple[Verdict, str] | None:
        if state.episode_id is None or episode_id > state.episode_id:
            return None
        if episode_id < state.episode_id:
            if state.episode_id - episode_id > self.max_episode_gap:
                return None  # not a late message: implausible (push decides)
            return Verdict.STALE, f"episode {episode_id} is older than {state.episode_id}"
        if state.broken or (not state.open and state.next_step > 0):
            # the episode was cut earlier, or it already closed and this is a late copy
            if not state.broken and step < state.next_step:
                return Verdict.DUPLICATE, f"step {step} of a closed episode arrived again"
            return Verdict.STALE, f"episode {episode_id} was already cut"
        if state.gap is not None and state.gap[0] <= step < state.gap[1]:
            return Verdict.STALE, f"step {step} arrived after the gap it left was cut"
        if step < state.next_step:
            return Verdict.DUPLICATE, f"step {step} arrived again (expected {state.next_step})"
        return None

    def push(self, actor_id: str, episode_id: int, step: int, is_last: bool) -> Decision:
        state = self.actors.setdefault(actor_id, _ActorState())
        known = self._known(state, episode_id, step)
        if known is not None:
            verdict, reason = known
            if verdict is Verdict.DUPLICATE:
                self.duplicates += 1
            elif episode_id < state.episode_id:
                self.stale += 1
            else:
                self.dropped_after_break += 1
            return Decision(verdict, None, reason)

        abandoned = None
        notice = ""
        if state.episode_id is not None and abs(episode_id - state.episode_id) > self.max_episode_gap:
            candidate = state.candidate
            if candidate is None or not 0 <= episode_id - candidate <= self.max_episode_gap:
                state.candidate = episode_id
                self.implausible += 1
                return Decision(
                    Verdict.IMPLAUSIBLE,
                    None,
                    f"episode {episode_id} is more than {self.max_episode_gap} episodes away from the current "
                    f"{state.episode_id}: dropped (a second message near it would re-base the stream)",
                )
            # confirmed by a second message: the actor really moved there (e.g. after a long outage)
            self.rebased += 1
            notice = (
                f"actor {actor_id!r}: episode ids jumped from {state.episode_id} to {candidate}..{episode_id}; "
                "the stream is re-based there"
            )
            if state.open:
                abandoned = state.episode_id
                self.broken_segments += 1
            state.episode_id, state.next_step, state.open, state.broken = None, 0, False, False
            state.gap = None
        state.candidate = None

        if state.episode_id is None or episode_id > state.episode_id:
            # A new episode. If the previous one is still open its closing message was lost.
            if state.open:
                abandoned = state.episode_id
                self.broken_segments += 1
            state.episode_id, state.next_step, state.open, state.broken = episode_id, 0, False, False
            state.gap = None

        verdict, reason = Verdict.ACCEPT, ""
        if step > state.next_step:  # steps next_step .. step - 1 are missing: a new segment starts here
            self.broken_segments += 1
            state.gap = (state.next_step, step)
            verdict = Verdict.GAP
            reason = (
                f"episode {episode_id} starts at step {step}, not 0" if state.next_step == 0
                else f"episode {episode_id}: expected step {state.next_step}, got {step}"
            )  # fmt: skip
        state.next_step = step + 1
        state.open = not is_last
        self.accepted += 1
        return Decision(verdict, abandoned, reason, notice)
