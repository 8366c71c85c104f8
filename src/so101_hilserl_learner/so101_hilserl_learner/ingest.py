"""From the transition stream to the replay buffers: validation, ordering, episodes, intervention segments.

Pure logic (no ROS graph): the learner node calls ``ingest`` for each received message, and replays its journal
through the same function after a restart, which rebuilds the buffers exactly; so every decision here depends on the
messages alone, never on a clock. Several actors may interleave: steps are staged per actor and committed when the
episode closes. Every step goes to the online buffer, every intervention segment to the demonstration buffer
(``TransitionIngest`` has the rules).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from rclpy.serialization import deserialize_message

from so101_contract.settings import setting
from so101_hilserl_core.messages import MessageFormatError, check_transition, observation_from_msg
from so101_hilserl_interfaces.msg import Transition
from so101_hilserl_learner.replay import ReplayBuffer
from so101_hilserl_learner.sequencer import TransitionSequencer, Verdict


def max_message_bytes(image_size: int) -> int:
    """A generous bound on a serialized Transition of ``image_size`` images (two rgb8 images and small fields):
    bigger bytes are refused before they are deserialized."""
    return 4 * 2 * image_size * image_size * 3 + 64 * 1024


def decode_transition(raw: bytes, limit: int) -> Transition:
    """Serialized bytes -> Transition; MessageFormatError (naming the problem) for oversized or malformed CDR."""
    if len(raw) > limit:
        raise MessageFormatError(f"{len(raw)} bytes, more than the {limit} a transition of the learner's size takes")
    try:
        return deserialize_message(raw, Transition)
    except Exception as err:  # rclpy raises RMWError (and others) for truncated or garbled CDR
        raise MessageFormatError(
            f"{len(raw)} bytes that are not a Transition ({type(err).__name__}: {' '.join(str(err).split())[:160]})"
        ) from None


@dataclass
class CheckedTransition:
    """A message that passed every check that needs no history, with its decoded observations."""

    msg: Transition
    frame: np.ndarray
    state: np.ndarray
    final: tuple[np.ndarray, np.ndarray] | None  # the next observation of an episode's last step


def check_message(msg: Transition, image_size: int) -> CheckedTransition:
    """Every check of one message that needs no history (fields, image size, finite values): MessageFormatError
    naming the message and the field. What the learner refuses, the journal tools drop."""
    try:
        check_transition(msg)
        frame, state = observation_from_msg(msg.observation, image_size)
        final = None
        if msg.terminated or msg.truncated:
            final = observation_from_msg(msg.next_observation[0], image_size, "next_observation")
    except MessageFormatError as err:
        raise MessageFormatError(f"actor {msg.actor_id!r} episode {msg.episode_id} step {msg.step}: {err}") from None
    return CheckedTransition(msg, frame, state, final)


@dataclass
class _Step:
    frame: np.ndarray
    state: np.ndarray
    action: np.ndarray
    reward: float
    intervention: bool


@dataclass
class _Episode:
    episode_id: int
    evaluation: bool
    steps: list[_Step] = field(default_factory=list)
    context: int = 0  # leading steps that are stack context only (a segment resumed after a gap)
    resumed: bool = False  # a later segment of an episode already counted


@dataclass
class IngestCounters:
    received: int = 0
    accepted: int = 0
    invalid: int = 0
    episodes: int = 0
    evaluation_episodes_skipped: int = 0
    intervention_steps: int = 0
    training_transitions: int = 0  # committed to the online buffer (complete (o, a, r, o') samples)
    expired_episodes: int = 0  # staged episodes of actors that went silent mid-episode


@dataclass(frozen=True)
class IngestConfig:
    """What the ingest trains on and when it gives up on a silent actor (the learner node's parameters)."""

    stale_episode_transitions: int = setting(
        1000, "a staged episode is cut after this many messages of other actors", (1, 10**9)
    )
    train_on_evaluation: bool = setting(False, "also train on deterministic evaluation episodes")


class TransitionIngest:
    """One actor-interleaved transition stream into the online and the demonstration buffer.

    - Bytes are deserialized and checked (size, fields, image size, finite values) before anything else (``receive``):
      a message that fails is counted and changes nothing else, so it is never journaled and a journal replay without
      it rebuilds the same buffers; the hole it leaves is cut by the sequencer at that actor's next message.
    - A copy of what was handled already (the sequencer's DUPLICATE or STALE, e.g. a transient-local backlog
      re-delivered to a restarted learner) is counted and not recorded again (``receive``'s ``record`` is not called).
    - Order is checked per actor (TransitionSequencer): a lost, duplicated or reordered message never yields a wrong
      stack or next observation. A gap cuts the segment before it (counted) and the episode goes on in a new segment
      whose first ``frame_stack - 1`` steps are stack context only: what is lost is exactly the transitions that need
      a missing step (the one before the gap, the missing ones, and those whose stack holds a missing frame).
    - Steps are staged per actor and committed when the episode closes (or breaks), so several actors can interleave.
      An actor that goes silent mid-episode (stopped, or restarted under a new id) has its staged episode committed as
      broken once ``stale_after`` new messages of other actors (not refused, not copies: what the journal holds)
      arrived without one of its own: a count, not a clock, so replaying the journal rebuilds the same buffers.
    - ``counters.training_transitions`` counts the transitions committed to the online buffer (evaluation episodes
      excluded unless trained on): the exploration schedule's step and the UTD budget's data.
    - Online buffer: every step of an episode. Demo buffer: every intervention segment, started with the frames that
      preceded it (so its first stacks are what the actor saw), bootstrapping from the observation where the person let
      go. Evaluation episodes are not trained on unless asked.
    - Monte-Carlo returns-to-go (replay.py) are the episode's: a segment's continue with what the episode earned after
      the person let go. The buffers compute them, so a journal replay recomputes them.
    """

    def __init__(
        self,
        online: ReplayBuffer,
        demo: ReplayBuffer,
        image_size: int = 84,
        frame_stack: int = 3,
        train_on_evaluation: bool = IngestConfig.train_on_evaluation,
        stale_after: int = IngestConfig.stale_episode_transitions,
    ):
        if stale_after < 1:
            raise ValueError(f"TransitionIngest: stale_after must be >= 1, got {stale_after}")
        self.online, self.demo = online, demo
        self.stale_after = stale_after
        self.image_size = image_size
        self.frame_stack = frame_stack
        self.train_on_evaluation = train_on_evaluation
        self.sequencer = TransitionSequencer()
        self.counters = IngestCounters()
        self._staged: dict[str, _Episode] = {}
        self.max_message_bytes = max_message_bytes(image_size)
        # Messages that change the stream's state, counted: the clock of silent-actor expiry. Rejected messages
        # and copies do not tick it, so replaying a journal (which holds neither) ticks it the same way.
        self._clock = 0
        self._last_seen: dict[str, int] = {}  # actor id -> self._clock at its newest message
        self.last_problem = ""
        self.expired: list[str] = []  # descriptions of expired episodes since the caller last cleared it
        self.notices: list[str] = []  # re-based actor streams since the caller last cleared it

    @property
    def dropped(self) -> int:
        s = self.sequencer
        return self.counters.invalid + s.duplicates + s.stale + s.dropped_after_break + s.implausible

    def check(self, msg: Transition) -> CheckedTransition:
        """The checks that need no history; raises MessageFormatError naming the field. Changes nothing."""
        return check_message(msg, self.image_size)

    def reject(self, problem: str) -> None:
        """Count a message that failed its checks; nothing else changes."""
        self.counters.received += 1
        self.counters.invalid += 1
        self.last_problem = problem

    def is_copy(self, item: CheckedTransition) -> bool:
        """Already handled (a duplicate, or late for an episode that is over): recording it again adds nothing."""
        m = item.msg
        return self.sequencer.known(m.actor_id, int(m.episode_id), int(m.step))

    def receive(self, raw: bytes, record: Callable[[bytes], None] | None = None) -> Verdict | None:
        """The one path from bytes to the buffers, live, from the journal and from a bag. Bad bytes are counted
        (None; ``last_problem`` says why); a copy is counted (DUPLICATE/STALE); anything else is handed to
        ``record`` (the journal's append) and then handled, so what is recorded is exactly what is handled."""
        try:
            item = self.check(decode_transition(raw, self.max_message_bytes))
        except MessageFormatError as err:
            self.reject(str(err))
            return None
        if record is not None and not self.is_copy(item):
            record(raw)
        return self.ingest(item)

    def ingest(self, message: Transition | CheckedTransition) -> Verdict | None:
        """Handle one message; returns the sequencer's verdict, or None for a message that failed validation."""
        if isinstance(message, CheckedTransition):
            item = message
        else:
            try:
                item = self.check(message)
            except MessageFormatError as err:
                self.reject(str(err))  # invisible to the stream: the hole is cut at the actor's next message
                return None
        msg, frame, state, final = item.msg, item.frame, item.state, item.final
        self.counters.received += 1
        is_last = bool(msg.terminated or msg.truncated)
        if self.is_copy(item):  # counted by the sequencer, changes nothing
            return self.sequencer.push(msg.actor_id, int(msg.episode_id), int(msg.step), is_last).verdict
        self._clock += 1
        self._last_seen[msg.actor_id] = self._clock
        self._expire_silent_actors()

        decision = self.sequencer.push(msg.actor_id, int(msg.episode_id), int(msg.step), is_last)
        if decision.notice:
            self.notices.append(decision.notice)
        if decision.verdict is Verdict.IMPLAUSIBLE:
            self.last_problem = f"actor {msg.actor_id!r}: {decision.reason}"
            return decision.verdict
        if decision.abandoned_episode is not None:
            self.last_problem = f"actor {msg.actor_id!r}: episode {decision.abandoned_episode} never closed"
            self._break(msg.actor_id)
        if decision.verdict is Verdict.GAP:
            self.last_problem = f"actor {msg.actor_id!r}: {decision.reason}"
            resumed = msg.actor_id in self._staged
            self._break(msg.actor_id)  # the segment before the gap, cut
            context = self.frame_stack - 1
            self._staged[msg.actor_id] = _Episode(int(msg.episode_id), bool(msg.evaluation), [], context, resumed)
        elif decision.verdict is not Verdict.ACCEPT:
            return decision.verdict

        self.counters.accepted += 1
        if msg.step == 0:
            self._staged[msg.actor_id] = _Episode(int(msg.episode_id), bool(msg.evaluation))
        episode = self._staged[msg.actor_id]
        action = np.asarray(msg.action, dtype=np.float32)
        episode.steps.append(_Step(frame.copy(), state, action, float(msg.reward), bool(msg.intervention)))
        if is_last:
            del self._staged[msg.actor_id]
            self._commit(episode, final, terminated=bool(msg.terminated))
        return decision.verdict

    def _expire_silent_actors(self) -> None:
        now = self._clock
        for actor_id in [a for a in self._staged if now - self._last_seen.get(a, now) > self.stale_after]:
            episode = self._staged[actor_id]
            self.sequencer.expire(actor_id)
            self.counters.expired_episodes += 1
            self.expired.append(
                f"actor {actor_id!r} episode {episode.episode_id}: silent for {self.stale_after} messages after "
                f"step {len(episode.steps) - 1}; its {len(episode.steps)} steps committed as a cut episode"
            )
            self._break(actor_id)

    @property
    def staged_episodes(self) -> int:
        return len(self._staged)

    def _break(self, actor_id: str) -> None:
        episode = self._staged.pop(actor_id, None)
        if episode is not None and episode.steps:
            self._commit(episode, None, terminated=False)

    def _commit(self, episode: _Episode, final: tuple[np.ndarray, np.ndarray] | None, terminated: bool) -> None:
        """Write a staged episode (or a segment of one, after a gap) to the buffers. ``final`` None: it broke; its
        last step has no next observation."""
        if not episode.resumed:
            self.counters.episodes += 1
        if episode.evaluation and not self.train_on_evaluation:
            self.counters.evaluation_episodes_skipped += 0 if episode.resumed else 1
            return
        steps, first = episode.steps, min(episode.context, len(episode.steps))
        samples = len(steps) - first
        # a cut episode's last step has no next observation: it cannot become a sample
        self.counters.training_transitions += samples if final is not None else max(samples - 1, 0)
        self.online.begin_sequence([s.frame for s in steps[:first]], [s.state for s in steps[:first]])
        for step in steps[first:]:
            self.online.add(step.frame, step.state, step.action, step.reward, step.intervention)
        if final is None:
            self.online.abort_sequence()
        else:
            self.online.end_sequence(final[0], final[1], terminated)

        # G[i]: the episode's discounted return from step i on; a segment that ends before the episode adds G[end]
        returns_to_go = [0.0] * (len(steps) + 1)
        for index in range(len(steps) - 1, -1, -1):
            returns_to_go[index] = steps[index].reward + self.demo.discount * returns_to_go[index + 1]
        start = None
        for index in range(first, len(steps) + 1):
            inside = index < len(steps) and steps[index].intervention
            if inside and start is None:
                start = index
            elif not inside and start is not None:
                self._commit_segment(steps, start, index, final, terminated, returns_to_go[index])
                start = None

    def _commit_segment(self, steps, start: int, end: int, final, terminated: bool, return_after: float) -> None:
        """Intervention steps [start, end) into the demo buffer, with the frames before them as stack context.
        ``return_after``: the episode's discounted return from step ``end`` on (for the returns-to-go)."""
        self.counters.intervention_steps += end - start
        context = steps[max(0, start - (self.frame_stack - 1)) : start]
        self.demo.begin_sequence([s.frame for s in context], [s.state for s in context])
        for step in steps[start:end]:
            self.demo.add(step.frame, step.state, step.action, step.reward, True)
        if end < len(steps):  # the person let go: bootstrap from the observation the policy took over at
            exact = final is not None and terminated  # the episode's return is known only if it terminated
            self.demo.end_sequence(steps[end].frame, steps[end].state, False, return_after, exact_return=exact)
        elif final is not None:  # the episode ended during the intervention
            self.demo.end_sequence(final[0], final[1], terminated)
        else:  # broke during the intervention: the last step cannot be completed
            self.demo.abort_sequence()
