"""actor: the 10 Hz HIL-SERL control loop on the follower arm, as ROS plumbing around control_step.ControlStep.

Subscriptions store the newest readings; a loop thread paced by actor_loop.Pacer resets the scene (sim/reset, or
actor_loop.IkReset on the real arm), then hands each step's readings to ControlStep and publishes what it returns
(joint command, transition, episode summary). Every 1 + ``evaluation_every_episodes``-th episode is an evaluation
episode (evaluation.py).

Time (control_clock.ControlClock): on the robot the wall clock. With ``use_sim_time`` every wait about the episode
(the control period, the reset pause, waiting for inputs or for an image after the reset) runs on simulated time,
steps start on the grid of the control period, and a step first waits (wall-bounded) until the image and follower
state of its instant are in: the simulation publishes them before the ``/clock`` of that instant, but they may
arrive after it. With ``lockstep`` the loop also grants simulated time on sim/advance_until (so101_contract.sim_time
has the protocol). Service calls, the retry pause after a failed reset and the IK reset keep the wall clock. Stamps
and episode durations are on the node clock (simulated time in simulation).

On shutdown (SIGINT/SIGTERM through node_main, which calls destroy_node with the context still valid) the loop
commits the open episode as truncated ("stopped") and waits for its delivery before the node goes; an exception in
the loop ends the process with code 1 (node_main).
"""

from __future__ import annotations

import so101_contract.quiet_interrupt  # noqa: F401  (first: Ctrl-C during the heavy imports below is quiet)

# isort: split
import json
import sys
import threading
import time
from collections import deque
from dataclasses import replace
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
from so101_hilserl_core.messages import episode_to_msg, transition_to_msg
from so101_hilserl_core.policy import PolicyConfig
from so101_hilserl_core.policy_io import load_initial_policy
from std_msgs.msg import Bool, UInt8

from so101_contract import qos
from so101_contract.joints import JOINT_NAMES, positions_by_name
from so101_contract.node_main import EXIT_REFUSED, run_node
from so101_contract.sim_time import ADVANCE_TOPIC
from so101_contract.stamps import ns_to_stamp, stamp_to_ns
from so101_driver.model.kinematics import Kinematics
from so101_driver.vision.image_messages import image_msg_to_array
from so101_driver.vision.preprocessing import ImagePreprocessing
from so101_hilserl_actor import actor_parameters
from so101_hilserl_actor.actor_loop import IkReset, Pacer, dump_policy_inputs, home_pose, run_ik_reset
from so101_hilserl_actor.control_clock import ControlClock
from so101_hilserl_actor.control_step import ControlStep, StepInputs, StepResult
from so101_hilserl_actor.evaluation import EvaluationSchedule
from so101_hilserl_interfaces.msg import EpisodeSummary, PolicyWeights, RewardSignal, Transition
from so101_hilserl_interfaces.srv import OperatorCommand, ResetEpisode

STEP_INPUT_WAIT_S = 2.0  # wall seconds a step waits for the readings of its instant in simulated time


