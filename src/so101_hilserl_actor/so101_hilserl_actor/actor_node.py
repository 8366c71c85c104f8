"""actor: the 10 Hz HIL-SERL control loop on the follower arm, as ROS plumbing around control_step.ControlStep.

Callbacks store the newest readings (actor_inputs); a loop thread paced by actor_loop.Pacer resets the scene
(sim/reset, or an IK reset on the real arm), hands each step's readings to ControlStep and publishes what it returns;
actor_run says when an episode may start and keeps the run's tally. Waits about an episode run on
control_clock.ControlClock: the wall clock on the robot, simulated time with ``use_sim_time``, granted by this loop
with ``lockstep`` (docs/architecture.md, "Time and lockstep"). On shutdown (node_main) the loop commits the open
episode as truncated ("stopped") and waits for its delivery; an exception in the loop exits with code 1.
"""

from __future__ import annotations

import so101_contract.quiet_interrupt  # noqa: F401  (first: Ctrl-C during the heavy imports below is quiet)

# isort: split
import sys
import threading
import time
from collections import deque
from pathlib import Path

import numpy as np
import rclpy
import torch
from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.duration import Duration
from rclpy.node import Node
from rclpy.task import Future
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Bool, UInt8

from so101_contract import qos
from so101_contract.joints import JOINT_NAMES
from so101_contract.node_main import EXIT_REFUSED, run_node
from so101_contract.parameters import ParameterError, declare_config
from so101_contract.sim_time import ADVANCE_TOPIC
from so101_contract.stamps import ns_to_stamp, stamp_to_ns
from so101_hilserl_actor.actor_config import ActorConfig, clock_problem, control_step
from so101_hilserl_actor.actor_inputs import Readings
from so101_hilserl_actor.actor_loop import IkReset, Pacer, call_sim_reset, dump_policy_inputs, home_pose, run_ik_reset
from so101_hilserl_actor.actor_run import RunTally, waiting_for
from so101_hilserl_actor.control_clock import ControlClock
from so101_hilserl_actor.control_step import StepInputs, StepResult
from so101_hilserl_core.messages import episode_to_msg, transition_to_msg
from so101_hilserl_interfaces.msg import EpisodeSummary, PolicyWeights, RewardSignal, Transition
from so101_hilserl_interfaces.srv import OperatorCommand, ResetEpisode

CONFIG = ActorConfig
STEP_INPUT_WAIT_S = 2.0  # wall seconds a step waits for the readings of its instant in simulated time


