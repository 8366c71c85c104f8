"""Image replay buffer for HIL-SERL: each frame stored once as uint8, stacks and n-step targets rebuilt by index.

Not LeRobot's buffer, which stores float32 images (4x the bytes), bootstraps a time-limit step from the *next
episode's* first observation and glues intervention steps of different segments together. Here data arrives as
sequences (an episode; for the demonstration buffer an intervention segment), stacks never reach across a sequence
start, n-step targets never mix the human's and the policy's actions, and ``MixedSampler`` makes HIL-SERL's draw
from the online and the demonstration buffer. The buffers persist through the learner's journal (journal.py).
"""

from __future__ import annotations

import math
import threading
from collections import deque
from dataclasses import dataclass, fields
from typing import Any, NamedTuple

import numpy as np

from so101_contract.settings import setting


@dataclass(frozen=True)
class ReplayConfig:
    """The learner's buffers and its draw from them (the learner node's parameters of the same names)."""

    batch_size: int = setting(256, "transitions per update", (1, 65_536))
    online_capacity: int = setting(100_000, "transitions kept in the online buffer", (1, 10**9))
    demo_capacity: int = setting(20_000, "transitions kept in the demonstration buffer", (1, 10**9))
    demo_fraction: float = setting(0.5, "share of each batch drawn from the demonstration buffer (one row per "
                                   "transition it holds while it holds fewer)", (0.0, 1.0))  # fmt: skip
    nstep: int = setting(3, "n of the n-step returns", (1, 100))
    discount: float = setting(0.99, "discount factor", (0.0, 1.0))


@dataclass
class Batch:
    """One training batch. Pixels are uint8, channels = frames oldest..newest, each frame's channels (RGB) in order."""

    pixels: Any  # (B, S*C, H, W) uint8
    state: Any  # (B, S*state_dim) float32, frames oldest..newest
    action: Any  # (B, action_dim) float32
    reward: Any  # (B,) float32, n-step discounted return sum_{i<k} gamma^i r_{t+i}
    discount: Any  # (B,) float32, gamma^k, 0 when the sequence terminated inside the window
    next_pixels: Any  # (B, S*C, H, W) uint8, the stacked bootstrap observation o_{t+k}
    next_state: Any  # (B, S*state_dim) float32
    intervention: Any  # (B,) bool, the action was the human's
    mc_return: Any  # (B,) float32, exact discounted Monte-Carlo return-to-go; NaN while open or when not exact
    from_demo: Any  # (B,) bool, drawn from the demonstration buffer (MixedSampler)

    def __len__(self) -> int:
        return len(self.reward)

    def to_torch(self, device: Any = None, non_blocking: bool = False) -> Batch:
        """The same batch as torch tensors (pixels stay uint8; the encoder scales them).

        On CPU the tensors share memory with the numpy arrays: do not refill this batch (``sample(out=...)``)
        while the tensors are still in use.
        """
        import torch

        def conv(array: np.ndarray) -> Any:
            tensor = torch.from_numpy(array)
            return tensor if device is None else tensor.to(device, non_blocking=non_blocking)

        return Batch(**{f.name: conv(getattr(self, f.name)) for f in fields(self)})


def empty_batch(
    batch_size: int, frame_shape=(84, 84, 3), state_dim: int = 18, action_dim: int = 4, frame_stack: int = 3
) -> Batch:
    """Preallocated output arrays for ``ReplayBuffer.sample(..., out=...)`` (frame_shape is HWC)."""
    height, width, channels = frame_shape
    pix = (batch_size, frame_stack * channels, height, width)
    return Batch(
        pixels=np.empty(pix, np.uint8),
        state=np.empty((batch_size, frame_stack * state_dim), np.float32),
        action=np.empty((batch_size, action_dim), np.float32),
        reward=np.empty(batch_size, np.float32),
        discount=np.empty(batch_size, np.float32),
        next_pixels=np.empty(pix, np.uint8),
        next_state=np.empty((batch_size, frame_stack * state_dim), np.float32),
        intervention=np.empty(batch_size, np.bool_),
        mc_return=np.empty(batch_size, np.float32),
        from_demo=np.empty(batch_size, np.bool_),
    )


