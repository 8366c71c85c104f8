"""The learner as plain Python behind the ROS shell learner_node; ``LearnerConfig`` is the one source of its settings.

It is handed transitions and episode outcomes and gives back what is published; its caller's training thread runs
``update()`` while updates are owed (utd.py). It owns its run directory (docs/architecture.md): lock, journal (refused
bytes quarantined), checkpoints, TensorBoard. A start restores the newest good checkpoint or ``initial_weights`` and
replays the journal through the live ingest path (refusing one shorter than the checkpoint); weight versions go on
from the checkpoint's in a new epoch. ``receive``, ``add_episode`` and ``statistics`` run on one thread, ``update``,
``weights`` and ``checkpoint`` on another, sharing the UTD budget under one lock (``on_progress`` is called under it).
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import NamedTuple

import torch

from so101_contract.cpu_allocator import configure_cpu_allocator
from so101_contract.devices import DEFAULT_DEVICE, DEVICES, device_name
from so101_contract.files import atomic_write_text
from so101_contract.outcomes import Outcome
from so101_contract.run_dir import LearnerDir
from so101_contract.settings import ParameterError, setting
from so101_contract.state import STATE_DIM
from so101_hilserl_core import exploration
from so101_hilserl_core.policy import PolicyConfig
from so101_hilserl_core.policy_io import config_differences, policy_to_bytes, semantic_differences, sha256_hex
from so101_hilserl_core.weights_gate import make_epoch
from so101_hilserl_learner import statistics
from so101_hilserl_learner.agent import AgentConfig, DrQV2Agent
from so101_hilserl_learner.checkpoint import (
    DEFAULT_KEEP,
    CheckpointError,
    NonFiniteStateError,
    load_newest_good,
    save_checkpoint,
)
from so101_hilserl_learner.episode_window import EpisodeWindow
from so101_hilserl_learner.ingest import IngestConfig, TransitionIngest
from so101_hilserl_learner.journal import FSYNC_PERIOD_S, Quarantine, TransitionJournal, read_journal
from so101_hilserl_learner.q_diagnostics import GROUPS, QWindow
from so101_hilserl_learner.replay import MixedSampler, ReplayBuffer, ReplayConfig
from so101_hilserl_learner.run_lock import RunDirBusy, RunDirLock
from so101_hilserl_learner.sequencer import Verdict
from so101_hilserl_learner.start_files import check_journal_covers, check_run_dir, load_initial_weights
from so101_hilserl_learner.utd import UtdConfig

RUN_ID_FILE = "run_id"
BEHIND_WARNING_PERIOD_S = 30.0  # the "cannot keep the requested UTD" warning, at most this often (steady clock)


@dataclass(frozen=True)
class LearnerConfig:
    """The learner's settings; the nested configs' are its own too, under their names (so101_contract.settings)."""

    run_dir: str = setting("runs/learner", "directory for the journal, checkpoints and TensorBoard")
    device: str = setting(DEFAULT_DEVICE, "torch device: auto (cuda when present), cpu or cuda", DEVICES)
    network: str = setting("", 'JSON overrides of PolicyConfig fields, e.g. {"hidden": [64, 64]}')
    initial_weights: str = setting("", "agent weights (checkpoint_tool import-robobase output) for a fresh run_dir")
    agent: AgentConfig = field(default_factory=AgentConfig)  # seed, lr, critic_target_tau, stddev_clip
    replay: ReplayConfig = field(default_factory=ReplayConfig)  # batch_size, capacities, demo_fraction, nstep...
    utd: UtdConfig = field(default_factory=UtdConfig)  # utd_ratio, max_backlog_transitions, warmup_transitions
    ingest: IngestConfig = field(default_factory=IngestConfig)  # stale_episode_transitions, train_on_evaluation
    stddev_schedule: str = setting(
        "",
        "the run's exploration std over environment steps, e.g. linear(0.2,0.1,10000); '' = the one the run's "
        f"checkpoint or initial_weights carries, else {exploration.DEFAULT_PRETRAINED_SCHEDULE} with initial_weights, "
        f"{exploration.DEFAULT_SCRATCH_SCHEDULE} from scratch",
    )
    publish_every_updates: int = setting(50, "publish weights after this many updates...", (1, 10**9))
    publish_period_s: float = setting(5.0, "...or this many wall-clock seconds, whichever comes first", (0.01, 86400.0))
    checkpoint_period_s: float = setting(120.0, "wall-clock seconds between checkpoints", (0.01, 86400.0))
    checkpoints_kept: int = setting(
        DEFAULT_KEEP, "newest checkpoints kept (older good ones to fall back to)", (1, 1000)
    )
    debug_poison_after_updates: int = setting(
        0,
        "debug: after this many updates, set the critic's weights to NaN (a diverged run, to test that the learner "
        "exits and keeps its last good checkpoint); 0 = off",
        (0, 10**9),
    )
    stats_period_s: float = setting(
        1.0, "wall-clock seconds between learner_stats messages and TensorBoard scalars", (0.05, 3600.0)
    )
    journal_fsync_period_s: float = setting(
        FSYNC_PERIOD_S, "journal fsync period: the loss window on power failure", (0.0, 3600.0)
    )
    accept_short_journal: bool = setting(
        False,
        "start although the journal yields fewer training transitions than the checkpoint counts (it lost data; "
        "warned at start); false: exit 2 with the fix",
    )


class Progress(NamedTuple):
    """What a lockstep simulation needs to know (the LearnerProgress fields)."""

    learner_epoch: str
    updates: int
    update_backlog: int
    training_transitions: int
    requested_utd: float
    update_to_data_ratio: float


class Weights(NamedTuple):
    """A publishable policy (the PolicyWeights fields): encoder + actor safetensors, version, epoch, schedule."""

    version: int
    learner_epoch: str
    learner_updates: int
    format: str
    data: bytes
    sha256: str
    network_config: str
    stddev_schedule: str
    environment_steps: int


def run_id_of(run_dir: Path) -> str:
    """The run dir's id, created once (atomically) on first use: a fresh run dir gives a new learner epoch."""
    path = run_dir / RUN_ID_FILE
    if not path.is_file():
        run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, uuid.uuid4().hex[:12] + "\n")
    run_id = path.read_text().strip()
    if not run_id or ":" in run_id:
        raise ParameterError(
            f"parameter run_dir={str(run_dir)!r}: {path} is not a run id ({run_id!r}); remove the file to get a new one"
        )
    return run_id


