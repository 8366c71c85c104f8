"""learner: consumes transitions, trains DrQ-v2 in its own thread, publishes policy weights and stats.

Every valid new transition is journaled before it is handled (so101_hilserl_learner.journal; bad bytes are refused
before the journal and kept in run_dir/quarantine, copies are not journaled again); checkpoints are atomic
(so101_hilserl_learner.checkpoint); on start it loads the newest checkpoint and replays the journal, so a killed
learner resumes with its buffers, networks, optimisers and counters.

Contracts it keeps:
* One exploration schedule (so101_hilserl_core.exploration) over environment steps = committed training
  transitions; the agent's target and actor-loss noise read it at that step, and every PolicyWeights message
  carries the schedule and the step so the actor's acting noise is the same reading.
* UTD (so101_hilserl_learner.utd): updates per committed training transition, backlog capped, achieved ratio in
  learner_stats and TensorBoard, a throttled warning when the learner falls behind.
* Weight versions go on from the checkpoint's (never backwards across a resume); each learner process has its own
  epoch (run id + process start time), which an actor takes over an older epoch whatever the versions. Published
  once at start (the checkpoint's networks), then as training goes.
* LearnerProgress (so101_contract.sim_time.PROGRESS_TOPIC) after every commit that owes updates, after every
  update, and every HEARTBEAT_S of simulated time, so a lockstep simulation holds simulated time while the learner
  owes more than it allows, and also when it stops reporting (killed, stopped).
* Episode outcomes (so101_hilserl_learner.episode_window): training success split autonomous/assisted, the
  intervention fraction and evaluation success, in learner_stats and TensorBoard.
* Q next to Monte-Carlo returns per kind of row (so101_hilserl_learner.q_diagnostics), over each stats period, in
  learner_stats and TensorBoard (q/*, mc_return/*, rows/*).

Clocks: message stamps use the node clock (simulated time in simulation). What is about the machine uses the
steady clock, so it keeps running while simulated time stands still (a lockstep sim waits for this learner): the
stats timer, the update rate, the weights publish period and the checkpoint period.
"""

from __future__ import annotations

import so101_contract.quiet_interrupt  # noqa: F401  (first: Ctrl-C during the heavy imports below is quiet)

# isort: split
import json
import math
import threading
import time
import uuid
from collections import deque
from dataclasses import replace
from pathlib import Path

import torch
from rclpy.clock import Clock, ClockType
from rclpy.node import Node
from so101_hilserl_core.policy import PolicyConfig
from so101_hilserl_core.policy_io import config_differences, policy_to_bytes, semantic_differences, sha256_hex
from so101_hilserl_core.weights_gate import make_epoch
from std_srvs.srv import Trigger

from so101_contract import qos
from so101_contract.cpu_allocator import configure_cpu_allocator
from so101_contract.files import atomic_write_text
from so101_contract.node_main import run_node
from so101_contract.outcomes import Outcome
from so101_contract.parameters import ParameterError
from so101_contract.sim_time import PROGRESS_TOPIC
from so101_contract.state import STATE_DIM
from so101_hilserl_core import exploration
from so101_hilserl_interfaces.msg import EpisodeSummary, LearnerProgress, LearnerStats, PolicyWeights, Transition
from so101_hilserl_learner import learner_parameters
from so101_hilserl_learner.agent import AgentConfig, DrQV2Agent
from so101_hilserl_learner.checkpoint import (
    CheckpointError,
    NonFiniteStateError,
    load_newest_good,
    save_checkpoint,
)
from so101_hilserl_learner.episode_window import EpisodeWindow
from so101_hilserl_learner.ingest import TransitionIngest
from so101_hilserl_learner.journal import Quarantine, TransitionJournal, read_journal
from so101_hilserl_learner.q_diagnostics import GROUPS, QWindow
from so101_hilserl_learner.replay import MixedSampler, ReplayBuffer
from so101_hilserl_learner.run_lock import RunDirBusy, RunDirLock
from so101_hilserl_learner.sequencer import Verdict
from so101_hilserl_learner.start_files import check_journal_covers, check_run_dir, load_initial_weights
from so101_hilserl_learner.utd import UtdBudget

