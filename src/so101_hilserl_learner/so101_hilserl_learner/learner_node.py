"""learner: consumes transitions, trains DrQ-v2 in its own thread, publishes policy weights and stats.

Everything it receives is journaled before it is handled (so101_hilserl_learner.journal); checkpoints are atomic
(so101_hilserl_learner.checkpoint); on start it loads the newest checkpoint and replays the journal, so a killed
learner resumes with its buffers, networks, optimisers and counters.

Contracts it keeps (issue 13):
* One exploration schedule (so101_hilserl_actor.exploration) over environment steps = committed training
  transitions; the agent's target and actor-loss noise read it at that step, and every PolicyWeights message
  carries the schedule and the step so the actor's acting noise is the same reading.
* UTD (so101_hilserl_learner.utd): updates per committed training transition, backlog capped, achieved ratio in
  learner_stats and TensorBoard, a throttled warning when the learner falls behind.
* Weight versions restart at 1 in each learner epoch (run id + process start time), published once at start.
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from collections import deque
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.node import Node
from rclpy.serialization import deserialize_message
from std_srvs.srv import Trigger

from so101_driver import qos
from so101_driver.cpu_allocator import configure_cpu_allocator
from so101_driver.node_main import run_node
from so101_hilserl_actor import exploration
from so101_hilserl_actor.policy import PolicyConfig
from so101_hilserl_actor.policy_io import config_differences, policy_to_bytes, semantic_differences, sha256_hex
from so101_hilserl_actor.state_vector import STATE_DIM
from so101_hilserl_actor.weights_gate import make_epoch
from so101_hilserl_interfaces.msg import EpisodeSummary, LearnerStats, PolicyWeights, Transition
from so101_hilserl_learner.agent import AgentConfig, DrQV2Agent
from so101_hilserl_learner.agent_file import load_agent_weights
from so101_hilserl_learner.checkpoint import load_latest_checkpoint, save_checkpoint
from so101_hilserl_learner.ingest import TransitionIngest
from so101_hilserl_learner.journal import TransitionJournal, read_journal
from so101_hilserl_learner.replay import MixedSampler, ReplayBuffer
from so101_hilserl_learner.utd import UtdBudget

RUN_ID_FILE = "run_id"


def run_id_of(run_dir: Path) -> str:
    """The run dir's id, created once (atomically) on first use: a fresh run dir gives a new learner epoch."""
    path = run_dir / RUN_ID_FILE
    if not path.is_file():
        run_dir.mkdir(parents=True, exist_ok=True)
        tmp = run_dir / f".{RUN_ID_FILE}.{os.getpid()}"
        tmp.write_text(uuid.uuid4().hex[:12] + "\n")
        os.replace(tmp, path)
    run_id = path.read_text().strip()
    if not run_id or ":" in run_id:
        raise RuntimeError(f"{path}: not a run id ({run_id!r}); remove the file to get a new one")
    return run_id