class ActorNode(Node):
    def __init__(self):
        super().__init__("actor")
        try:
            v = actor_parameters.declare(self)
            use_sim_time = bool(self.get_parameter("use_sim_time").value)
            actor_parameters.check_clock(v, use_sim_time)
            self.reset_config = actor_parameters.reset_config(v)
            config = actor_parameters.control_config(v)
            preprocessing = ImagePreprocessing.from_parameter(v["preprocessing"])
            network = replace(PolicyConfig(), **(json.loads(v["network"]) if v["network"] else {}))
            policy, schedule, steps = load_initial_policy(v["initial_weights"], network)
            self.kinematics = Kinematics()
            self.control = ControlStep(config, policy, self.kinematics, preprocessing,
                                       pretrained=bool(v["initial_weights"]), schedule=schedule,
                                       environment_steps=steps)  # fmt: skip
        except (ValueError, TypeError, OSError) as err:  # ParameterError, PolicyFormatError: ValueErrors
            self.get_logger().fatal(str(err))
            raise SystemExit(EXIT_REFUSED) from None
        self.period = config.period_s
        self.actor_id = v["actor_id"] or f"{self.get_namespace().strip('/') or 'so101'}-{time.time_ns()}"
        self.max_episodes, self.reset_mode, self.evaluation = v["max_episodes"], v["reset_mode"], v["evaluation"]
        self.reset_pause_s, self.retry_pause_s = v["reset_pause_s"], v["reset_retry_pause_s"]
        self.wait_for_subscribers, self.torch_threads = v["wait_for_subscribers"], v["torch_threads"]
        self.dump_dir = Path(v["debug_policy_inputs_dir"]) if v["debug_policy_inputs_dir"] else None
        self.rng = np.random.default_rng(v["seed"] + 1)  # reset noise and sim seeds
        self.schedule = EvaluationSchedule(v["evaluation_every_episodes"], always=self.evaluation,
                                           training_since_evaluation=v["training_since_evaluation"])  # fmt: skip
        self.wait_for_learner_weights = v["wait_for_learner_weights"]
        self._waiting_for = ""  # what the loop waits for, as last logged
        self._stop = threading.Event()
        self.advance_pub = self.create_publisher(Clock, ADVANCE_TOPIC, qos.LATCHED) if v["lockstep"] else None
        self.clock = ControlClock(
            self._stop,
            self.period,
            sim_now_ns=(lambda: self.get_clock().now().nanoseconds) if use_sim_time else None,
            grant=self._grant if v["lockstep"] else None,
            warn=self.get_logger().warning,
        )
        self.pacer = Pacer(self.period, clock=self.clock)
        self.step_compute_s: deque[float] = deque(maxlen=10_000)
        self.episodes_done = self.successes = self.total_steps = self.reset_failures = self.evaluation_successes = 0

        self._lock = threading.Lock()
        self._follower = self._leader = None
        self._follower_stamp_ns = -1
        self._images: deque[Image] = deque(maxlen=8)
        self._intervention = False
        self.create_subscription(JointState, "follower/joint_states", self._on_joints("_follower"), qos.SENSOR_DATA)
        self.create_subscription(JointState, "leader/joint_states", self._on_joints("_leader"), qos.SENSOR_DATA)
        self.create_subscription(Image, "wrist_camera/image_raw", self._on_image, qos.SENSOR_DATA)
        self.create_subscription(Bool, "intervention", self._on_intervention, qos.LATCHED)
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
        mode, c = "evaluation" if self.evaluation else "training", self.control
        if not self.evaluation and self.schedule.every_episodes:
            mode += f", an evaluation episode after every {self.schedule.every_episodes}"
        time_mode = "lockstep simulated" if self.clock.lockstep else "simulated" if use_sim_time else "wall"
        self.get_logger().info(f"actor {self.actor_id}: {mode}, {1 / self.period:.0f} Hz on {time_mode} time, "
                               f"reset {self.reset_mode}, exploration {c.schedule} from step "
                               f"{c.exploration_step}")  # fmt: skip

    # ---- inputs: store the newest, nothing else ----
    def _on_joints(self, attribute: str):
        def store(msg: JointState) -> None:
            q, _ = positions_by_name(msg.name, msg.position)
            if q is not None:
                with self._lock:
                    setattr(self, attribute, q)
                    if attribute == "_follower":
                        self._follower_stamp_ns = stamp_to_ns(msg.header.stamp)

        return store

    def _on_image(self, msg: Image) -> None:
        with self._lock:
            self._images.append(msg)

    def _on_intervention(self, msg: Bool) -> None:
        self._intervention = bool(msg.data)

    def _on_reward(self, msg: RewardSignal) -> None:
        self.control.record_reward(stamp_to_ns(msg.header.stamp), float(msg.probability), bool(msg.success))

    def _on_mark(self, msg: UInt8) -> None:
        if msg.data == OperatorCommand.Request.MARK_SUCCESS:
            self.control.mark_success()
        elif msg.data == OperatorCommand.Request.MARK_FAILURE:
            self.control.mark_failure()

    def _on_weights(self, msg: PolicyWeights) -> None:
        problem = self.control.offer_weights(msg.version, msg.learner_epoch, bytes(msg.data), msg.sha256,
                                             msg.stddev_schedule, msg.environment_steps,
                                             time.time_ns())  # fmt: skip
        if problem:
            self.get_logger().warning(f"policy weights {msg.version} refused, keeping "
                                      f"{self.control.policy_version}: {problem}")  # fmt: skip

    def _read_inputs(self) -> StepInputs | None:
        with self._lock:
            if self._follower is None or self._leader is None or not self._images:
                return None
            images, q, leader = list(self._images), self._follower.copy(), self._leader.copy()
        image = images[self.control.choose_image([stamp_to_ns(m.header.stamp) for m in images])]
        return StepInputs(self.get_clock().now().nanoseconds, q, leader, image_msg_to_array(image),
                          stamp_to_ns(image.header.stamp), self._intervention, image.encoding)  # fmt: skip

    # ---- the loop ----
    def _run(self) -> None:
        # In this thread: torch's thread count is per thread; one thread, no OpenMP spinning against the executor.
        torch.set_num_threads(self.torch_threads)
        sys.setswitchinterval(0.0005)  # hand the GIL back quickly: callback threads must not stall the step
        while not self._stop.is_set() and rclpy.ok(context=self.context):
            if not self._ready():
                missing = self._missing()
                if missing and missing != self._waiting_for:  # once, and again when it changes
                    self.get_logger().info(f"waiting for {missing}")
                self._waiting_for = missing
                self.clock.wait_for(self._ready, timeout_s=0.05)  # simulated time: granting ahead in lockstep
                self.pacer.restart()
            elif not self.control.episode_open:
                if self.max_episodes and self.episodes_done >= self.max_episodes:
                    break
                self._start_episode()
                self.pacer.restart()
            elif self.pacer.sleep_until_due() and self._wait_for_instant():
                inputs = self._read_inputs()
                self.pacer.step_started()
                started = time.perf_counter()
                self._publish(self.control.step(inputs))
                self.step_compute_s.append(time.perf_counter() - started)
                self.pacer.wait()
        if rclpy.ok(context=self.context):  # commit the open episode, truncated, and see it delivered
            # Its own o_T+1, if one comes in time (granting it in lockstep); the stop is set: not stoppable.
            self._wait_for_image_after(self.control.pending_stamp_ns, wall_timeout_s=0.3, stoppable=False)
            self._publish(self.control.stop(self._read_inputs()))
            for pub in (self.transition_pub, self.episode_pub):
                pub.wait_for_all_acked(Duration(seconds=2.0))
        rate, steps = self.successes / max(self.episodes_done, 1), self.total_steps / max(self.episodes_done, 1)
        evaluations = ""
        if not self.evaluation and self.schedule.evaluation_episodes:
            evaluations = (f", of which {self.schedule.evaluation_episodes} evaluation episodes with success rate "
                           f"{self.evaluation_successes / self.schedule.evaluation_episodes:.0%}")  # fmt: skip
        self.get_logger().info(f"{'evaluation' if self.evaluation else 'run'} finished: {self.episodes_done} "
                               f"episodes, success rate {rate:.0%}, mean steps {steps:.1f}, "
                               f"{self.reset_failures} failed resets{evaluations}")  # fmt: skip
        self.finished.set_result(True)

    def _ready(self) -> bool:
        return not self._missing()

    def _missing(self) -> str:
        """What keeps the loop from starting an episode, in words ('' when nothing does): an input not yet heard,
        too few takers of transitions, the learner's weights when it must wait for them."""
        with self._lock:
            inputs = {"follower/joint_states": self._follower, "leader/joint_states": self._leader,
                      "wrist_camera/image_raw": self._images or None}  # fmt: skip
        missing = [topic for topic, value in inputs.items() if value is None]
        takers = self.transition_pub.get_subscription_count()
        if takers < self.wait_for_subscribers:
            missing.append(f"{self.wait_for_subscribers - takers} more taker(s) of hilserl/transitions (the learner)")
        if self.wait_for_learner_weights and not self.control.holds_learner_weights:
            missing.append("the learner's weights (a resumed run starts from its newest checkpoint)")
        return ", ".join(missing)

    def _wait_for_instant(self) -> bool:
        """Simulated time: wait until the image and the follower state of the step's instant are in (they are
        published before its /clock but may arrive after it); in lockstep, where waiting costs no simulated time,
        also the reward node's verdict on that image when the step acts on judged images and a reward node is
        there (else the step would act on the previous, judged image, depending on how fast the classifier was).
        Wall-bounded: after STEP_INPUT_WAIT_S the step goes on with what is there (the step counts a stale image and
        holds the arm). False only when stopped."""
        if not self.clock.simulated:
            return True
        due_ns = round(self.pacer.due * 1e9)
        verdict = (self.clock.lockstep and self.control.config.use_reward_signal
                   and self.count_publishers("reward/signal") > 0)  # fmt: skip

        def in_() -> bool:
            with self._lock:
                if not self._images or self._follower_stamp_ns < due_ns:
                    return False
                stamp = stamp_to_ns(self._images[-1].header.stamp)
            return stamp >= due_ns and (not verdict or self.control.judged(stamp))

        if self.clock.wait_for(in_, wall_timeout_s=STEP_INPUT_WAIT_S, grant_ahead=False):
            return True
        if self._stop.is_set():
            return False
        self.get_logger().warning(f"the wrist image, follower state or reward verdict of the step at "
                                  f"{due_ns * 1e-9:.3f} s (sim time) did not arrive within {STEP_INPUT_WAIT_S} s of "
                                  "wall time: stepping with the newest (does the simulation render on the control "
                                  "period's grid?)",
                                  throttle_duration_sec=5.0)  # fmt: skip
        return True

    def _start_episode(self) -> None:
        reset_ns = self.get_clock().now().nanoseconds
        evaluation = self.schedule.next_is_evaluation()
        problem = self._reset_scene(evaluation)
        if problem:
            self.reset_failures += 1
            self.get_logger().error(f"reset failed ({self.reset_failures} so far), the episode does not start: "
                                    f"{problem}; retrying in {self.retry_pause_s} s")  # fmt: skip
            self._stop.wait(self.retry_pause_s)  # wall clock: the simulation may be what is missing
            return
        self.clock.sleep(self.reset_pause_s)
        with self._lock:  # only images captured after the reset describe the new episode
            self._images = deque((m for m in self._images if stamp_to_ns(m.header.stamp) > reset_ns), maxlen=8)
        if not self._wait_for_image_after(reset_ns, timeout_s=5.0):
            if not self._stop.is_set():
                self.get_logger().warning("no wrist image within 5 s after the reset: resetting again")
        else:
            if evaluation and not self._hands_off(timeout_s=3.0):
                self.get_logger().warning("evaluation episode starts while the intervention flag is still set")
            self.control.begin_episode(self.get_clock().now().nanoseconds, evaluation=evaluation)

    def _hands_off(self, timeout_s: float) -> bool:
        """An evaluation episode measures the policy alone: wait (simulated time in simulation) until the flag of a
        correction that ended with the previous episode is released (the detector's release delay, ~0.5 s)."""
        return self.clock.wait_for(lambda: not self._intervention, timeout_s=timeout_s)

    def _wait_for_image_after(self, stamp_ns: int, **limits) -> bool:
        """Wait for an image stamped after ``stamp_ns``; ``limits``: ControlClock.wait_for's timeouts (simulated
        time in simulation, granting ahead in lockstep)."""

        def arrived() -> bool:
            with self._lock:
                return bool(self._images) and stamp_to_ns(self._images[-1].header.stamp) > stamp_ns

        return self.clock.wait_for(arrived, **limits)

    def _grant(self, until_ns: int) -> None:
        self.advance_pub.publish(Clock(clock=ns_to_stamp(until_ns)))

    def _reset_scene(self, evaluation: bool) -> str:
        if self.reset_mode == "sim":
            deadline = time.monotonic() + 10.0
            while not self.reset_client.wait_for_service(timeout_sec=0.1):
                if self._stop.is_set() or time.monotonic() > deadline:
                    return "sim/reset is not available; is the simulation running?"
            request = ResetEpisode.Request(seed=int(self.rng.integers(2**31)), randomize=True,
                                           operator_hands_off=evaluation)  # fmt: skip
            future = self.reset_client.call_async(request)
            deadline = time.monotonic() + 10.0
            while not future.done() and time.monotonic() < deadline and not self._stop.is_set():
                time.sleep(0.01)
            return "" if future.done() else "sim/reset did not answer within 10 s"
        gripper_open = self.control.config.action.gripper_range[1]
        home = home_pose(self.kinematics, self._joints(), self.rng.uniform(-0.01, 0.01, 3), gripper_open)
        reset = IkReset(home, self.reset_config)
        return run_ik_reset(reset, self._joints, self._command, Pacer(self.period), self._stop.is_set)

    def _joints(self) -> np.ndarray:
        with self._lock:
            return self._follower.copy()

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
            e = result.episode
            self.episode_pub.publish(episode_to_msg(e, self.actor_id, self.get_clock().now().nanoseconds))
            self.episodes_done, self.successes, self.total_steps = (
                self.episodes_done + 1, self.successes + int(e.success), self.total_steps + e.steps)  # fmt: skip
            self.schedule.record(e.evaluation)
            self.evaluation_successes += int(e.evaluation and e.success)
            kind = "evaluation episode" if e.evaluation else "episode"
            self.get_logger().info(f"{kind} {e.episode_id}: {e.end_reason} after {e.steps} steps, return "
                                   f"{e.episode_return:.2f}, intervention {e.intervention_steps}/{e.steps}, weights "
                                   f"v{e.policy_version}")  # fmt: skip

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