RUN_ID_FILE = "run_id"
HEARTBEAT_S = 0.05  # simulated seconds between LearnerProgress reports when nothing else reports (half a period)


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


class LearnerNode(Node):
    def __init__(self):
        super().__init__("learner")
        v = learner_parameters.declare(self)
        self.run_dir = Path(v["run_dir"])
        device, seed, network = v["device"], v["seed"], v["network"]
        self.initial_weights = v["initial_weights"]
        self.batch_size, self.utd_ratio, self.warmup = v["batch_size"], v["utd_ratio"], v["warmup_transitions"]
        agent_config = AgentConfig(
            lr=v["lr"], critic_target_tau=v["critic_target_tau"], stddev_clip=v["stddev_clip"], seed=seed
        )
        schedule_parameter = v["stddev_schedule"]
        self.publish_every, self.publish_period_s = v["publish_every_updates"], v["publish_period_s"]
        self.checkpoint_period_s, self.checkpoints_kept = v["checkpoint_period_s"], v["checkpoints_kept"]
        self.debug_poison_after = v["debug_poison_after_updates"]
        self.accept_short_journal = v["accept_short_journal"]

        try:  # at start, not at the first update of the training thread (or the actor's first step)
            if schedule_parameter.strip():
                exploration.validate_schedule(schedule_parameter)
        except ValueError as err:
            raise ParameterError(f"parameter {err}") from None
        try:
            self.policy_config = replace(PolicyConfig(), **(json.loads(network) if network else {}))
        except (TypeError, ValueError) as err:
            raise ParameterError(f"parameter network={network!r}: {err}") from None
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        elif device == "cuda" and not torch.cuda.is_available():
            raise ParameterError("parameter device='cuda': torch sees no CUDA device; use auto or cpu")
        self.device = torch.device(device)
        if self.device.type == "cpu":
            configure_cpu_allocator()  # reuse freed update buffers: ~1.5x more updates/s (make bench-learner)
        torch.manual_seed(seed)
        check_run_dir(self.run_dir)  # a file, or a place that cannot be written: one line, before anything is built
        try:  # one writer per run dir (the importer and checkpoint_tool repair take it too); the OS frees it on exit
            self.run_lock = RunDirLock(self.run_dir, "a learner")
        except (RunDirBusy, OSError) as err:
            raise ParameterError(f"parameter run_dir={str(self.run_dir)!r}: {err}") from None
        self.run_id = run_id_of(self.run_dir)
        self.learner_epoch = make_epoch(self.run_id, time.time_ns())
        self._checkpoint_name = ""  # the checkpoint resumed from, if any
        checkpoint, initial, carried, self.start_steps = self._load_start()
        self.stddev_schedule = exploration.resolve_schedule(schedule_parameter, carried, bool(self.initial_weights))
        if schedule_parameter.strip() and carried and self.stddev_schedule != carried:
            self.get_logger().warning(f"stddev_schedule {self.stddev_schedule} overrides the carried {carried}")
        agent_config = replace(agent_config, stddev_schedule=self.stddev_schedule)
        self.agent = DrQV2Agent(self.policy_config, agent_config, device=str(self.device))
        size = self.policy_config.image_size
        self.online, self.demo = (
            ReplayBuffer.for_policy(self.policy_config, capacity, v["nstep"], v["discount"], seed + offset, STATE_DIM)
            for capacity, offset in ((v["online_capacity"], 0), (v["demo_capacity"], 1))
        )
        self.sampler = MixedSampler(self.online, self.demo, v["demo_fraction"])
        self.ingest = TransitionIngest(
            self.online,
            self.demo,
            size,
            self.policy_config.frame_stack,
            v["train_on_evaluation"],
            v["stale_episode_transitions"],
        )
        self.updates = 0
        self.weights_version = 0  # the checkpoint's, when there is one
        self._restore(checkpoint, initial)
        # Only transitions committed from now on owe updates: the journal's were trained on before a restart,
        # and those committed before warm-up are the pre-training data (RoboBase's replay_size_before_train).
        self.budget = UtdBudget(self.utd_ratio, UtdBudget.cap_for(self.utd_ratio, v["max_backlog_transitions"]))
        self._budget_lock = threading.Lock()
        self._counted = self.ingest.counters.training_transitions
        self.journal = TransitionJournal(self.run_dir / "journal", fsync_period_s=v["journal_fsync_period_s"])
        if self.journal.cut is not None:
            self.get_logger().warning(f"journal: cut {self.journal.cut}")
        self.quarantine = Quarantine(self.run_dir / "quarantine")

        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(str(self.run_dir / "tensorboard"))
        self.weights_pub = self.create_publisher(PolicyWeights, "hilserl/policy_weights", qos.LATCHED)
        self.stats_pub = self.create_publisher(LearnerStats, "hilserl/learner_stats", qos.EVENTS)
        self.progress_pub = self.create_publisher(
            LearnerProgress, PROGRESS_TOPIC, qos.LATCHED
        )  # the newest counts, late joiners get it
        self.create_subscription(Transition, "hilserl/transitions", self._on_transition, qos.TRANSITIONS, raw=True)
        self.create_subscription(EpisodeSummary, "hilserl/episodes", self._on_episode, qos.EVENTS)
        self.create_service(Trigger, "learner/checkpoint", self._on_checkpoint_request)
        # Steady, not the node clock: under use_sim_time a node-clock timer stops while simulated time stands
        # still, and a lockstep sim stands still exactly while it waits for this learner.
        self._steady = Clock(clock_type=ClockType.STEADY_TIME)
        self.create_timer(v["stats_period_s"], self._publish_stats, clock=self._steady)
        if self.get_parameter("use_sim_time").value:  # simulated time: a lockstep sim holds when this stops
            self.create_timer(HEARTBEAT_S, self._heartbeat)
        self._told_owed = False  # the info line on an achieved UTD below the requested one (owed, not shed)

        self._episodes = EpisodeWindow()
        self._metrics: dict[str, float] = {}
        self._q_window = QWindow()
        self._q_stats = QWindow().take()  # the last stats period with updates (all NaN before the first)
        self._rate_window: deque[tuple[float, int, int]] = deque([(time.monotonic(), self.updates, 0)], maxlen=30)
        self._checkpoint_requested = threading.Event()
        self._checkpoint_done = threading.Event()
        self._checkpoint_error: str | None = None  # why the last checkpoint was not written
        self._running = True
        self._publish_weights()  # version 1 of this epoch: a running actor learns the epoch and schedule at once
        with self._budget_lock:
            self._publish_progress()  # nothing owed yet; a late sim gets it (transient local)
        self._trainer = threading.Thread(target=self._train_thread, name="learner-train", daemon=True)
        self._trainer.start()
        self.get_logger().info(
            f"learner on {self.device}: run dir {self.run_dir}, {len(self.online)} online / {len(self.demo)} demo "
            f"transitions, {self.updates} updates so far, UTD {self.utd_ratio} (backlog cap "
            f"{self.budget.max_backlog}), warm-up {self.warmup}, exploration {self.stddev_schedule} at step "
            f"{self.schedule_step()}, epoch {self.learner_epoch}"
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
            self._checkpoint_name = latest.path.name
            explore = state.get("exploration") or {}  # absent in older checkpoints
            return state, None, explore.get("stddev_schedule"), int(explore.get("start_steps", 0))
        if self.initial_weights:
            tensors, config, schedule, steps = load_initial_weights(self.initial_weights, self.policy_config)
            self._adopt_semantics(config, f"initial_weights {self.initial_weights}")
            return None, tensors, schedule, steps
        return None, None, None, 0

    def _load_checkpoint(self):
        """The newest good checkpoint (checksums and finiteness checked); each newer one refused is logged with why,
        and set aside as refused-ckpt-*. A dangling LATEST, or checkpoints none of which is good, refuse the start
        (exit 2 with the fix): a silent fresh start would throw the run's training away."""
        directory = self.run_dir / "checkpoints"
        try:
            loaded = load_newest_good(directory, set_aside=True)
        except CheckpointError as err:
            raise ParameterError(f"parameter run_dir={str(self.run_dir)!r}: {err}") from None
        if loaded is not None:
            for name, why in loaded.refused:
                self.get_logger().error(f"checkpoint {name} refused ({why}); set aside as refused-{name}")
            if loaded.refused:
                self.get_logger().warning(
                    f"falling back to checkpoint {loaded.path.name} ({loaded.step} updates), the newest good one"
                )
        return loaded

    def _adopt_semantics(self, found: PolicyConfig, where: str) -> None:
        """A policy's action/observation semantics are its file's (the network parameter sets sizes only); the
        published weights then tell the actor how to apply them."""
        for text in semantic_differences(found, self.policy_config):
            self.get_logger().info(f"{where}: semantics {text}: the file's is kept")
        self.policy_config = replace(self.policy_config, **found.semantics())

    def _restore(self, checkpoint: dict | None, initial: dict | None) -> None:
        if checkpoint is not None:
            self.agent.load_state_dict(checkpoint["agent"])
            self.updates = int(checkpoint["counters"]["updates"])
            self.weights_version = int(checkpoint["counters"].get("weights_version", 0))
        elif initial is not None:
            self.agent.load_weights(initial)
            self.get_logger().info(f"started from {self.initial_weights}")
        replayed, damage = 0, []
        for raw in read_journal(self.run_dir / "journal", damage):
            self.ingest.receive(raw)  # the live path: a bad record (a journal of an older learner) is counted
            replayed += 1
        for stretch in damage:  # kept on disk: `checkpoint_tool repair RUN_DIR` rewrites the journal without them
            self.get_logger().warning(f"journal: {stretch}")
        if replayed:
            refused = self.ingest.counters.invalid
            self.get_logger().info(
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
                self._checkpoint_name,
                None if counted is None else int(counted),
                self.accept_short_journal,
            )
            if warning:
                self.get_logger().warning(warning)

    def schedule_step(self) -> int:
        """The exploration schedule's step: committed training transitions (+ those an initial file carried)."""
        return self.start_steps + self.ingest.counters.training_transitions

    def _log_expired(self) -> None:
        for text in self.ingest.expired:
            self.get_logger().warning(f"cut a staged episode: {text}")
        self.ingest.expired.clear()
        for text in self.ingest.notices:
            self.get_logger().warning(text)
        self.ingest.notices.clear()

    # ---- incoming data (executor thread) ----
    def _on_transition(self, raw: bytes) -> None:
        # Checked first: bad bytes never reach the journal (kept in run_dir/quarantine for inspection). A valid new
        # message is on disk (OS) before it is handled, so a kill cannot lose it; a copy is not journaled again.
        verdict = self.ingest.receive(bytes(raw), self.journal.append)
        if verdict is None:
            self.quarantine.add(raw, self.ingest.last_problem)
        if verdict in (None, Verdict.IMPLAUSIBLE):
            self.get_logger().warning(
                f"dropped: {self.ingest.last_problem} ({self.ingest.counters.invalid} refused so far)",
                throttle_duration_sec=2.0,
            )
        elif verdict is Verdict.GAP:
            self.get_logger().warning(
                f"gap: {self.ingest.last_problem}; the transitions that need the missing steps are lost "
                f"({self.ingest.sequencer.broken_segments} gaps so far)",
                throttle_duration_sec=2.0,
            )
        if self.ingest.expired or self.ingest.notices:
            self._log_expired()
        committed = self.ingest.counters.training_transitions - self._counted
        if committed:
            self._counted += committed
            if len(self.online) >= self.warmup:
                with self._budget_lock:
                    self.budget.commit(committed)
                    self._publish_progress()

    def _on_episode(self, msg: EpisodeSummary) -> None:
        outcome = Outcome.from_msg(msg)
        self._episodes.add(outcome)
        if outcome.evaluation:  # logged as it arrives: evaluation episodes are rare and each one counts
            for key, value in self._episodes.evaluation_scalars(outcome).items():
                self.writer.add_scalar(key, value, self.updates)

    def _heartbeat(self) -> None:
        with self._budget_lock:
            self._publish_progress()

    def _publish_progress(self) -> None:
        """LearnerProgress from the budget; the caller holds _budget_lock, so the fields are one consistent reading."""
        msg = LearnerProgress(
            learner_epoch=self.learner_epoch,
            updates=self.updates,
            update_backlog=self.budget.backlog,
            training_transitions=self.schedule_step(),
            requested_utd=self.utd_ratio,
            update_to_data_ratio=self.budget.achieved,
        )
        msg.header.stamp = self.get_clock().now().to_msg()
        self.progress_pub.publish(msg)

    def _on_checkpoint_request(self, request, response):
        self._checkpoint_done.clear()
        self._checkpoint_requested.set()
        done = self._checkpoint_done.wait(timeout=60.0)
        response.success = done and self._checkpoint_error is None
        response.message = (
            f"checkpoint at {self.updates} updates" if response.success
            else f"refused: {self._checkpoint_error}" if done else "timed out"
        )  # fmt: skip
        return response

    # ---- training (its own thread) ----
    def _train_thread(self) -> None:
        try:
            self._train_loop()
        except BaseException as err:
            if not self._running or not self.context.ok():
                return  # shutting down (Ctrl-C invalidates the context first): destroy_node writes the checkpoint
            # a learner that silently stopped training would look healthy: die instead. The exception ends the
            # thread; node_main's thread hook then stops the node (destroy_node tries the final checkpoint, refused
            # when the state is not finite) and the process exits 1, which launch and the runner see.
            self.get_logger().fatal(f"training thread failed: {type(err).__name__}: {err}")
            raise

    def _train_loop(self) -> None:
        # Wall (monotonic) periods: weights and checkpoints are about not losing work and keeping the actor's
        # policy fresh per second of compute, which simulated time (standing still while the sim waits) is not.
        last_publish = last_checkpoint = time.monotonic()
        while self._running:
            if self._checkpoint_requested.is_set():
                self._checkpoint()
                last_checkpoint = time.monotonic()
            with self._budget_lock:
                due = self.budget.updates_due()
            if due < 1:
                time.sleep(0.02)
                continue
            batch = self.sampler.sample(self.batch_size).to_torch(self.device)
            metrics = self.agent.update(batch, self.schedule_step())
            if diverged := {k: v for k, v in metrics.items() if not math.isfinite(v)}:
                raise FloatingPointError(
                    f"training diverged at update {self.updates + 1}: {diverged}; the last good checkpoint is kept"
                )
            self._metrics = metrics
            self._q_window.add(self.agent.q_groups)
            with self._budget_lock:
                self.budget.did_update()
                self.updates += 1
                self._publish_progress()
            if self.updates == self.debug_poison_after:
                self._poison_critic()
            now = time.monotonic()
            if self.updates % self.publish_every == 0 or now - last_publish >= self.publish_period_s:
                self._publish_weights()
                last_publish = now
            if now - last_checkpoint >= self.checkpoint_period_s:
                self._checkpoint()
                last_checkpoint = now

    def _poison_critic(self) -> None:
        """debug_poison_after_updates: NaN critic weights, as a diverged update leaves them."""
        self.get_logger().warning(f"debug_poison_after_updates: setting the critic's weights to NaN at {self.updates}")
        with torch.no_grad():
            for parameter in self.agent.critic.parameters():
                parameter.fill_(float("nan"))

    def _publish_weights(self) -> None:
        data = policy_to_bytes(self.agent.policy())
        self.weights_version += 1
        msg = PolicyWeights(
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
        msg.header.stamp = self.get_clock().now().to_msg()
        self.weights_pub.publish(msg)

    def _checkpoint(self) -> None:
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
            save_checkpoint(self.run_dir / "checkpoints", self.updates, state, keep=self.checkpoints_kept)
            self._checkpoint_error = None
        except NonFiniteStateError as err:  # a diverged state must not replace the last good checkpoint
            self._checkpoint_error = str(err)
            self.get_logger().error(f"checkpoint {err}; the previous good checkpoint stays in use")
        self._checkpoint_requested.clear()
        self._checkpoint_done.set()

    # ---- monitoring (executor thread) ----
    def _publish_stats(self) -> None:
        now = time.monotonic()
        accepted = self.ingest.counters.accepted
        self._rate_window.append((now, self.updates, accepted))
        t0, u0, _ = self._rate_window[0]
        elapsed = max(now - t0, 1e-6)
        metrics = dict(self._metrics)
        q_window = self._q_window.take()
        sampled = any(q_window[f"rows/{group}"] for group in GROUPS)  # this period had updates
        if sampled:
            self._q_stats = q_window
        q_stats = self._q_stats
        with self._budget_lock:
            budget = self.budget
            achieved, backlog, behind, shed = budget.achieved, budget.backlog, budget.behind, budget.shed
        step = self.schedule_step()
        stats = LearnerStats(
            updates=self.updates,
            updates_per_second=(self.updates - u0) / elapsed,
            update_to_data_ratio=achieved,
            requested_utd=self.utd_ratio,
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
            **self._episodes.stats_fields(),
        )
        stats.header.stamp = self.get_clock().now().to_msg()
        self.stats_pub.publish(stats)
        if not behind and backlog and achieved < 0.95 * self.utd_ratio and not self._told_owed:
            self._told_owed = True  # once: the figure itself is in learner_stats
            self.get_logger().info(
                f"achieved UTD {achieved:.2f} < requested {self.utd_ratio}: {backlog} updates are owed and not yet "
                "done, none shed (in lockstep the learner may owe up to the sim's lockstep_max_backlog_updates, "
                "about an episode, while the next one is collected)"
            )
        if behind:
            self.get_logger().warning(
                f"the learner cannot keep the requested UTD {self.utd_ratio}: achieved {achieved:.2f} updates per "
                f"transition, {shed:.0f} owed updates shed at the backlog cap of {budget.max_backlog} "
                f"({stats.updates_per_second:.1f} updates/s); use a GPU, or lower utd_ratio or batch_size",
                throttle_duration_sec=30.0,
            )
        scalars = {
            "buffer/online": len(self.online),
            "buffer/demo": len(self.demo),
            "learner/updates_per_second": stats.updates_per_second,
            "utd/achieved": achieved,
            "utd/requested": self.utd_ratio,
            "utd/backlog": backlog,
            "utd/shed": shed,
            "exploration/stddev": stats.actor_stddev,
            "data/transitions": accepted,
            "data/training_transitions": step,
            "data/dropped": stats.transitions_dropped,
            "data/expired_episodes": self.ingest.counters.expired_episodes,
            **{f"loss/{k}": v for k, v in metrics.items()},
        }
        scalars.update(self._episodes.training_scalars())
        if sampled:  # a group without rows in the period has no point
            scalars.update({key: value for key, value in q_window.items() if math.isfinite(value)})
        for key, value in scalars.items():
            self.writer.add_scalar(key, value, self.updates)

    # node_main's bound on the whole shutdown: the update under way (about 1 s at reference sizes on a CPU) and the
    # final checkpoint must fit, and stay under launch's SIGKILL 10 s after its SIGINT.
    shutdown_timeout_s = 9.0

    def destroy_node(self) -> None:
        self._running = False
        self._trainer.join(timeout=5.0)
        self._checkpoint()  # Ctrl-C leaves a resumable run
        self.journal.close()
        self.quarantine.close()
        self.run_lock.release()
        self.writer.close()
        super().destroy_node()


def main(args=None) -> None:
    run_node(LearnerNode, args)


if __name__ == "__main__":
    main()