class LearnerNode(Node):
    def __init__(self):
        super().__init__("learner")
        p = self._param
        self.run_dir = Path(p("run_dir", "runs/learner", "directory for the journal, checkpoints and TensorBoard"))
        device = p("device", "auto", "torch device: auto (cuda when present), cpu or cuda")
        seed = p("seed", 0, "seed of the networks and of batch sampling")
        network = p("network", "", 'JSON overrides of PolicyConfig fields, e.g. {"hidden": [64, 64]}')
        self.initial_weights = p(
            "initial_weights", "", "agent weights (checkpoint_tool import-robobase output) for a fresh run_dir"
        )
        self.batch_size = p("batch_size", 256, "transitions per update")
        self.utd_ratio = p("utd_ratio", 1.0, "updates per committed training transition (update-to-data ratio)")
        backlog_transitions = p(
            "max_backlog_transitions", 200, "owed updates are capped at utd_ratio x this many transitions' worth"
        )
        self.warmup = p("warmup_transitions", 1000, "online transitions needed before training starts")
        stale_after = p(
            "stale_episode_transitions", 1000, "a staged episode is cut after this many messages of other actors"
        )
        online_capacity = p("online_capacity", 100_000, "transitions kept in the online buffer")
        demo_capacity = p("demo_capacity", 20_000, "transitions kept in the demonstration buffer")
        demo_fraction = p("demo_fraction", 0.5, "share of each batch drawn from the demonstration buffer")
        nstep = p("nstep", 3, "n of the n-step returns")
        discount = p("discount", 0.99, "discount factor")
        agent_config = AgentConfig(
            lr=p("lr", 1e-4, "AdamW learning rate of encoder, actor and critic"),
            critic_target_tau=p("critic_target_tau", 0.01, "soft target update rate"),
            stddev_clip=p("stddev_clip", 0.3, "clip of the target policy noise"),
            seed=seed,
        )
        schedule_parameter = p(
            "stddev_schedule",
            "",
            "the run's exploration std over environment steps, e.g. linear(0.2,0.1,10000); '' = the one the run's "
            f"checkpoint or initial_weights carries, else {exploration.DEFAULT_PRETRAINED_SCHEDULE} with "
            f"initial_weights, {exploration.DEFAULT_SCRATCH_SCHEDULE} from scratch",
        )
        self.publish_every = p("publish_every_updates", 50, "publish weights after this many updates...")
        self.publish_period_s = p("publish_period_s", 5.0, "...or this many seconds, whichever comes first")
        self.checkpoint_period_s = p("checkpoint_period_s", 120.0, "seconds between checkpoints")
        stats_period = p("stats_period_s", 1.0, "seconds between learner_stats messages and TensorBoard scalars")
        fsync_period = p("journal_fsync_period_s", 1.0, "journal fsync period: the loss window on power failure")
        train_on_evaluation = p("train_on_evaluation", False, "also train on deterministic evaluation episodes")

        for name, value, least in (
            ("utd_ratio", self.utd_ratio, 0),
            ("max_backlog_transitions", backlog_transitions, 1),
            ("stale_episode_transitions", stale_after, 1),
        ):
            if value < least:
                raise ValueError(f"parameter {name}={value}: must be >= {least}")
        try:
            self.policy_config = replace(PolicyConfig(), **(json.loads(network) if network else {}))
        except (TypeError, ValueError) as err:
            raise ValueError(f"parameter network={network!r}: {err}") from err
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = torch.device(device)
        if self.device.type == "cpu":
            configure_cpu_allocator()  # reuse freed update buffers: ~1.5x more updates/s (bench_learner)
        torch.manual_seed(seed)
        self.run_id = run_id_of(self.run_dir)
        self.learner_epoch = make_epoch(self.run_id, time.time_ns())
        checkpoint, initial, carried, self.start_steps = self._load_start()
        self.stddev_schedule = exploration.resolve_schedule(schedule_parameter, carried, bool(self.initial_weights))
        if schedule_parameter.strip() and carried and self.stddev_schedule != carried:
            self.get_logger().warning(f"stddev_schedule {self.stddev_schedule} overrides the carried {carried}")
        agent_config = replace(agent_config, stddev_schedule=self.stddev_schedule)
        self.agent = DrQV2Agent(self.policy_config, agent_config, device=str(self.device))
        size, channels = self.policy_config.image_size, self.policy_config.image_channels

        def buffer(capacity: int, offset: int) -> ReplayBuffer:
            return ReplayBuffer(
                capacity, (size, size, channels), STATE_DIM, self.policy_config.action_dim,
                self.policy_config.frame_stack, nstep, discount, seed=seed + offset,
            )  # fmt: skip

        self.online, self.demo = buffer(online_capacity, 0), buffer(demo_capacity, 1)
        self.sampler = MixedSampler(self.online, self.demo, demo_fraction)
        self.ingest = TransitionIngest(
            self.online, self.demo, size, self.policy_config.frame_stack, train_on_evaluation, stale_after
        )
        self.updates = 0
        self.weights_version = 0  # versions restart in each learner epoch
        self._restore(checkpoint, initial)
        # Only transitions committed from now on owe updates: the journal's were trained on before a restart,
        # and those committed before warm-up are the pre-training data (RoboBase's replay_size_before_train).
        self.budget = UtdBudget(self.utd_ratio, UtdBudget.cap_for(self.utd_ratio, backlog_transitions))
        self._budget_lock = threading.Lock()
        self._counted = self.ingest.counters.training_transitions
        self.journal = TransitionJournal(self.run_dir / "journal", fsync_period_s=fsync_period)

        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(str(self.run_dir / "tensorboard"))
        self.weights_pub = self.create_publisher(PolicyWeights, "hilserl/policy_weights", qos.LATCHED)
        self.stats_pub = self.create_publisher(LearnerStats, "hilserl/learner_stats", qos.EVENTS)
        self.create_subscription(Transition, "hilserl/transitions", self._on_transition, qos.TRANSITIONS, raw=True)
        self.create_subscription(EpisodeSummary, "hilserl/episodes", self._on_episode, qos.EVENTS)
        self.create_service(Trigger, "learner/checkpoint", self._on_checkpoint_request)
        self.create_timer(stats_period, self._publish_stats)

        self._episodes: deque[EpisodeSummary] = deque(maxlen=50)
        self._metrics: dict[str, float] = {}
        self._rate_window: deque[tuple[float, int, int]] = deque([(time.monotonic(), self.updates, 0)], maxlen=30)
        self._checkpoint_requested = threading.Event()
        self._checkpoint_done = threading.Event()
        self._running = True
        self._publish_weights()  # version 1 of this epoch: a running actor learns the epoch and schedule at once
        self._trainer = threading.Thread(target=self._train_thread, name="learner-train", daemon=True)
        self._trainer.start()
        self.get_logger().info(
            f"learner on {self.device}: run dir {self.run_dir}, {len(self.online)} online / {len(self.demo)} demo "
            f"transitions, {self.updates} updates so far, UTD {self.utd_ratio} (backlog cap "
            f"{self.budget.max_backlog}), warm-up {self.warmup}, exploration {self.stddev_schedule} at step "
            f"{self.schedule_step()}, epoch {self.learner_epoch}"
        )

    def _param(self, name: str, default, description: str):
        return self.declare_parameter(name, default, ParameterDescriptor(description=description)).value

    # ---- restart ----
    def _load_start(self):
        """(checkpoint state or None, initial agent tensors or None, carried schedule or None, start steps)."""
        latest = load_latest_checkpoint(self.run_dir / "checkpoints")
        if latest is not None:
            _, state = latest
            saved = PolicyConfig.from_json(state["policy_config"])
            if differences := config_differences(saved, self.policy_config):
                raise RuntimeError(
                    f"{self.run_dir}: the checkpoint's network differs from the configured one "
                    f"({'; '.join(differences)}); use another run_dir or the same network parameter"
                )
            self._adopt_semantics(saved, f"{self.run_dir} checkpoint")
            explore = state.get("exploration") or {}  # absent in checkpoints written before issue 13
            return state, None, explore.get("stddev_schedule"), int(explore.get("start_steps", 0))
        if self.initial_weights:
            tensors, config, metadata = load_agent_weights(Path(self.initial_weights))
            if differences := config_differences(config, self.policy_config):
                raise RuntimeError(
                    f"initial_weights {self.initial_weights}: its network differs from the configured one "
                    f"({'; '.join(differences)}); set the network parameter to match"
                )
            self._adopt_semantics(config, f"initial_weights {self.initial_weights}")
            schedule, steps = exploration.from_metadata(metadata, f"initial_weights {self.initial_weights}")
            return None, tensors, schedule, steps
        return None, None, None, 0

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
        elif initial is not None:
            self.agent.load_weights(initial)
            self.get_logger().info(f"started from {self.initial_weights}")
        replayed = 0
        for raw in read_journal(self.run_dir / "journal"):
            self.ingest.ingest(deserialize_message(raw, Transition))
            replayed += 1
        if replayed:
            self.get_logger().info(f"replayed {replayed} journaled transitions")
        self._log_expired()

    def schedule_step(self) -> int:
        """The exploration schedule's step: committed training transitions (+ those an initial file carried)."""
        return self.start_steps + self.ingest.counters.training_transitions

    def _log_expired(self) -> None:
        for text in self.ingest.expired:
            self.get_logger().warning(f"cut a staged episode: {text}")
        self.ingest.expired.clear()

    # ---- incoming data (executor thread) ----
    def _on_transition(self, raw: bytes) -> None:
        self.journal.append(raw)  # on disk (OS) before it is handled: a kill cannot lose it
        verdict = self.ingest.ingest(deserialize_message(raw, Transition))
        if verdict is None or verdict.name == "BROKEN":
            self.get_logger().warning(f"dropped: {self.ingest.last_problem}", throttle_duration_sec=2.0)
        if self.ingest.expired:
            self._log_expired()
        committed = self.ingest.counters.training_transitions - self._counted
        if committed:
            self._counted += committed
            if len(self.online) >= self.warmup:
                with self._budget_lock:
                    self.budget.commit(committed)

    def _on_episode(self, msg: EpisodeSummary) -> None:
        if not msg.evaluation:
            self._episodes.append(msg)

    def _on_checkpoint_request(self, request, response):
        self._checkpoint_done.clear()
        self._checkpoint_requested.set()
        response.success = self._checkpoint_done.wait(timeout=60.0)
        response.message = f"checkpoint at {self.updates} updates" if response.success else "timed out"
        return response

    # ---- training (its own thread) ----
    def _train_thread(self) -> None:
        try:
            self._train_loop()
        except BaseException as err:
            if not self._running or not self.context.ok():
                return  # shutting down (Ctrl-C invalidates the context first): destroy_node writes the checkpoint
            # a learner that silently stopped training would look healthy: die instead
            self.get_logger().fatal(f"training thread failed: {type(err).__name__}: {err}")
            os._exit(1)

    def _train_loop(self) -> None:
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
            self._metrics = self.agent.update(batch, self.schedule_step())
            with self._budget_lock:
                self.budget.did_update()
            self.updates += 1
            now = time.monotonic()
            if self.updates % self.publish_every == 0 or now - last_publish >= self.publish_period_s:
                self._publish_weights()
                last_publish = now
            if now - last_checkpoint >= self.checkpoint_period_s:
                self._checkpoint()
                last_checkpoint = now

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
        state = {
            "agent": self.agent.state_dict(),
            "policy_config": self.policy_config.to_json(),
            "counters": {
                "updates": self.updates,
                "weights_version": self.weights_version,  # of learner_epoch; the next epoch restarts at 1
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
        save_checkpoint(self.run_dir / "checkpoints", self.updates, state)
        self.journal.sync()
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
        )
        stats.header.stamp = self.get_clock().now().to_msg()
        self.stats_pub.publish(stats)
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
        if self._episodes:
            episodes = list(self._episodes)
            scalars["episodes/success_rate"] = float(np.mean([e.success for e in episodes]))
            scalars["episodes/intervention_rate"] = float(
                np.sum([e.intervention_steps for e in episodes]) / max(np.sum([e.steps for e in episodes]), 1)
            )
            scalars["episodes/return"] = float(np.mean([e.episode_return for e in episodes]))
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
        self.writer.close()
        super().destroy_node()


def main(args=None) -> None:
    run_node(LearnerNode, args)


if __name__ == "__main__":
    main()