def network_of(network: str) -> PolicyConfig:
    """The PolicyConfig the ``network`` setting (JSON overrides of its fields) gives."""
    try:
        return replace(PolicyConfig(), **(json.loads(network) if network else {}))
    except (TypeError, ValueError) as err:
        raise ParameterError(f"parameter network={network!r}: {err}") from None


def device_of(device: str) -> torch.device:
    try:
        return torch.device(device_name(device))
    except ValueError as err:
        raise ParameterError(f"parameter {err}") from None


class Learner:
    """See the module docstring. ``log``: info/warning/error of plain strings (a logging.Logger, a ROS logger);
    ``on_progress(Progress)``: called under the budget's lock after each commit that owes updates, each update and
    each ``heartbeat()``. ParameterError (one line naming the setting, the cause and the fix) for a start it refuses;
    the run's lock is then released."""

    def __init__(self, config: LearnerConfig, log=None, on_progress: Callable[[Progress], None] | None = None):
        self.config = config
        self.log = log if log is not None else logging.getLogger("learner")
        self._on_progress = on_progress or (lambda progress: None)
        self.run_dir = Path(config.run_dir)
        self.dirs = LearnerDir(self.run_dir)
        try:  # at start, not at the first update of the training thread (or the actor's first step)
            if config.stddev_schedule.strip():
                exploration.validate_schedule(config.stddev_schedule)
        except ValueError as err:
            raise ParameterError(f"parameter {err}") from None
        self.policy_config = network_of(config.network)
        self.device = device_of(config.device)
        if self.device.type == "cpu":
            configure_cpu_allocator()  # reuse freed update buffers: ~1.5x more updates/s (make bench-learner)
        torch.manual_seed(config.agent.seed)
        check_run_dir(self.run_dir)  # a file, or a place that cannot be written: one line, before anything is built
        try:  # one writer per run dir (the importer and checkpoint_tool repair take it too); the OS frees it on exit
            self.run_lock = RunDirLock(self.run_dir, "a learner")
        except (RunDirBusy, OSError) as err:
            raise ParameterError(f"parameter run_dir={str(self.run_dir)!r}: {err}") from None
        try:
            self._start()
        except BaseException:
            self.run_lock.release()
            raise

    def _start(self) -> None:
        config = self.config
        self.run_id = run_id_of(self.run_dir)
        self.learner_epoch = make_epoch(self.run_id, time.time_ns())
        self.checkpoint_name = ""  # the checkpoint resumed from, if any
        checkpoint, initial, carried, self.start_steps = self._load_start()
        self.stddev_schedule = exploration.resolve_schedule(
            config.stddev_schedule, carried, bool(config.initial_weights)
        )
        if config.stddev_schedule.strip() and carried and self.stddev_schedule != carried:
            self.log.warning(f"stddev_schedule {self.stddev_schedule} overrides the carried {carried}")
        agent_config = replace(config.agent, stddev_schedule=self.stddev_schedule)
        self.agent = DrQV2Agent(self.policy_config, agent_config, device=str(self.device))
        replay, seed = config.replay, config.agent.seed
        self.online, self.demo = (
            ReplayBuffer.for_policy(
                self.policy_config, capacity, replay.nstep, replay.discount, seed + offset, STATE_DIM
            )
            for capacity, offset in ((replay.online_capacity, 0), (replay.demo_capacity, 1))
        )
        self.sampler = MixedSampler(self.online, self.demo, replay.demo_fraction)
        self.ingest = TransitionIngest(
            self.online,
            self.demo,
            self.policy_config.image_size,
            self.policy_config.frame_stack,
            config.ingest.train_on_evaluation,
            config.ingest.stale_episode_transitions,
        )
        self.updates = 0
        self.weights_version = 0  # the checkpoint's, when there is one
        self._restore(checkpoint, initial)
        # Only transitions committed from now on owe updates: the journal's were trained on before a restart,
        # and those committed before warm-up are the pre-training data (RoboBase's replay_size_before_train).
        self.budget = config.utd.budget()
        self._lock = threading.Lock()
        self._counted = self.ingest.counters.training_transitions
        self.journal = TransitionJournal(self.dirs.journal, fsync_period_s=config.journal_fsync_period_s)
        if self.journal.cut is not None:
            self.log.warning(f"journal: cut {self.journal.cut}")
        self.quarantine = Quarantine(self.dirs.quarantine)
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(str(self.dirs.tensorboard))
        self.checkpoint_error: str | None = None  # why the last checkpoint was not written
        self.metrics: dict[str, float] = {}  # the newest update's
        self.episodes = EpisodeWindow()
        self._q_window = QWindow()
        self._q_stats = QWindow().take()  # the last stats period with updates (all NaN before the first)
        self._rate_window: deque[tuple[float, int, int]] = deque([(time.monotonic(), self.updates, 0)], maxlen=30)
        self._told_owed = False  # the info line on an achieved UTD below the requested one (owed, not shed)
        self._behind_warned_s = -math.inf

    def summary(self) -> str:
        return (
            f"learner on {self.device}: run dir {self.run_dir}, {len(self.online)} online / {len(self.demo)} demo "
            f"transitions, {self.updates} updates so far, UTD {self.budget.ratio} (backlog cap "
            f"{self.budget.max_backlog}), warm-up {self.config.utd.warmup_transitions}, exploration "
            f"{self.stddev_schedule} at step {self.schedule_step()}, epoch {self.learner_epoch}"
        )

    # ---- restart ----
    def _load_start(self):
        """(checkpoint state or None, initial agent tensors or None, carried schedule or None, start steps)."""
        latest = self._load_checkpoint()
        if latest is not None:
            state = latest.state
            saved = PolicyConfig.from_json(state["policy_config"])
            if differences := config_differences(saved, self.policy_config):
                raise ParameterError(
                    f"parameter run_dir={str(self.run_dir)!r}: the checkpoint's network differs from the configured "
                    f"one ({'; '.join(differences)}); use another run_dir or the same network parameter"
                )
            self._adopt_semantics(saved, f"{self.run_dir} checkpoint")
            self.checkpoint_name = latest.path.name
            explore = state.get("exploration") or {}  # absent in older checkpoints
            return state, None, explore.get("stddev_schedule"), int(explore.get("start_steps", 0))
        if self.config.initial_weights:
            tensors, config, schedule, steps = load_initial_weights(self.config.initial_weights, self.policy_config)
            self._adopt_semantics(config, f"initial_weights {self.config.initial_weights}")
            return None, tensors, schedule, steps
        return None, None, None, 0

    def _load_checkpoint(self):
        """The newest good checkpoint (checksums and finiteness checked); each newer one refused is logged with why,
        and set aside as refused-ckpt-*. A dangling LATEST, or checkpoints none of which is good, refuse the start
        (exit 2 with the fix): a silent fresh start would throw the run's training away."""
        try:
            loaded = load_newest_good(self.dirs.checkpoints, set_aside=True)
        except CheckpointError as err:
            raise ParameterError(f"parameter run_dir={str(self.run_dir)!r}: {err}") from None
        if loaded is not None:
            for name, why in loaded.refused:
                self.log.error(f"checkpoint {name} refused ({why}); set aside as refused-{name}")
            if loaded.refused:
                self.log.warning(
                    f"falling back to checkpoint {loaded.path.name} ({loaded.step} updates), the newest good one"
                )
        return loaded

    def _adopt_semantics(self, found: PolicyConfig, where: str) -> None:
        """A policy's action/observation semantics are its file's (the network setting sets sizes only); the
        published weights then tell the actor how to apply them."""
        for text in semantic_differences(found, self.policy_config):
            self.log.info(f"{where}: semantics {text}: the file's is kept")
        self.policy_config = replace(self.policy_config, **found.semantics())

    def _restore(self, checkpoint: dict | None, initial: dict | None) -> None:
        if checkpoint is not None:
            self.agent.load_state_dict(checkpoint["agent"])
            self.updates = int(checkpoint["counters"]["updates"])
            self.weights_version = int(checkpoint["counters"].get("weights_version", 0))
        elif initial is not None:
            self.agent.load_weights(initial)
            self.log.info(f"started from {self.config.initial_weights}")
        replayed, damage = 0, []
        for raw in read_journal(self.dirs.journal, damage):
            self.ingest.receive(raw)  # the live path: a bad record (a journal of an older learner) is counted
            replayed += 1
        for stretch in damage:  # kept on disk: `checkpoint_tool repair RUN_DIR` rewrites the journal without them
            self.log.warning(f"journal: {stretch}")
        if replayed:
            refused = self.ingest.counters.invalid
            self.log.info(
                f"replayed {replayed} journaled transitions"
                + (f" ({refused} refused, the last: {self.ingest.last_problem})" if refused else "")
                + (f"; {sum(d.length for d in damage)} damaged bytes skipped" if damage else "")
            )
        self._log_expired()
        if checkpoint is not None:  # a journal that lost data is named, never a silent start with less
            counted = checkpoint["counters"].get("training_transitions")
            warning = check_journal_covers(
                self.run_dir,
                self.ingest.counters.training_transitions,
                self.checkpoint_name,
                None if counted is None else int(counted),
                self.config.accept_short_journal,
            )
            if warning:
                self.log.warning(warning)

    def schedule_step(self) -> int:
        """The exploration schedule's step: committed training transitions (+ those an initial file carried)."""
        return self.start_steps + self.ingest.counters.training_transitions

    def _log_expired(self) -> None:
        for text in self.ingest.expired:
            self.log.warning(f"cut a staged episode: {text}")
        self.ingest.expired.clear()
        for text in self.ingest.notices:
            self.log.warning(text)
        self.ingest.notices.clear()

    # ---- incoming data ----
    def receive(self, raw: bytes) -> Verdict | None:
        """One serialized Transition: checked first (bad bytes never reach the journal; kept in run_dir/quarantine),
        a valid new one on disk (OS) before it is handled, a copy not journaled again. The ingest's verdict (None:
        refused; ``ingest.last_problem`` says why). Owes updates for the training transitions it commits."""
        verdict = self.ingest.receive(raw, self.journal.append)
        if verdict is None:
            self.quarantine.add(raw, self.ingest.last_problem)
        if self.ingest.expired or self.ingest.notices:
            self._log_expired()
        committed = self.ingest.counters.training_transitions - self._counted
        if committed:
            self._counted += committed
            if len(self.online) >= self.config.utd.warmup_transitions:
                with self._lock:
                    self.budget.commit(committed)
                    self._on_progress(self._progress())
        return verdict

    def add_episode(self, outcome: Outcome) -> None:
        self.episodes.add(outcome)
        if outcome.evaluation:  # logged as it arrives: evaluation episodes are rare and each one counts
            for key, value in self.episodes.evaluation_scalars(outcome).items():
                self.writer.add_scalar(key, value, self.updates)

    def heartbeat(self) -> None:
        """Report progress although nothing changed (a lockstep simulation holds when the reports stop)."""
        with self._lock:
            self._on_progress(self._progress())

    def _progress(self) -> Progress:
        return Progress(
            learner_epoch=self.learner_epoch,
            updates=self.updates,
            update_backlog=self.budget.backlog,
            training_transitions=self.schedule_step(),
            requested_utd=self.budget.ratio,
            update_to_data_ratio=self.budget.achieved,
        )

    # ---- training ----
    def updates_due(self) -> int:
        with self._lock:
            return self.budget.updates_due()

    def update(self) -> dict[str, float] | None:
        """One update when one is owed (its metrics), else None. FloatingPointError when it diverged (the last good
        checkpoint is kept: a non-finite state is never written)."""
        if self.updates_due() < 1:
            return None
        batch = self.sampler.sample(self.config.replay.batch_size).to_torch(self.device)
        metrics = self.agent.update(batch, self.schedule_step())
        if diverged := {k: v for k, v in metrics.items() if not math.isfinite(v)}:
            raise FloatingPointError(
                f"training diverged at update {self.updates + 1}: {diverged}; the last good checkpoint is kept"
            )
        self.metrics = metrics
        self._q_window.add(self.agent.q_groups)
        with self._lock:
            self.budget.did_update()
            self.updates += 1
            self._on_progress(self._progress())
        if self.updates == self.config.debug_poison_after_updates:
            self._poison_critic()
        return metrics

    def _poison_critic(self) -> None:
        """debug_poison_after_updates: NaN critic weights, as a diverged update leaves them."""
        self.log.warning(f"debug_poison_after_updates: setting the critic's weights to NaN at {self.updates}")
        with torch.no_grad():
            for parameter in self.agent.critic.parameters():
                parameter.fill_(float("nan"))

    def weights(self) -> Weights:
        """The policy now, as the next weights version of this epoch."""
        data = policy_to_bytes(self.agent.policy())
        self.weights_version += 1
        return Weights(
            version=self.weights_version,
            learner_epoch=self.learner_epoch,
            learner_updates=self.updates,
            format="safetensors",
            data=data,
            sha256=sha256_hex(data),
            network_config=self.policy_config.to_json(),
            stddev_schedule=self.stddev_schedule,
            environment_steps=self.schedule_step(),
        )

    def checkpoint(self) -> str | None:
        """Write a checkpoint; None, or why it was not written (a non-finite state never replaces a good one)."""
        self.journal.sync()  # on disk before a checkpoint counts it: a start checks the journal holds what it counts
        state = {
            "agent": self.agent.state_dict(),
            "policy_config": self.policy_config.to_json(),
            "counters": {
                "updates": self.updates,
                "weights_version": self.weights_version,  # the next learner process goes on from it
                "training_transitions": self.ingest.counters.training_transitions,
            },
            "exploration": {
                "stddev_schedule": self.stddev_schedule,
                "environment_steps": self.schedule_step(),
                "start_steps": self.start_steps,
            },
            "learner_epoch": self.learner_epoch,
            "run_id": self.run_id,
        }
        try:
            save_checkpoint(self.dirs.checkpoints, self.updates, state, keep=self.config.checkpoints_kept)
            self.checkpoint_error = None
        except NonFiniteStateError as err:
            self.checkpoint_error = str(err)
            self.log.error(f"checkpoint {err}; the previous good checkpoint stays in use")
        return self.checkpoint_error

    # ---- monitoring ----
    def statistics(self) -> dict:
        """The LearnerStats fields now; writes the period's TensorBoard scalars and logs a learner that falls
        behind. Call it once per stats period (rates and Q are over the period)."""
        now = time.monotonic()
        accepted = self.ingest.counters.accepted
        self._rate_window.append((now, self.updates, accepted))
        t0, u0, _ = self._rate_window[0]
        elapsed = max(now - t0, 1e-6)
        metrics = dict(self.metrics)
        q_window = self._q_window.take()
        sampled = any(q_window[f"rows/{group}"] for group in GROUPS)  # this period had updates
        if sampled:
            self._q_stats = q_window
        q_stats = self._q_stats
        with self._lock:
            budget = self.budget
            achieved, backlog, behind, shed = budget.achieved, budget.backlog, budget.behind, budget.shed
        step, requested = self.schedule_step(), budget.ratio
        stats = dict(
            updates=self.updates,
            updates_per_second=(self.updates - u0) / elapsed,
            update_to_data_ratio=achieved,
            requested_utd=requested,
            utd_behind=behind,
            update_backlog=backlog,
            training_transitions=step,
            learner_epoch=self.learner_epoch,
            transitions_received=accepted,
            transitions_dropped=self.ingest.dropped,
            segments_dropped=self.ingest.sequencer.broken_segments,
            online_buffer_size=len(self.online),
            demo_buffer_size=len(self.demo),
            weights_version=self.weights_version,
            critic_loss=metrics.get("critic_loss", float("nan")),
            actor_loss=metrics.get("actor_loss", float("nan")),
            q_mean=metrics.get("q_mean", float("nan")),
            actor_stddev=exploration.stddev(self.stddev_schedule, step),
            **{f"{kind}_{group}": q_stats[f"{kind}/{group}"] for kind in ("q", "mc_return") for group in GROUPS},
            **self.episodes.stats_fields(),
        )
        if not behind and backlog and achieved < 0.95 * requested and not self._told_owed:
            self._told_owed = True  # once: the figure itself is in learner_stats
            self.log.info(
                f"achieved UTD {achieved:.2f} < requested {requested}: {backlog} updates are owed and not yet "
                "done, none shed (in lockstep the learner may owe up to the sim's lockstep_max_backlog_updates, "
                "about an episode, while the next one is collected)"
            )
        if behind and now - self._behind_warned_s >= BEHIND_WARNING_PERIOD_S:
            self._behind_warned_s = now
            self.log.warning(
                f"the learner cannot keep the requested UTD {requested}: achieved {achieved:.2f} updates per "
                f"transition, {shed:.0f} owed updates shed at the backlog cap of {budget.max_backlog} "
                f"({stats['updates_per_second']:.1f} updates/s); use a GPU, or lower utd_ratio or batch_size"
            )
        scalars = statistics.scalars(stats, statistics.periodic_fields(q_sampled=sampled))
        scalars.update({"utd/shed": shed, "data/expired_episodes": self.ingest.counters.expired_episodes})
        scalars.update({f"loss/{k}": v for k, v in metrics.items()})  # the agent's other metrics, too
        scalars.update(self.episodes.training_scalars())
        if sampled:
            scalars.update({f"rows/{group}": q_window[f"rows/{group}"] for group in GROUPS})
        for key, value in scalars.items():
            self.writer.add_scalar(key, value, self.updates)
        return stats

    def close(self) -> None:
        """Close the journal, the quarantine and TensorBoard, and release the run's lock (no checkpoint)."""
        self.journal.close()
        self.quarantine.close()
        self.run_lock.release()
        self.writer.close()