def random_batch(batch_size: int, config, seed: int = 0) -> Batch:
    """A batch of random data in a policy's shapes (``config`` a PolicyConfig), for tests and benchmarks."""
    rng = np.random.default_rng(seed)
    size = config.image_size
    batch = empty_batch(batch_size, (size, size, config.image_channels), config.state_dim, config.action_dim,
                        config.frame_stack)  # fmt: skip
    batch.pixels[:] = rng.integers(0, 256, batch.pixels.shape, dtype=np.uint8)
    batch.next_pixels[:] = rng.integers(0, 256, batch.next_pixels.shape, dtype=np.uint8)
    batch.state[:] = rng.normal(size=batch.state.shape)
    batch.next_state[:] = rng.normal(size=batch.next_state.shape)
    batch.action[:] = rng.uniform(-1, 1, batch.action.shape)
    batch.reward[:] = rng.normal(size=batch_size)
    batch.discount[:] = 0.99**3
    batch.intervention[:] = False
    batch.mc_return[:] = rng.normal(size=batch_size)
    batch.from_demo[:] = False
    return batch


class _Step(NamedTuple):
    t: int  # step index inside the sequence (o_t is frame obs0 + t)
    action: np.ndarray
    reward: float
    intervention: bool


class ReplayBuffer:
    """Ring buffer of transitions over a ring of uint8 frames.

    * Every frame (and its state vector) is written once into a frame ring. A transition holds the frame numbers
      ("serials") of its stacked observation and of its stacked bootstrap observation, computed when its target becomes
      known. ``sample()`` is then a handful of vectorised gathers into output arrays; no Python loop over the batch.
    * Frames are kept channel-first (C, H, W) inside the store. They arrive HWC (as the camera pipeline makes them) and
      are transposed once at ``add`` time, so a sampled stack is a plain contiguous copy into the (B, S*C, H, W) output
      the encoder wants. Same bytes as HWC; the transpose at sample time would cost 4x the gather.
    * Data arrives as *sequences* (an episode; for the demonstration buffer an intervention segment). Stacks never reach
      across a sequence start: there the earliest frame is repeated, the rule of the actor's one frame stack
      (so101_hilserl_core.observation.FrameStack; these index-rebuilt stacks are storage, not acting, and
      test_replay checks they equal FrameStack's), unless the caller passes the frames that preceded the segment
      (``context_frames``) so the stacks equal what the actor saw.
    * Buffers persist through the learner's transition journal (journal.py), replayed into fresh buffers on restart.
    * n-step windows stop at the end of the sequence and where the intervention flag changes (the human's and the
      policy's actions are never mixed in one target). A window that reaches a terminal end gets discount 0; one that
      reaches a time-limit end bootstraps from the stored final observation with gamma^k.
    * Every transition also carries its discounted Monte-Carlo return-to-go (to its sequence's end, plus the caller's
      ``return_after``), set when the sequence ends (NaN before) and so rebuilt from the journal: a diagnostic to read Q
      against, never a target; after a time limit or a broken stream it is the partial sum, a lower bound.
    * Capacity counts transitions. When full, the oldest transition is dropped; the frame ring keeps every frame any
      stored transition still references and grows (rarely; e.g. for many short demonstration segments) rather than
      overwrite one, so the frame store never limits the transition count and no sample reads an overwritten frame.

    Streaming use, one call per incoming transition, in order::

        buf.begin_sequence()                       # or begin_sequence(context_frames, context_states)
        buf.add(frame_t, state_t, action_t, reward_t, intervention_t)   # o_t, a_t, r_t  (repeat)
        buf.end_sequence(frame_T, state_T, terminated)                  # or abort_sequence()

    A transition becomes sampleable once its n-step window is complete. Thread-safe: adds and samples may come
    from different threads.
    """

    def __init__(
        self,
        capacity: int,
        frame_shape=(84, 84, 3),
        state_dim: int = 18,
        action_dim: int = 4,
        frame_stack: int = 3,
        nstep: int = ReplayConfig.nstep,
        discount: float = ReplayConfig.discount,
        seed: int = 0,
        frame_capacity: int | None = None,
    ):
        if int(capacity) < 1:
            raise ValueError(f"capacity must be >= 1 transition, got {capacity}")
        if len(frame_shape) != 3 or min(frame_shape) < 1:
            raise ValueError(f"frame_shape must be (height, width, channels), got {frame_shape}")
        if frame_stack < 1 or nstep < 1 or state_dim < 0 or action_dim < 1:
            raise ValueError(
                f"need frame_stack >= 1, nstep >= 1, state_dim >= 0, action_dim >= 1; got frame_stack={frame_stack}, "
                f"nstep={nstep}, state_dim={state_dim}, action_dim={action_dim}"
            )
        if not 0.0 < discount <= 1.0:
            raise ValueError(f"discount must be in (0, 1], got {discount}")
        self.capacity = int(capacity)
        self.frame_shape = tuple(int(v) for v in frame_shape)
        self.state_dim = int(state_dim)
        self.action_dim = int(action_dim)
        self.frame_stack = int(frame_stack)
        self.nstep = int(nstep)
        self.discount = float(discount)
        self._lock = threading.RLock()
        self._rng = np.random.default_rng(seed)
        # Offsets of the stack relative to its newest frame, oldest first: [S-1, ..., 1, 0].
        self._offsets = np.arange(self.frame_stack - 1, -1, -1, dtype=np.int64)
        self._gamma_pow = self.discount ** np.arange(self.nstep + 1, dtype=np.float64)

        # Frame ring. 100-step episodes need 1.01 frames per transition; the margin covers the open sequence.
        if frame_capacity is None:
            frame_capacity = math.ceil(1.02 * self.capacity) + 2 * (self.frame_stack + self.nstep + 1)
        height, width, channels = self.frame_shape
        self._frames = np.zeros((int(frame_capacity), channels, height, width), np.uint8)
        self._states = np.zeros((int(frame_capacity), self.state_dim), np.float32)
        self._next_serial = 0  # serial number of the next frame written; frame s lives at s % frame_capacity

        # Transition ring: transition serials [tail, head) are stored, at position serial % capacity.
        cap, stack = self.capacity, self.frame_stack
        self._obs_idx = np.zeros((cap, stack), np.int64)  # frame serials of the stacked o_t, oldest first
        self._next_idx = np.zeros((cap, stack), np.int64)  # frame serials of the stacked o_{t+k}
        self._action = np.zeros((cap, self.action_dim), np.float32)
        self._reward = np.zeros(cap, np.float32)  # n-step return
        self._disc = np.zeros(cap, np.float32)  # gamma^k or 0
        self._intervention = np.zeros(cap, np.bool_)
        self._k = np.zeros(cap, np.uint8)  # window length, for diagnostics
        self._mc_return = np.zeros(cap, np.float32)  # return-to-go, NaN until the sequence ends
        self._tail = 0
        self._head = 0

        # The open sequence.
        self._open = False
        self._seq_first = 0  # serial of its first frame (context or o_0)
        self._obs0 = 0  # serial of o_0
        self._n_added = 0
        self._pending: deque[_Step] = deque()  # steps whose n-step window is not complete yet
        self._seq_head = 0  # transition serial of the open sequence's step 0 (steps are stored in order)
        self._seq_rewards: list[float] = []  # every reward of the open sequence, for the returns-to-go

    @classmethod
    def for_policy(
        cls,
        policy_config,
        capacity: int,
        nstep: int = ReplayConfig.nstep,
        discount: float = ReplayConfig.discount,
        seed: int = 0,
        state_dim: int | None = None,
    ) -> ReplayBuffer:
        """The buffer for a policy's observations and actions (``policy_config`` a PolicyConfig): its image size and
        channels, action size and frame stack. ``state_dim``: the per-frame state the data carries, by default the
        policy's; the graph's messages always carry the full STATE_DIM (a pixels-only network ignores it). The one
        way the learner node, the bag importer and the pixel-task trainer build their buffers."""
        size = policy_config.image_size
        return cls(
            capacity, (size, size, policy_config.image_channels),
            policy_config.state_dim if state_dim is None else state_dim, policy_config.action_dim,
            policy_config.frame_stack, nstep, discount, seed=seed,
        )  # fmt: skip

    # ------------------------------------------------------------------ sizes
    def __len__(self) -> int:
        return self._head - self._tail

    @property
    def frame_capacity(self) -> int:
        return len(self._frames)

    @property
    def nbytes(self) -> int:
        arrays = (self._frames, self._states, self._obs_idx, self._next_idx, self._action, self._reward)
        arrays += (self._disc, self._intervention, self._k, self._mc_return)
        return int(sum(a.nbytes for a in arrays))

    @property
    def sequence_open(self) -> bool:
        return self._open

    # ------------------------------------------------------------------ streaming
    def begin_sequence(self, context_frames=(), context_states=()) -> None:
        """Start a sequence. ``context_*``: frames/states that precede its first observation (only the newest
        frame_stack-1 matter and are kept), so stacks near the start are exactly what the actor saw."""
        with self._lock:
            if self._open:
                raise RuntimeError(
                    "begin_sequence: a sequence is still open; call end_sequence or abort_sequence first"
                )
            if len(context_frames) != len(context_states):
                raise ValueError(
                    f"begin_sequence: {len(context_frames)} context_frames but {len(context_states)} context_states; "
                    "pass one state per frame"
                )
            keep = self.frame_stack - 1
            context = (
                list(zip(context_frames, context_states, strict=True))[len(context_frames) - keep :] if keep else []
            )
            self._open = True
            self._seq_first = self._next_serial
            self._obs0 = self._next_serial + len(context)
            self._n_added = 0
            self._pending.clear()
            self._seq_head = self._head
            self._seq_rewards = []
            for frame, state in context:
                self._write_frame(frame, state)

    def add(self, frame, state, action, reward, intervention: bool) -> None:
        """Observation o_t, the action a_t taken from it and the reward r_t that followed."""
        with self._lock:
            if not self._open:
                raise RuntimeError("add: no open sequence; call begin_sequence first")
            action = np.asarray(action, np.float32)
            if action.shape != (self.action_dim,):
                raise ValueError(f"add: action must have shape ({self.action_dim},), got {action.shape}")
            if not (np.all(np.isfinite(action)) and math.isfinite(float(reward))):
                raise ValueError(f"add: action and reward must be finite, got action={action}, reward={reward}")
            self._write_frame(frame, state)
            self._pending.append(_Step(self._n_added, action.copy(), float(reward), bool(intervention)))
            self._seq_rewards.append(float(reward))
            self._n_added += 1
            self._finalize(end=None, terminated=False)

    def end_sequence(
        self, next_frame, next_state, terminated: bool, return_after: float = 0.0, exact_return: bool | None = None
    ) -> None:
        """Close the sequence with the observation after its last step.

        terminated=True: the task ended (success); no bootstrapping from it. False: time limit, or the end of an
        intervention segment: targets bootstrap from it. ``return_after``: the discounted return the episode
        earned from ``next_frame`` on (an intervention segment's continuation; 0 at an episode's end), added to
        the Monte-Carlo returns-to-go only. ``exact_return`` (default: ``terminated``): whether those returns are
        the episode's whole return; after a time limit they are a partial sum and stay NaN (unknown), so the Q
        diagnostics compare the critic with true returns only.
        """
        with self._lock:
            if not self._open:
                raise RuntimeError("end_sequence: no open sequence; call begin_sequence first")
            if not math.isfinite(float(return_after)) or (terminated and return_after != 0.0):
                raise ValueError(f"end_sequence: return_after must be finite, and 0 when terminated: {return_after}")
            if self._n_added == 0:
                self._rollback()
                return
            self._write_frame(next_frame, next_state)
            self._finalize(end=self._n_added, terminated=bool(terminated))
            if terminated if exact_return is None else exact_return:
                self._write_returns(float(return_after))
            self._open = False

    def abort_sequence(self) -> None:
        """The stream broke: close the open sequence without a next observation (no-op if none is open).

        The last step lacks o_{T+1} and is discarded; its frame becomes the final observation of the others, whose
        windows are cut there (valid, shorter n-step targets bootstrapping from it).
        """
        with self._lock:
            if not self._open:
                return
            if self._n_added <= 1:
                self._rollback()
                return
            self._pending.pop()
            self._finalize(end=self._n_added - 1, terminated=False)
            self._open = False  # the episode's return is unknown: its rows' Monte-Carlo returns stay NaN

    # ------------------------------------------------------------------ sampling
    def sample(self, batch_size: int, out: Batch | None = None) -> Batch:
        """Uniformly drawn transitions. ``out`` (from ``empty_batch`` or a previous call) is filled in place."""
        with self._lock:
            out = self.empty_batch(batch_size) if out is None else self._check_out(out, batch_size)
            self._sample_into(out, 0, batch_size)
            return out

    def empty_batch(self, batch_size: int) -> Batch:
        return empty_batch(batch_size, self.frame_shape, self.state_dim, self.action_dim, self.frame_stack)

    def _check_out(self, out: Batch, batch_size: int) -> Batch:
        """Samples are written through reshaped views: ``out`` must be contiguous numpy arrays of the right layout."""
        template = empty_batch(0, self.frame_shape, self.state_dim, self.action_dim, self.frame_stack)
        for f in fields(Batch):
            got, want = getattr(out, f.name), getattr(template, f.name)
            if not (
                isinstance(got, np.ndarray)
                and got.flags.c_contiguous
                and got.dtype == want.dtype
                and got.shape == (batch_size, *want.shape[1:])
            ):
                raise ValueError(
                    f"sample: out.{f.name} must be a C-contiguous numpy {want.dtype} array of shape "
                    f"{(batch_size, *want.shape[1:])}; make it with empty_batch({batch_size})"
                )
        return out

    def rows(self, first: int, count: int) -> Batch:
        """The stored transitions ``first`` .. ``first + count - 1`` in the order they were stored (0 = the oldest
        still held): for evaluating a critic on the buffer's own rows."""
        with self._lock:
            if not 0 <= first <= first + count <= len(self):
                raise IndexError(f"rows {first}..{first + count - 1} of a buffer holding {len(self)}")
            out = self.empty_batch(count)
            self._gather_into(out, 0, (self._tail + first + np.arange(count)) % self.capacity)
            return out

    def _sample_into(self, out: Batch, start: int, count: int, from_demo: bool = False) -> None:
        with self._lock:
            if count == 0:
                return
            if len(self) == 0:
                raise ValueError("sample: the buffer holds no complete transition yet; check len(buffer) first")
            pos = (self._tail + self._rng.integers(0, len(self), size=count)) % self.capacity
            self._gather_into(out, start, pos, from_demo)

    def _gather_into(self, out: Batch, start: int, pos: np.ndarray, from_demo: bool = False) -> None:
        """Rows at buffer positions ``pos`` into ``out[start:start + len(pos)]`` (the lock is held)."""
        height, width, channels = self.frame_shape
        count = len(pos)
        stop, stack, dim = start + count, self.frame_stack, self.state_dim
        fcap = len(self._frames)
        for idx_table, pix, st in (
            (self._obs_idx, out.pixels, out.state),
            (self._next_idx, out.next_pixels, out.next_state),
        ):
            frame_idx = (idx_table[pos] % fcap).ravel()
            # mode="wrap" (indices are in range anyway) avoids numpy's buffered copy for out= with mode="raise".
            np.take(
                self._frames,
                frame_idx,
                axis=0,
                out=pix[start:stop].reshape(count * stack, channels, height, width),
                mode="wrap",
            )
            np.take(self._states, frame_idx, axis=0, out=st[start:stop].reshape(count * stack, dim), mode="wrap")
        np.take(self._action, pos, axis=0, out=out.action[start:stop], mode="wrap")
        np.take(self._reward, pos, out=out.reward[start:stop], mode="wrap")
        np.take(self._disc, pos, out=out.discount[start:stop], mode="wrap")
        np.take(self._intervention, pos, out=out.intervention[start:stop], mode="wrap")
        np.take(self._mc_return, pos, out=out.mc_return[start:stop], mode="wrap")
        out.from_demo[start:stop] = from_demo

    # ------------------------------------------------------------------ internals
    def _write_frame(self, frame, state) -> int:
        frame = np.asarray(frame)
        if frame.dtype != np.uint8 or frame.shape != self.frame_shape:
            raise ValueError(
                f"frame must be uint8 with shape {self.frame_shape} (HWC), got {frame.dtype} {frame.shape}; "
                "store camera pixels as they come, the encoder scales them"
            )
        state = np.asarray(state, np.float32)
        if state.shape != (self.state_dim,) or not np.all(np.isfinite(state)):
            raise ValueError(f"state must be {self.state_dim} finite floats, got shape {state.shape}: {state}")
        serial = self._next_serial
        if serial - self._oldest_live_frame() >= len(self._frames):
            self._grow_frames()
        slot = serial % len(self._frames)
        self._frames[slot] = frame.transpose(2, 0, 1)
        self._states[slot] = state
        self._next_serial = serial + 1
        return serial

    def _oldest_live_frame(self) -> int:
        """Serial of the oldest frame that a stored transition or the open sequence may still reference."""
        oldest = self._next_serial
        if len(self):
            oldest = int(self._obs_idx[self._tail % self.capacity, 0])
        if self._open:
            first_open_step = self._pending[0].t if self._pending else self._n_added
            oldest = min(oldest, max(self._seq_first, self._obs0 + first_open_step - (self.frame_stack - 1)))
        return oldest

    def _grow_frames(self) -> None:
        """Enlarge the frame ring, keeping every live frame (a rare event: sequences much shorter than usual)."""
        oldest = self._oldest_live_frame()
        old_cap = len(self._frames)
        new_cap = max(old_cap + old_cap // 4, self._next_serial - oldest + 1) + self.frame_stack + self.nstep + 1
        serials = np.arange(oldest, self._next_serial, dtype=np.int64)
        frames = np.zeros((new_cap, *self._frames.shape[1:]), np.uint8)
        states = np.zeros((new_cap, self.state_dim), np.float32)
        frames[serials % new_cap] = self._frames[serials % old_cap]
        states[serials % new_cap] = self._states[serials % old_cap]
        self._frames, self._states = frames, states

    def _rollback(self) -> None:
        """Close a sequence that produced no transition and free its frames (nothing references them)."""
        self._next_serial = self._seq_first
        self._pending.clear()
        self._open = False

    def _finalize(self, end: int | None, terminated: bool) -> None:
        """Store every pending step whose n-step window is now known. ``end``: sequence length T when closed."""
        pending = self._pending
        while pending:
            first = pending[0]
            known = len(pending)  # steps first.t .. first.t + known - 1 have been added
            k, cut = 0, False
            while k < self.nstep and k < known:
                if pending[k].intervention != first.intervention:
                    cut = True  # the window stops where control changes hands
                    break
                k += 1
            # Complete when cut, when the sequence ended, or when o_{t+n} has arrived (step t+n added).
            if not (cut or end is not None or (k == self.nstep and k < known)):
                return
            ret = sum(self._gamma_pow[i] * pending[i].reward for i in range(k))
            boot = first.t + k
            disc = 0.0 if (terminated and end is not None and boot == end) else self._gamma_pow[k]
            self._store_transition(first, boot, ret, disc, k)
            pending.popleft()

    def _write_returns(self, return_after: float) -> None:
        """The sequence is over: every stored step's return-to-go G_t = r_t + gamma G_{t+1}, G_T = return_after."""
        returns = np.empty(len(self._seq_rewards), np.float64)
        ret = return_after
        for t in range(len(returns) - 1, -1, -1):
            ret = self._seq_rewards[t] + self.discount * ret
            returns[t] = ret
        serials = np.arange(self._seq_head, self._head)
        live = serials >= self._tail  # a sequence longer than the capacity has pushed out its own first steps
        self._mc_return[serials[live] % self.capacity] = returns[: len(serials)][live]

    def _store_transition(self, step: _Step, boot: int, ret: float, disc: float, k: int) -> None:
        if len(self) == self.capacity:
            self._tail += 1  # drop the oldest; its frames become free once nothing newer references them
        pos = self._head % self.capacity
        self._obs_idx[pos] = np.maximum(self._obs0 + step.t - self._offsets, self._seq_first)
        self._next_idx[pos] = np.maximum(self._obs0 + boot - self._offsets, self._seq_first)
        self._action[pos] = step.action
        self._reward[pos] = ret
        self._disc[pos] = disc
        self._intervention[pos] = step.intervention
        self._k[pos] = k
        self._mc_return[pos] = np.nan
        self._head += 1

    # ------------------------------------------------------------------ checkpoints


class MixedSampler:
    """The HIL-SERL (RLPD) draw: a fixed share of every batch from the demonstration buffer, the rest online.

    Online rows first, then demonstration rows (``Batch.from_demo``). With B the batch size and f the demo fraction,
    the demonstration rows are ``min(round(B * f), len(demo))``: the full share once the demonstration buffer holds
    that many transitions, before that as many rows as it holds (its share grows in proportion to its size), so a
    buffer of a few dozen transitions is not drawn over and over to fill half of every batch. If either buffer is
    empty, the whole batch comes from the other.
    """

    def __init__(self, online: ReplayBuffer, demo: ReplayBuffer, demo_fraction: float = ReplayConfig.demo_fraction):
        if not 0.0 <= demo_fraction <= 1.0:
            raise ValueError(f"demo_fraction must be in [0, 1], got {demo_fraction}")
        for name in ("frame_shape", "state_dim", "action_dim", "frame_stack"):
            if getattr(online, name) != getattr(demo, name):
                raise ValueError(
                    f"MixedSampler: online {name}={getattr(online, name)} differs from demo {getattr(demo, name)}"
                )
        self.online, self.demo, self.demo_fraction = online, demo, float(demo_fraction)

    def split(self, batch_size: int) -> tuple[int, int]:
        """(online rows, demo rows) for the current buffer contents."""
        if len(self.demo) == 0:
            return batch_size, 0
        if len(self.online) == 0:
            return 0, batch_size
        n_demo = min(round(batch_size * self.demo_fraction), len(self.demo))
        return batch_size - n_demo, n_demo

    def sample(self, batch_size: int, out: Batch | None = None) -> Batch:
        out = self.online.empty_batch(batch_size) if out is None else self.online._check_out(out, batch_size)
        n_online, n_demo = self.split(batch_size)
        self.online._sample_into(out, 0, n_online)
        self.demo._sample_into(out, n_online, n_demo, from_demo=True)
        return out
