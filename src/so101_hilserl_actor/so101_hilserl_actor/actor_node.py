"""actor: the 10 Hz HIL-SERL control loop on the follower arm.

Each control step: newest joints and wrist image (stale images are counted and the arm holds), the one
preprocessing, the 18-value state, the frame stack; the policy's action (exploration noise while training, the mean
in evaluation) through one IK step onto the follower — or, while a person drives the leader, the leader's joints
onto the follower and the person's action recorded in the same 4-D space. The previous step becomes a transition
once its outcome (the next observation and the classifier's verdict on that image) is known.

The loop runs in its own thread with absolute-time pacing; subscriptions only store the newest values, so the loop
never waits on I/O. New weights are validated when they arrive and swapped only at the configured boundary.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections import deque
from dataclasses import replace

import numpy as np
import rclpy
import torch
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.node import Node
from rclpy.task import Future
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Bool, UInt8

from so101_driver import qos
from so101_driver.image_messages import image_msg_to_array
from so101_driver.joints import JOINT_NAMES, positions_by_name
from so101_driver.kinematics import HOME_EE_POSITION, TOOL_DOWN, Kinematics
from so101_driver.node_main import run_node
from so101_driver.preprocessing import ImagePreprocessing
from so101_hilserl_actor.action_mapping import ActionConfig, human_action_from_joints, policy_action_to_joints
from so101_hilserl_actor.episode import EpisodeConfig, EpisodeTracker
from so101_hilserl_actor.messages import observation_to_msg
from so101_hilserl_actor.observation import FrameStack, StateBuilder
from so101_hilserl_actor.policy import Policy, PolicyConfig, linear_schedule, sample_exploration
from so101_hilserl_actor.policy_io import PolicyFormatError, load_policy, policy_from_bytes, sha256_hex
from so101_hilserl_interfaces.msg import EpisodeSummary, PolicyWeights, RewardSignal, Transition
from so101_hilserl_interfaces.srv import OperatorCommand, ResetEpisode

GRIPPER = JOINT_NAMES.index("gripper")


class ActorNode(Node):
    def __init__(self):
        super().__init__("actor")
        p = self._param
        self.period = 1.0 / p("control_rate_hz", 10.0, "control rate (Hz)")
        self.actor_id = p("actor_id", "", "identifies this actor in transitions; '' = node namespace + start time")
        self.actor_id = self.actor_id or f"{self.get_namespace().strip('/') or 'so101'}-{time.time_ns()}"
        initial_weights = p("initial_weights", "", "policy or agent .safetensors to start from ('' = random init)")
        network = p("network", "", "JSON overrides of PolicyConfig fields (must match the learner's)")
        self.random_steps = p("random_steps", 500, "uniform random actions for this many steps when starting fresh")
        self.stddev_schedule = p("stddev_schedule", "linear(1.0,0.1,20000)", "exploration std over actor steps")
        self.evaluation = p("evaluation", False, "deterministic policy, no exploration; episodes flagged evaluation")
        self.max_episodes = p("max_episodes", 0, "stop after this many episodes (0 = run until stopped)")
        self.swap_at = p("swap_weights_at", "episode", "when to take new weights: episode or step")
        self.reset_mode = p("reset_mode", "sim", "sim: call sim/reset; ik: drive to the home pose by IK")
        self.reset_pause_s = p("reset_pause_s", 0.5, "pause after a reset (the operator repositions the cube)")
        self.use_reward_signal = p("use_reward_signal", True, "pair each image with the classifier's reward/signal")
        self.wait_for_subscribers = p(
            "wait_for_subscribers", 1, "start episodes only when this many nodes (learner, recorder) take transitions"
        )
        seed = p("seed", 0, "seed of exploration noise and random actions")
        self.torch_threads = p("torch_threads", 1, "torch CPU threads for inference")
        self.episode_config = EpisodeConfig(
            max_steps=p("max_steps", 100, "steps per episode (10 s at 10 Hz)"),
            success_threshold=p("success_threshold", 0.7, "classifier probability that counts as success"),
            consecutive_success_frames=p("consecutive_success_frames", 3, "positive frames in a row for success"),
            min_steps_before_success=p("min_steps_before_success", 10, "no success before this step"),
            max_frame_age_s=p("max_frame_age_s", 0.25, "older images are stale: counted, and the arm holds"),
        )
        self.action_config = ActionConfig(max_joint_step_rad=p("max_joint_step", 0.3, "per-step joint change (rad)"))
        self.preprocessing = ImagePreprocessing.from_parameter(
            p(
                "preprocessing",
                "",
                "JSON of image crop/resize fields changed from the project default ('' = default); "
                "the reward node must get the same value",
            )
        )

        self.kinematics = Kinematics()
        try:
            overrides = json.loads(network) if network else {}
            self.policy_config = replace(PolicyConfig(), **overrides)
        except (TypeError, ValueError) as err:
            raise ValueError(f"parameter network={network!r}: {err}") from err
        if self.preprocessing.output_size != self.policy_config.image_size:
            raise ValueError(
                f"preprocessing output_size {self.preprocessing.output_size} differs from the policy's image_size "
                f"{self.policy_config.image_size}: set network's image_size or preprocessing's output_size to match"
            )
        self.policy = Policy(self.policy_config).eval()
        self.policy_version = 0
        self.started_fresh = not initial_weights
        if initial_weights:
            self.policy = load_policy(initial_weights, expected=self.policy_config).eval()
            self.get_logger().info(f"initial weights from {initial_weights}")
        self._inference = self.policy.traced()  # shares the policy's parameters: swaps update it too
        self._pending_weights: tuple[int, dict] | None = None
        self.rng = np.random.default_rng(seed)
        self.torch_rng = torch.Generator().manual_seed(seed)

        self.state_builder = StateBuilder(self.kinematics, self.period)
        self.stack = FrameStack(self.policy_config.frame_stack, (self.policy_config.image_size,) * 2 + (3,))
        self.tracker = EpisodeTracker(self.episode_config)

        self._lock = threading.Lock()
        self._follower: np.ndarray | None = None
        self._leader: np.ndarray | None = None
        self._images: deque[Image] = deque(maxlen=8)
        self._intervention = False
        group = ReentrantCallbackGroup()
        self.create_subscription(JointState, "follower/joint_states", self._on_follower, qos.SENSOR_DATA)
        self.create_subscription(JointState, "leader/joint_states", self._on_leader, qos.SENSOR_DATA)
        self.create_subscription(Image, "wrist_camera/image_raw", self._on_image, qos.SENSOR_DATA)
        self.create_subscription(Bool, "intervention", self._on_intervention, qos.LATCHED)
        self.create_subscription(RewardSignal, "reward/signal", self._on_reward, qos.EVENTS)
        self.create_subscription(PolicyWeights, "hilserl/policy_weights", self._on_weights, qos.LATCHED)
        self.create_subscription(UInt8, "operator/episode_mark", self._on_mark, qos.EVENTS)
        self.command_pub = self.create_publisher(JointState, "follower/joint_commands", qos.COMMAND)
        self.transition_pub = self.create_publisher(Transition, "hilserl/transitions", qos.TRANSITIONS)
        self.episode_pub = self.create_publisher(EpisodeSummary, "hilserl/episodes", qos.EVENTS)
        self.reset_client = self.create_client(ResetEpisode, "sim/reset", callback_group=group)

        self.global_step = 0
        self.episode_id = 0
        self.episodes_done = 0
        self.successes = 0
        self.total_steps = 0
        self.loop_periods: deque[float] = deque(maxlen=10_000)  # for jitter statistics (bench_actor)
        self.step_compute_s: deque[float] = deque(maxlen=10_000)
        self._running = True
        self.finished = Future()  # completes after max_episodes
        self._loop = threading.Thread(target=self._run, name="actor-loop", daemon=True)
        self._loop.start()
        mode = "evaluation" if self.evaluation else "training"
        self.get_logger().info(f"actor {self.actor_id}: {mode}, {1 / self.period:.0f} Hz, reset {self.reset_mode}")

    def _param(self, name: str, default, description: str):
        return self.declare_parameter(name, default, ParameterDescriptor(description=description)).value

    # ---- inputs: store the newest, nothing else ----
    def _on_follower(self, msg: JointState) -> None:
        q, _ = positions_by_name(msg.name, msg.position)
        if q is not None:
            with self._lock:
                self._follower = q

    def _on_leader(self, msg: JointState) -> None:
        q, _ = positions_by_name(msg.name, msg.position)
        if q is not None:
            with self._lock:
                self._leader = q

    def _on_image(self, msg: Image) -> None:
        with self._lock:
            self._images.append(msg)

    def _on_intervention(self, msg: Bool) -> None:
        self._intervention = bool(msg.data)

    def _on_reward(self, msg: RewardSignal) -> None:
        with self._lock:
            self.tracker.record_reward_signal(msg.header.stamp, min(max(float(msg.probability), 0.0), 1.0))

    def _on_mark(self, msg: UInt8) -> None:
        with self._lock:
            if msg.data == OperatorCommand.Request.MARK_SUCCESS:
                self.tracker.mark_success()
            elif msg.data == OperatorCommand.Request.MARK_FAILURE:
                self.tracker.mark_failure()

    def _on_weights(self, msg: PolicyWeights) -> None:
        """Validate at once (version, checksum, format, shapes, finite values); swap later, at a boundary."""
        data = bytes(msg.data)
        problem = ""
        if msg.version <= self.policy_version:
            problem = f"version {msg.version} is not newer than {self.policy_version}"
        elif sha256_hex(data) != msg.sha256:
            problem = "checksum mismatch"
        else:
            try:
                tensors, _ = policy_from_bytes(data, expected=self.policy_config)
            except PolicyFormatError as err:
                problem = str(err)
        if problem:
            self.get_logger().warning(f"policy weights {msg.version} refused, keeping {self.policy_version}: {problem}")
            return
        with self._lock:
            self._pending_weights = (int(msg.version), tensors)

    def _swap_weights(self) -> None:
        with self._lock:
            pending, self._pending_weights = self._pending_weights, None
        if pending is not None:
            version, tensors = pending
            self.policy.load_state_dict(tensors, strict=True)
            self.policy_version = version
            self.started_fresh = False  # learned weights: no more random actions

    # ---- the loop ----
    def _run(self) -> None:
        # In this thread: OpenMP's thread count is per thread, and inference runs here. One thread: no OpenMP
        # barrier spinning against the executor threads (measured: p50 30 ms with the default, 3 ms with 1).
        torch.set_num_threads(self.torch_threads)
        sys.setswitchinterval(0.0005)  # hand the GIL back quickly: callback threads must not stall the control step
        next_tick = time.monotonic()
        last_tick = None
        while self._running and rclpy.ok(context=self.context):
            if not self._wait_for_inputs():
                time.sleep(0.05)
                next_tick = time.monotonic()
                continue
            if self.tracker.episode_id is None or self.tracker.done:
                if not self._start_episode():
                    return
                next_tick, last_tick = time.monotonic(), None
                continue
            now = time.monotonic()
            if last_tick is not None:
                self.loop_periods.append(now - last_tick)
            last_tick = now
            started = time.perf_counter()
            self._control_step()
            self.step_compute_s.append(time.perf_counter() - started)
            next_tick += self.period
            delay = next_tick - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            else:
                next_tick = time.monotonic()  # overran: start the next step now, do not burst to catch up

    def _wait_for_inputs(self) -> bool:
        if self.transition_pub.get_subscription_count() < self.wait_for_subscribers:
            self.get_logger().info("waiting for a learner on hilserl/transitions", throttle_duration_sec=5.0)
            return False
        with self._lock:
            return self._follower is not None and self._leader is not None and bool(self._images)

    def _start_episode(self) -> bool:
        if self.max_episodes and self.episodes_done >= self.max_episodes:
            self._report_and_stop()
            return False
        self._swap_weights()  # the boundary for "episode" (and a safe point for "step")
        self._reset_scene()
        # Only images captured after the reset describe the new episode: drop the older ones, wait for a new one.
        reset_ns = self.get_clock().now().nanoseconds
        deadline = time.monotonic() + 5.0
        while self._running and time.monotonic() < deadline:
            with self._lock:
                self._images = deque((m for m in self._images if _ns(m.header.stamp) > reset_ns), maxlen=8)
                if self._images:
                    break
            time.sleep(0.01)
        self.episode_id += 1
        with self._lock:
            self.tracker.reset(self.episode_id)
        self.state_builder.reset()
        self._pending = None
        self._episode_start = time.monotonic()
        self._prev_leader_gripper = None
        return True

    def _reset_scene(self) -> None:
        if self.reset_mode == "sim":
            if not self.reset_client.wait_for_service(timeout_sec=10.0):
                self.get_logger().error("sim/reset is not available; is the simulation running?")
                return
            request = ResetEpisode.Request(seed=int(self.rng.integers(2**31)), randomize=True)
            future = self.reset_client.call_async(request)
            deadline = time.monotonic() + 10.0
            while not future.done() and time.monotonic() < deadline:
                time.sleep(0.01)
        else:
            self._reset_by_ik()
        time.sleep(self.reset_pause_s)

    def _reset_by_ik(self) -> None:
        """Real arm: slowly to the home pose (fingers down above the workspace), gripper open."""
        with self._lock:
            q = self._follower.copy()
        noise = self.rng.uniform(-0.01, 0.01, 3)
        home, error = self.kinematics.solve_ik(q, HOME_EE_POSITION + noise, tool_direction=TOOL_DOWN)
        if error > 0.005:
            home, _ = self.kinematics.solve_ik(q, HOME_EE_POSITION + noise)
        home[GRIPPER] = self.action_config.gripper_range[1]
        step = 0.05  # rad per control step: slow, so the intervention detector does not mistake it for a grab
        while self._running:
            with self._lock:
                q = self._follower.copy()
            if np.abs(home - q).max() < 0.02:
                break
            self._command(q + np.clip(home - q, -step, step))
            time.sleep(self.period)

    def _newest_image(self, now_ns: int) -> tuple[Image | None, bool]:
        """The image for this step: the newest one the classifier has judged (when rewards are used), else the
        newest. Returns (image, stale)."""
        with self._lock:
            images = list(self._images)
            chosen = images[-1]
            if self.use_reward_signal:
                for image in reversed(images):
                    if self.tracker.reward_for(image.header.stamp)[2]:
                        chosen = image
                        break
        return chosen, self.tracker.is_stale(chosen.header.stamp, now_ns)

    def _control_step(self) -> None:
        now_ns = self.get_clock().now().nanoseconds
        image_msg, stale = self._newest_image(now_ns)
        with self._lock:
            q, leader = self._follower.copy(), self._leader.copy()
        intervening = self._intervention
        if stale:
            self.tracker.stale_frames += 1
            self.get_logger().warning("wrist image is stale: holding the arm", throttle_duration_sec=2.0)
            self._command(q)
            return

        frame = self.preprocessing.apply(image_msg_to_array(image_msg), image_msg.encoding)
        state = self.state_builder.build(q)
        if self._pending is None:
            self.stack.reset(frame, state)
        else:
            self.stack.push(frame, state)
            if self._finish_transition(frame, state, image_msg):
                return
        if self.swap_at == "step":
            self._swap_weights()

        if intervening:
            prev = leader[GRIPPER] if self._prev_leader_gripper is None else self._prev_leader_gripper
            action = human_action_from_joints(q, leader, prev, self.kinematics, self.action_config)
            target = np.clip(
                leader, q - self.action_config.max_joint_step_rad, q + self.action_config.max_joint_step_rad
            )
            target = np.clip(target, self.kinematics.lower, self.kinematics.upper)
            policy_action = action  # the policy was not consulted
            self._prev_leader_gripper = float(leader[GRIPPER])
        else:
            policy_action = self._policy_action()
            action = policy_action
            target = policy_action_to_joints(action, q, self.kinematics, self.action_config)
            self._prev_leader_gripper = None
        self._command(target)
        self._pending = (frame, state, image_msg.header.stamp, action, policy_action, intervening)
        self.global_step += 1

    def _policy_action(self) -> np.ndarray:
        if self.started_fresh and not self.evaluation and self.global_step < self.random_steps:
            return self.rng.uniform(-1.0, 1.0, 4).astype(np.float32)
        pixels = torch.from_numpy(self.stack.pixels()).unsqueeze(0)
        state = torch.from_numpy(self.stack.state()).unsqueeze(0)
        with torch.no_grad():
            mean = self._inference(pixels, state)
        if self.evaluation:
            return mean[0].numpy().astype(np.float32)
        std = linear_schedule(self.stddev_schedule, self.global_step)
        return sample_exploration(mean, std, None, self.torch_rng)[0].numpy().astype(np.float32)

    def _finish_transition(self, next_frame, next_state, next_image: Image) -> bool:
        """The previous step's outcome is known: publish its transition. Returns True when the episode ended."""
        frame, state, stamp, action, policy_action, intervening = self._pending
        with self._lock:
            outcome = self.tracker.step(next_image.header.stamp, intervention=intervening)
        msg = Transition(
            actor_id=self.actor_id,
            episode_id=self.episode_id,
            step=self.tracker.steps - 1,
            action=[float(v) for v in action],
            policy_action=[float(v) for v in policy_action],
            intervention=bool(intervening),
            reward=float(outcome.reward),
            success_probability=float(outcome.probability),
            terminated=outcome.terminated,
            truncated=outcome.truncated,
            policy_version=self.policy_version,
            evaluation=self.evaluation,
        )
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.header.frame_id = "base_link"
        msg.observation = observation_to_msg(frame, state, stamp)
        if outcome.terminated or outcome.truncated:
            msg.next_observation = [observation_to_msg(next_frame, next_state, next_image.header.stamp)]
        self.transition_pub.publish(msg)
        if outcome.end_reason:
            self._end_episode()
            return True
        return False

    def _end_episode(self) -> None:
        summary = self.tracker.summary()
        msg = EpisodeSummary(
            actor_id=self.actor_id,
            episode_id=self.episode_id,
            steps=summary["steps"],
            episode_return=float(summary["episode_return"]),
            success=bool(summary["success"]),
            intervention_steps=summary["intervention_steps"],
            interventions=summary["interventions"],
            stale_frames=summary["stale_frames"],
            policy_version=self.policy_version,
            end_reason=summary["end_reason"],
            evaluation=self.evaluation,
            duration=float(time.monotonic() - self._episode_start),
        )
        msg.header.stamp = self.get_clock().now().to_msg()
        self.episode_pub.publish(msg)
        self.episodes_done += 1
        self.successes += int(msg.success)
        self.total_steps += msg.steps
        self.get_logger().info(
            f"episode {self.episode_id}: {msg.end_reason} after {msg.steps} steps, return {msg.episode_return:.2f}, "
            f"intervention {msg.intervention_steps}/{msg.steps}, weights v{self.policy_version}"
        )

    def _report_and_stop(self) -> None:
        rate = self.successes / max(self.episodes_done, 1)
        self.get_logger().info(
            f"{'evaluation' if self.evaluation else 'run'} finished: {self.episodes_done} episodes, "
            f"success rate {rate:.0%}, mean steps {self.total_steps / max(self.episodes_done, 1):.1f}"
        )
        self._running = False
        self.finished.set_result(True)  # node_main stops spinning; the process exits 0

    def _command(self, q: np.ndarray) -> None:
        msg = JointState(name=list(JOINT_NAMES), position=[float(v) for v in q])
        msg.header.stamp = self.get_clock().now().to_msg()
        self.command_pub.publish(msg)

    def destroy_node(self) -> None:
        self._running = False
        if self._loop.is_alive() and threading.current_thread() is not self._loop:
            self._loop.join(timeout=5.0)
        super().destroy_node()


def _ns(stamp) -> int:
    return stamp.sec * 1_000_000_000 + stamp.nanosec


def main(args=None) -> None:
    run_node(ActorNode, args)


if __name__ == "__main__":
    main()