class ActorNode(Node):
    def __init__(self):
        super().__init__("actor")
        use_sim_time = bool(self.get_parameter("use_sim_time").value)
        try:
            self.config = c = declare_config(self, CONFIG)
            if problem := clock_problem(c, use_sim_time):
                raise ParameterError(problem)
            self.control = control_step(c)
        except (ValueError, TypeError, OSError) as err:  # ParameterError, PolicyFormatError: ValueErrors
            self.get_logger().fatal(str(err))
            raise SystemExit(EXIT_REFUSED) from None
        self.period = c.control.period_s
        self.actor_id = c.actor_id or f"{self.get_namespace().strip('/') or 'so101'}-{time.time_ns()}"
        self.dump_dir = Path(c.debug_policy_inputs_dir) if c.debug_policy_inputs_dir else None
        self.rng = np.random.default_rng(c.control.seed + 1)  # reset noise and sim seeds
        self.run = RunTally(c)
        self.readings = Readings()
        self._waiting_for = ""  # what the loop waits for, as last logged
        self._stop = threading.Event()
        self.advance_pub = self.create_publisher(Clock, ADVANCE_TOPIC, qos.LATCHED) if c.lockstep else None
        sim_now_ns = (lambda: self.get_clock().now().nanoseconds) if use_sim_time else None
        grant = (lambda until_ns: self.advance_pub.publish(Clock(clock=ns_to_stamp(until_ns)))) if c.lockstep else None
        self.clock = ControlClock(self._stop, self.period, sim_now_ns=sim_now_ns, grant=grant,
                                  warn=self.get_logger().warning)  # fmt: skip
        self.pacer = Pacer(self.period, clock=self.clock)
        self.step_compute_s: deque[float] = deque(maxlen=10_000)  # read by so101_bench.actor

        r = self.readings  # inputs: store the newest, nothing else
        self.create_subscription(JointState, "follower/joint_states",
                                 lambda m: r.store_follower(m.name, m.position, stamp_to_ns(m.header.stamp)),
                                 qos.SENSOR_DATA)  # fmt: skip
        self.create_subscription(JointState, "leader/joint_states", lambda m: r.store_leader(m.name, m.position),
                                 qos.SENSOR_DATA)  # fmt: skip
        self.create_subscription(Image, "wrist_camera/image_raw",
                                 lambda m: r.add_image(stamp_to_ns(m.header.stamp), m), qos.SENSOR_DATA)  # fmt: skip
        self.create_subscription(Bool, "intervention", lambda m: setattr(r, "intervention", bool(m.data)),
                                 qos.LATCHED)  # fmt: skip
        self.create_subscription(RewardSignal, "reward/signal", self._on_reward, qos.EVENTS)
        self.create_subscription(PolicyWeights, "hilserl/policy_weights", self._on_weights, qos.LATCHED)
        self.create_subscription(UInt8, "operator/episode_mark", self._on_mark, qos.EVENTS)
        self.command_pub = self.create_publisher(JointState, "follower/joint_commands", qos.COMMAND)
        self.transition_pub = self.create_publisher(Transition, "hilserl/transitions", qos.TRANSITIONS)
        self.episode_pub = self.create_publisher(EpisodeSummary, "hilserl/episodes", qos.EVENTS)
        self.reset_client = self.create_client(ResetEpisode, "sim/reset", callback_group=ReentrantCallbackGroup())

        self.finished = Future()  # completes when the loop ends: node_main stops spinning, the process exits 0
        self._loop = threading.Thread(target=self._run, name="actor-loop", daemon=True)
        self._loop.start()
        time_mode = "lockstep simulated" if self.clock.lockstep else "simulated" if use_sim_time else "wall"
        self.get_logger().info(f"actor {self.actor_id}: {self.run.mode()}, {1 / self.period:.0f} Hz on {time_mode} "
                               f"time, reset {c.reset.reset_mode}, exploration {self.control.schedule} from step "
                               f"{self.control.exploration_step}")  # fmt: skip

    # ---- events for the control step ----
    def _on_reward(self, msg: RewardSignal) -> None:
        self.control.record_reward(stamp_to_ns(msg.header.stamp), float(msg.probability), bool(msg.success))

    def _on_mark(self, msg: UInt8) -> None:
        if msg.data == OperatorCommand.Request.MARK_SUCCESS:
            self.control.mark_success()
        elif msg.data == OperatorCommand.Request.MARK_FAILURE:
            self.control.mark_failure()

    def _on_weights(self, msg: PolicyWeights) -> None:
        problem = self.control.offer_weights(msg.version, msg.learner_epoch, bytes(msg.data), msg.sha256,
                                             msg.stddev_schedule, msg.environment_steps, time.time_ns())  # fmt: skip
        if problem:
            self.get_logger().warning(f"policy weights {msg.version} refused, keeping "
                                      f"{self.control.policy_version}: {problem}")  # fmt: skip

    def _read_inputs(self) -> StepInputs | None:
        return self.readings.step_inputs(self.get_clock().now().nanoseconds, self.control.choose_image)

    # ---- the loop ----
    def _run(self) -> None:
        # In this thread: torch's thread count is per thread; one thread, no OpenMP spinning against the executor.
        torch.set_num_threads(self.config.torch_threads)
        sys.setswitchinterval(0.0005)  # hand the GIL back quickly: callback threads must not stall the step
        while not self._stop.is_set() and rclpy.ok(context=self.context):
            if missing := self._missing():
                if missing != self._waiting_for:  # once, and again when it changes
                    self.get_logger().info(f"waiting for {missing}")
                self._waiting_for = missing
                self.clock.wait_for(lambda: not self._missing(), timeout_s=0.05)  # in lockstep: granting ahead
                self.pacer.restart()
            elif not self.control.episode_open:
                if self.run.over:
                    break
                self._start_episode()
                self.pacer.restart()
            elif self.pacer.sleep_until_due() and self._wait_for_instant():
                inputs = self._read_inputs()
                self.pacer.step_started()
                started = time.perf_counter()
                self._publish(self.control.step(inputs))
                self.step_compute_s.append(time.perf_counter() - started)  # wall seconds of the step's work
                self.pacer.wait()
        if rclpy.ok(context=self.context):  # commit the open episode, truncated, and see it delivered
            # Its own o_T+1, if one comes in time (granting it in lockstep); the stop is set: not stoppable.
            pending = self.control.pending_stamp_ns
            self.clock.wait_for(lambda: self.readings.image_after(pending), wall_timeout_s=0.3, stoppable=False)
            self._publish(self.control.stop(self._read_inputs()))
            for pub in (self.transition_pub, self.episode_pub):
                pub.wait_for_all_acked(Duration(seconds=2.0))
        self.get_logger().info(self.run.summary())
        self.finished.set_result(True)

    def _missing(self) -> str:
        takers = self.transition_pub.get_subscription_count()
        return waiting_for(self.readings.missing(), takers, self.config, self.control.holds_learner_weights)

    def _wait_for_instant(self) -> bool:
        """Simulated time: wait (wall-bounded by STEP_INPUT_WAIT_S, then the step goes on with the newest) for the
        readings of the step's instant; in lockstep, where waiting costs no simulated time, also for the reward node's
        verdict on its image when the step acts on judged images and a reward node is there. False only when stopped."""
        if not self.clock.simulated:
            return True
        due_ns = round(self.pacer.due * 1e9)
        verdict = (self.clock.lockstep and self.control.config.use_reward_signal
                   and self.count_publishers("reward/signal") > 0)  # fmt: skip
        judged = self.control.judged if verdict else None
        if self.clock.wait_for(lambda: self.readings.instant_in(due_ns, judged), wall_timeout_s=STEP_INPUT_WAIT_S,
                               grant_ahead=False):  # fmt: skip
            return True
        if self._stop.is_set():
            return False
        self.get_logger().warning(f"the wrist image, follower state or reward verdict of the step at "
                                  f"{due_ns * 1e-9:.3f} s (sim time) did not arrive within {STEP_INPUT_WAIT_S} s of "
                                  "wall time: stepping with the newest (does the simulation render on the control "
                                  "period's grid?)", throttle_duration_sec=5.0)  # fmt: skip
        return True

    def _start_episode(self) -> None:
        reset_ns = self.get_clock().now().nanoseconds
        evaluation = self.run.next_is_evaluation()
        if problem := self._reset_scene(evaluation):
            self.get_logger().error(self.run.reset_failed(problem, self.config.reset.reset_retry_pause_s))
            self._stop.wait(self.config.reset.reset_retry_pause_s)  # wall clock: the simulation may be what is missing
            return
        self.clock.sleep(self.config.reset.reset_pause_s)
        self.readings.keep_images_after(reset_ns)  # only images captured after the reset describe the new episode
        if not self.clock.wait_for(lambda: self.readings.image_after(reset_ns), timeout_s=5.0):
            if not self._stop.is_set():
                self.get_logger().warning("no wrist image within 5 s after the reset: resetting again")
            return
        # An evaluation episode measures the policy alone: wait until the flag of a correction that ended with the
        # previous episode is released (the detector's release delay, ~0.5 s).
        if evaluation and not self.clock.wait_for(lambda: not self.readings.intervention, timeout_s=3.0):
            self.get_logger().warning("evaluation episode starts while the intervention flag is still set")
        self.control.begin_episode(self.get_clock().now().nanoseconds, evaluation=evaluation)

    def _reset_scene(self, evaluation: bool) -> str:
        if self.config.reset.reset_mode == "sim":
            request = ResetEpisode.Request(seed=int(self.rng.integers(2**31)), randomize=True,
                                           operator_hands_off=evaluation)  # fmt: skip
            return call_sim_reset(self.reset_client, request, self._stop.is_set)
        home = home_pose(self.control.kinematics, self.readings.follower(), self.rng.uniform(-0.01, 0.01, 3),
                         self.control.config.action.gripper_range[1])  # gripper open  # fmt: skip
        reset = IkReset(home, self.config.reset)
        return run_ik_reset(reset, self.readings.follower, self._command, Pacer(self.period), self._stop.is_set)

    def _publish(self, result: StepResult) -> None:
        if result.command is not None:
            self._command(result.command)
        if result.stale:
            self.get_logger().warning("wrist image is stale: holding the arm", throttle_duration_sec=2.0)
        if result.policy_inputs is not None and self.dump_dir is not None:
            dump_policy_inputs(self.dump_dir, self.control.episode_id, result.step_index, *result.policy_inputs)
        if result.transition is not None:
            self.transition_pub.publish(transition_to_msg(result.transition, self.actor_id))
        if result.episode is not None:
            self.episode_pub.publish(episode_to_msg(result.episode, self.actor_id, self.get_clock().now().nanoseconds))
            self.get_logger().info(self.run.record(result.episode))

    def _command(self, q: np.ndarray) -> None:
        msg = JointState(name=list(JOINT_NAMES), position=[float(v) for v in q])
        msg.header.stamp = self.get_clock().now().to_msg()
        self.command_pub.publish(msg)

    shutdown_timeout_s = 6.0  # node_main: the loop's commit waits up to 2 s for delivery

    def destroy_node(self) -> None:
        self._stop.set()  # the loop commits the open episode, then ends
        if self._loop.is_alive() and threading.current_thread() is not self._loop:
            self._loop.join(timeout=5.0)
        super().destroy_node()


def main(args=None) -> None:
    run_node(ActorNode, args)


if __name__ == "__main__":
    main()
