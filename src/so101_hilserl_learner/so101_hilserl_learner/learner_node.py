"""learner: the ROS shell of the Learner (so101_hilserl_learner.learner), which journals, trains and checkpoints.

Its parameters are LearnerConfig's settings, read-only. It hands hilserl/transitions (raw bytes) and
hilserl/episodes to the Learner, runs the updates in its own training thread, and publishes PolicyWeights,
LearnerStats, TensorBoard scalars and LearnerProgress (so101_contract.sim_time.PROGRESS_TOPIC: after every commit that
owes updates, every update and every HEARTBEAT_S, so a lockstep simulation holds while the learner owes more than
it allows or stops reporting). ``learner/checkpoint`` writes a checkpoint now; a clean shutdown writes one too.
"""

from __future__ import annotations

import so101_contract.quiet_interrupt  # noqa: F401  (first: Ctrl-C during the heavy imports below is quiet)

# isort: split
import threading
import time

from rclpy.clock import Clock, ClockType
from rclpy.node import Node
from std_srvs.srv import Trigger

from so101_contract import qos
from so101_contract.node_main import run_node
from so101_contract.outcomes import Outcome
from so101_contract.parameters import declare_config
from so101_contract.sim_time import PROGRESS_TOPIC
from so101_hilserl_interfaces.msg import EpisodeSummary, LearnerProgress, LearnerStats, PolicyWeights, Transition
from so101_hilserl_learner.learner import Learner, LearnerConfig, Progress
from so101_hilserl_learner.sequencer import Verdict

CONFIG = LearnerConfig  # the node's parameters: every setting of this config dataclass
HEARTBEAT_S = 0.05  # simulated seconds between LearnerProgress reports when nothing else reports (half a period)


class LearnerNode(Node):
    def __init__(self):
        super().__init__("learner")
        self.config = declare_config(self, CONFIG)
        self.learner = Learner(self.config, self.get_logger(), self._publish_progress)
        self.progress_pub = self.create_publisher(LearnerProgress, PROGRESS_TOPIC, qos.LATCHED)  # late joiners get it
        self.weights_pub = self.create_publisher(PolicyWeights, "hilserl/policy_weights", qos.LATCHED)
        self.stats_pub = self.create_publisher(LearnerStats, "hilserl/learner_stats", qos.EVENTS)
        self.create_subscription(Transition, "hilserl/transitions", self._on_transition, qos.TRANSITIONS, raw=True)
        self.create_subscription(EpisodeSummary, "hilserl/episodes", self._on_episode, qos.EVENTS)
        self.create_service(Trigger, "learner/checkpoint", self._on_checkpoint_request)
        # Steady, not the node clock: under use_sim_time a node-clock timer stops while simulated time stands
        # still, and a lockstep sim stands still exactly while it waits for this learner.
        # Message stamps use the node clock (simulated time in simulation); what is about the machine (the stats
        # timer, the update rate, the weights publish period, the checkpoint period) uses the steady clock, which
        # keeps running while simulated time stands still (a lockstep simulation waits for this learner).
        self._steady = Clock(clock_type=ClockType.STEADY_TIME)
        self.create_timer(self.config.stats_period_s, self._publish_stats, clock=self._steady)
        if self.get_parameter("use_sim_time").value:  # simulated time: a lockstep sim holds when this stops
            self.create_timer(HEARTBEAT_S, self.learner.heartbeat)
        self._checkpoint_requested = threading.Event()
        self._checkpoint_done = threading.Event()
        self._running = True
        self._publish_weights()  # version 1 of this epoch: a running actor learns the epoch and schedule at once
        self.learner.heartbeat()  # nothing owed yet; a late sim gets it (transient local)
        self._trainer = threading.Thread(target=self._train_thread, name="learner-train", daemon=True)
        self._trainer.start()
        self.get_logger().info(self.learner.summary())

    # ---- incoming data (executor thread) ----
    def _on_transition(self, raw: bytes) -> None:
        learner = self.learner
        verdict = learner.receive(bytes(raw))
        if verdict in (None, Verdict.IMPLAUSIBLE):
            self.get_logger().warning(
                f"dropped: {learner.ingest.last_problem} ({learner.ingest.counters.invalid} refused so far)",
                throttle_duration_sec=2.0,
            )
        elif verdict is Verdict.GAP:
            self.get_logger().warning(
                f"gap: {learner.ingest.last_problem}; the transitions that need the missing steps are lost "
                f"({learner.ingest.sequencer.broken_segments} gaps so far)",
                throttle_duration_sec=2.0,
            )

    def _on_episode(self, msg: EpisodeSummary) -> None:
        self.learner.add_episode(Outcome.from_msg(msg))

    def _publish_progress(self, progress: Progress) -> None:
        """Called by the Learner under its budget lock: the reports go out in order."""
        msg = LearnerProgress(**progress._asdict())
        msg.header.stamp = self.get_clock().now().to_msg()
        self.progress_pub.publish(msg)

    def _on_checkpoint_request(self, request, response):
        self._checkpoint_done.clear()
        self._checkpoint_requested.set()
        done = self._checkpoint_done.wait(timeout=60.0)
        error = self.learner.checkpoint_error
        response.success = done and error is None
        response.message = (
            f"checkpoint at {self.learner.updates} updates" if response.success
            else f"refused: {error}" if done else "timed out"
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
        config, publish_period_s = self.config, self.config.publish_period_s
        last_publish = last_checkpoint = time.monotonic()
        while self._running:
            if self._checkpoint_requested.is_set():
                self._checkpoint()
                last_checkpoint = time.monotonic()
            if self.learner.update() is None:
                time.sleep(0.02)
                continue
            now = time.monotonic()
            if self.learner.updates % config.publish_every_updates == 0 or now - last_publish >= publish_period_s:
                self._publish_weights()
                last_publish = now
            if now - last_checkpoint >= config.checkpoint_period_s:
                self._checkpoint()
                last_checkpoint = now

    def _publish_weights(self) -> None:
        msg = PolicyWeights(**self.learner.weights()._asdict())
        msg.header.stamp = self.get_clock().now().to_msg()
        self.weights_pub.publish(msg)

    def _checkpoint(self) -> None:
        self.learner.checkpoint()
        self._checkpoint_requested.clear()
        self._checkpoint_done.set()

    # ---- monitoring (executor thread) ----
    def _publish_stats(self) -> None:
        stats = LearnerStats(**self.learner.statistics())
        stats.header.stamp = self.get_clock().now().to_msg()
        self.stats_pub.publish(stats)

    # node_main's bound on the whole shutdown: the update under way (about 1 s at reference sizes on a CPU) and the
    # final checkpoint must fit, and stay under launch's SIGKILL 10 s after its SIGINT.
    shutdown_timeout_s = 9.0

    def destroy_node(self) -> None:
        self._running = False
        self._trainer.join(timeout=5.0)
        self._checkpoint()  # Ctrl-C leaves a resumable run
        self.learner.close()
        super().destroy_node()


def main(args=None) -> None:
    run_node(LearnerNode, args)


if __name__ == "__main__":
    main()
