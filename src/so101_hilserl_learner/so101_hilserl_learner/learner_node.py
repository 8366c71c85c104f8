"""learner: consumes transitions, trains DrQ-v2 in its own thread, publishes policy weights and stats.

Everything it receives is journaled before it is handled (so101_hilserl_learner.journal); checkpoints are atomic
(so101_hilserl_learner.checkpoint); on start it loads the newest checkpoint and replays the journal, so a killed
learner resumes with its buffers, networks, optimisers and counters.
"""

from __future__ import annotations

import json
import threading
import time
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
from so101_hilserl_actor.policy import PolicyConfig
from so101_hilserl_actor.policy_io import policy_to_bytes, sha256_hex
from so101_hilserl_actor.state_vector import STATE_DIM
from so101_hilserl_interfaces.msg import EpisodeSummary, LearnerStats, PolicyWeights, Transition
from so101_hilserl_learner.agent import AgentConfig, DrQV2Agent
from so101_hilserl_learner.checkpoint import load_latest_checkpoint, save_checkpoint
from so101_hilserl_learner.checkpoint_import import load_agent_weights
from so101_hilserl_learner.ingest import TransitionIngest
from so101_hilserl_learner.journal import TransitionJournal, read_journal
from so101_hilserl_learner.replay import MixedSampler, ReplayBuffer


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
        self.utd_ratio = p("utd_ratio", 1.0, "updates per received transition (the update-to-data ratio)")
        self.warmup = p("warmup_transitions", 1000, "online transitions needed before training starts")
        online_capacity = p("online_capacity", 100_000, "transitions kept in the online buffer")
        demo_capacity = p("demo_capacity", 20_000, "transitions kept in the demonstration buffer")
        demo_fraction = p("demo_fraction", 0.5, "share of each batch drawn from the demonstration buffer")
        nstep = p("nstep", 3, "n of the n-step returns")
        discount = p("discount", 0.99, "discount factor")
        agent_config = AgentConfig(
            lr=p("lr", 1e-4, "AdamW learning rate of encoder, actor and critic"),
            critic_target_tau=p("critic_target_tau", 0.01, "soft target update rate"),
            stddev_schedule=p("stddev_schedule", "linear(1.0,0.1,500000)", "exploration std schedule (updates)"),
            stddev_clip=p("stddev_clip", 0.3, "clip of the target policy noise"),
            seed=seed,
        )
        self.publish_every = p("publish_every_updates", 50, "publish weights after this many updates...")
        self.publish_period_s = p("publish_period_s", 5.0, "...or this many seconds, whichever comes first")
        self.checkpoint_period_s = p("checkpoint_period_s", 120.0, "seconds between checkpoints")
        stats_period = p("stats_period_s", 1.0, "seconds between learner_stats messages and TensorBoard scalars")
        fsync_period = p("journal_fsync_period_s", 1.0, "journal fsync period: the loss window on power failure")
        train_on_evaluation = p("train_on_evaluation", False, "also train on deterministic evaluation episodes")

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
            self.online, self.demo, size, self.policy_config.frame_stack, train_on_evaluation
        )
        self.updates = 0
        self.weights_version = 0
        self._restore()
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
        if self.updates > 0:
            self._publish_weights()  # an actor that starts after a restart gets the resumed weights at once
        self._trainer = threading.Thread(target=self._train_loop, name="learner-train", daemon=True)
        self._trainer.start()
        self.get_logger().info(
            f"learner on {self.device}: run dir {self.run_dir}, {len(self.online)} online / {len(self.demo)} demo "
            f"transitions, {self.updates} updates so far, UTD {self.utd_ratio}, warm-up {self.warmup}"
        )

    def _param(self, name: str, default, description: str):
        return self.declare_parameter(name, default, ParameterDescriptor(description=description)).value

    # ---- restart ----
    def _restore(self) -> None:
        latest = load_latest_checkpoint(self.run_dir / "checkpoints")
        if latest is not None:
            _, state = latest
            saved = PolicyConfig.from_json(state["policy_config"])
            if saved != self.policy_config:
                raise RuntimeError(
                    f"{self.run_dir}: the checkpoint's network {saved} differs from the configured "
                    f"{self.policy_config}; use another run_dir or the same network parameter"
                )
            self.agent.load_state_dict(state["agent"])
            self.updates = int(state["counters"]["updates"])
            self.weights_version = int(state["counters"]["weights_version"])
        elif self.initial_weights:
            tensors, config, _ = load_agent_weights(Path(self.initial_weights))
            if config != self.policy_config:
                raise RuntimeError(
                    f"initial_weights {self.initial_weights}: its network {config} differs from the configured "
                    f"{self.policy_config}; set the network parameter to match"
                )
            self.agent.load_weights(tensors)
            self.get_logger().info(f"started from {self.initial_weights}")
        replayed = 0
        for raw in read_journal(self.run_dir / "journal"):
            self.ingest.ingest(deserialize_message(raw, Transition))
            replayed += 1
        if replayed:
            self.get_logger().info(f"replayed {replayed} journaled transitions")

    # ---- incoming data (executor thread) ----
    def _on_transition(self, raw: bytes) -> None:
        self.journal.append(raw)  # on disk (OS) before it is handled: a kill cannot lose it
        verdict = self.ingest.ingest(deserialize_message(raw, Transition))
        if verdict is None or verdict.name == "BROKEN":
            self.get_logger().warning(f"dropped: {self.ingest.last_problem}", throttle_duration_sec=2.0)

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
    def _train_loop(self) -> None:
        last_publish = last_checkpoint = time.monotonic()
        while self._running:
            if self._checkpoint_requested.is_set():
                self._checkpoint()
                last_checkpoint = time.monotonic()
            budget = self.utd_ratio * self.ingest.counters.accepted - self.updates
            if len(self.online) < self.warmup or budget < 1.0:
                time.sleep(0.02)
                continue
            batch = self.sampler.sample(self.batch_size).to_torch(self.device)
            self._metrics = self.agent.update(batch, self.updates)
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
            learner_updates=self.updates,
            format="safetensors",
            data=data,
            sha256=sha256_hex(data),
            network_config=self.policy_config.to_json(),
        )
        msg.header.stamp = self.get_clock().now().to_msg()
        self.weights_pub.publish(msg)

    def _checkpoint(self) -> None:
        state = {
            "agent": self.agent.state_dict(),
            "policy_config": self.policy_config.to_json(),
            "counters": {"updates": self.updates, "weights_version": self.weights_version},
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
        t0, u0, a0 = self._rate_window[0]
        elapsed = max(now - t0, 1e-6)
        metrics = dict(self._metrics)
        stats = LearnerStats(
            updates=self.updates,
            updates_per_second=(self.updates - u0) / elapsed,
            update_to_data_ratio=(self.updates - u0) / max(accepted - a0, 1),
            transitions_received=accepted,
            transitions_dropped=self.ingest.dropped,
            segments_dropped=self.ingest.sequencer.broken_segments,
            online_buffer_size=len(self.online),
            demo_buffer_size=len(self.demo),
            weights_version=self.weights_version,
            critic_loss=metrics.get("critic_loss", float("nan")),
            actor_loss=metrics.get("actor_loss", float("nan")),
            q_mean=metrics.get("q_mean", float("nan")),
            actor_stddev=metrics.get("actor_stddev", float("nan")),
        )
        stats.header.stamp = self.get_clock().now().to_msg()
        self.stats_pub.publish(stats)
        scalars = {
            "buffer/online": len(self.online),
            "buffer/demo": len(self.demo),
            "learner/updates_per_second": stats.updates_per_second,
            "data/transitions": accepted,
            "data/dropped": stats.transitions_dropped,
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

    def destroy_node(self) -> None:
        self._running = False
        self._trainer.join(timeout=30.0)
        self._checkpoint()  # Ctrl-C leaves a resumable run
        self.journal.close()
        self.writer.close()
        super().destroy_node()


def main(args=None) -> None:
    run_node(LearnerNode, args)


if __name__ == "__main__":
    main()
