"""intervention: is a person driving the follower? Publishes the latched ``intervention`` flag and manages the leader.

A thin node around so101_hilserl_actor.intervention (the detector and the leader decisions are pure logic there):

- every control step (``control_rate_hz``) it feeds the newest follower and leader joint states to the detector,
  with the newest command it sent the leader (the detector tells a hand from the leader shadowing that command);
- while the policy drives it commands the leader to the follower's joints (``leader/joint_commands``) with its
  torque on; when an intervention starts it switches the leader's torque off (``leader/enable_torque``, called
  asynchronously: the timer never waits for a service), and on release back on;
- manual commands from a keyboard, pedal or joystick: the service ``operator/command`` and the topic
  ``operator/commands`` (std_msgs/UInt8, OperatorCommand's constants) and ``joy`` (sensor_msgs/Joy, press edges of
  the configured buttons). Intervention commands pin the state until the next manual command or the next episode
  (``hilserl/episodes`` from the actor); success and failure marks are forwarded on ``operator/episode_mark``
  (std_msgs/UInt8, MARK_SUCCESS or MARK_FAILURE) for the actor, which ends the episode.

Joint states older than ``state_timeout_s`` are not used: the detector and the leader commands pause (the flag
keeps its value) until both arms report again.

Time is the node clock throughout (the control-step timer, the freshness of joint states, the detector's minimum
durations, stamps), so with ``use_sim_time`` all of it follows ``/clock``: in lockstep a simulation that holds
holds this node's control steps too, and a state is not "old" while simulated time stands still.
"""

from __future__ import annotations

import so101_contract.quiet_interrupt  # noqa: F401  (first: Ctrl-C during the heavy imports below is quiet)

# isort: split
import numpy as np
from rclpy.node import Node
from sensor_msgs.msg import JointState, Joy
from std_msgs.msg import Bool, UInt8
from std_srvs.srv import SetBool

from so101_contract import qos
from so101_contract.control import CONTROL_RATE_HZ
from so101_contract.joints import JOINT_NAMES, positions_by_name
from so101_contract.node_main import run_node
from so101_contract.parameters import ParameterError, declare
from so101_hilserl_actor.intervention import (
    ButtonEdges,
    DetectorConfig,
    InterventionDetector,
    LeaderManager,
)
from so101_hilserl_interfaces.msg import EpisodeSummary
from so101_hilserl_interfaces.srv import OperatorCommand

WARN_THROTTLE_S = 5.0
COMMAND_NAMES = {
    OperatorCommand.Request.TOGGLE_INTERVENTION: "toggle intervention",
    OperatorCommand.Request.START_INTERVENTION: "start intervention",
    OperatorCommand.Request.END_INTERVENTION: "end intervention",
    OperatorCommand.Request.MARK_SUCCESS: "mark success",
    OperatorCommand.Request.MARK_FAILURE: "mark failure",
}


class InterventionNode(Node):
    def __init__(self):
        super().__init__("intervention")
        defaults = DetectorConfig()
        values = dict(
            queue_size=declare(
                self, "queue_size", defaults.queue_size, "tracking-error samples kept (control steps)", (2, 10_000)
            ),
            start_window=declare(
                self,
                "start_window",
                defaults.start_window,
                "newest steps whose leader motion unexplained by its shadowing is summed (<= queue_size)",
                (1, 10_000),
            ),
            start_deviation_deg=declare(
                self,
                "start_deviation_deg",
                defaults.start_deviation_deg,
                "start when that sum exceeds this (deg, norm over the 5 arm joints)",
                (1e-6, 1e6),
            ),
            leader_time_constant_s=declare(
                self,
                "leader_time_constant_s",
                defaults.leader_time_constant_s,
                "fastest first-order lag of the powered leader toward its command (s)",
                (1e-3, 10.0),
            ),
            release_variance_deg2=declare(
                self,
                "release_variance_deg2",
                defaults.release_variance_deg2,
                "release when var(all queue_size tracking errors) is below this (deg^2)",
                (1e-9, 1e6),
            ),
            min_intervention_s=declare(
                self,
                "min_intervention_s",
                defaults.min_intervention_s,
                "an automatic intervention lasts at least this (s)",
                (0.0, 60.0),
            ),
            min_release_gap_s=declare(
                self,
                "min_release_gap_s",
                defaults.min_release_gap_s,
                "no automatic start sooner than this after a release (s)",
                (0.0, 60.0),
            ),
            auto_detect=declare(
                self,
                "auto_detect",
                defaults.auto_detect,
                "detect interventions from the leader's motion (else manual only)",
            ),
        )
        try:  # the relations between parameters (start_window <= queue_size)
            self.config = DetectorConfig(**values)
        except ValueError as err:
            raise ParameterError(str(err).replace("DetectorConfig.", "parameter ", 1)) from None
        rate = declare(
            self,
            "control_rate_hz",
            CONTROL_RATE_HZ,
            "detector and leader command rate (Hz); the queue is in steps",
            (1.0, 100.0),
        )
        tracking = declare(
            self,
            "leader_tracking",
            True,
            "command the leader to the follower and switch its torque (False: passive leader)",
        )
        self.state_timeout_s = declare(
            self, "state_timeout_s", 0.5, "joint states older than this are not used (s)", (0.01, 10.0)
        )
        heartbeat = declare(
            self, "publish_period_s", 1.0, "also republish the flag this often (s); 0 = on change only", (0.0, 3600.0)
        )
        self.toggle_button = declare(
            self, "joy_toggle_button", 0, "Joy button index that toggles intervention; -1 off", (-1, 127)
        )
        self.success_button = declare(
            self, "joy_success_button", 1, "Joy button index that marks success; -1 off", (-1, 127)
        )
        self.failure_button = declare(
            self, "joy_failure_button", 2, "Joy button index that marks failure; -1 off", (-1, 127)
        )

        self.detector = InterventionDetector(self.config)
        self.leader = LeaderManager(tracking)
        self.buttons = ButtonEdges()
        self._follower: tuple[float, np.ndarray] | None = None  # (receive time, q)
        self._leader_q: tuple[float, np.ndarray] | None = None
        self._published: bool | None = None

        self.flag_pub = self.create_publisher(Bool, "intervention", qos.LATCHED)
        self.leader_pub = self.create_publisher(JointState, "leader/joint_commands", qos.COMMAND)
        self.mark_pub = self.create_publisher(UInt8, "operator/episode_mark", qos.EVENTS)
        self.torque_client = self.create_client(SetBool, "leader/enable_torque")
        self.create_subscription(JointState, "follower/joint_states", self._on_follower, qos.SENSOR_DATA)
        self.create_subscription(JointState, "leader/joint_states", self._on_leader, qos.SENSOR_DATA)
        self.create_subscription(UInt8, "operator/commands", self._on_command_topic, qos.EVENTS)
        # joy_node publishes reliably; a lost press would be a lost command, so the subscription is reliable too.
        self.create_subscription(Joy, "joy", self._on_joy, qos.EVENTS)
        self.create_subscription(EpisodeSummary, "hilserl/episodes", self._on_episode, qos.EVENTS)
        self.create_service(OperatorCommand, "operator/command", self._on_command_service)
        self.create_timer(1.0 / rate, self._tick)
        if heartbeat > 0.0:
            self.create_timer(heartbeat, self._publish_flag)
        self._publish_flag()
        self.get_logger().info(
            f"intervention: {rate:.0f} Hz, automatic detection {'on' if self.config.auto_detect else 'off'}, "
            f"leader tracking {'on' if tracking else 'off'}"
        )

    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    # ---- inputs ----
    def _on_follower(self, msg: JointState) -> None:
        q, _ = positions_by_name(msg.name, msg.position)
        if q is None:
            self.get_logger().warning(f"follower state without all of {JOINT_NAMES}", throttle_duration_sec=5.0)
            return
        self._follower = (self._now(), q)

    def _on_leader(self, msg: JointState) -> None:
        q, _ = positions_by_name(msg.name, msg.position)
        if q is None:
            self.get_logger().warning(f"leader state without all of {JOINT_NAMES}", throttle_duration_sec=5.0)
            return
        self._leader_q = (self._now(), q)

    def _fresh(self, sample: tuple[float, np.ndarray] | None, now: float) -> np.ndarray | None:
        if sample is None or now - sample[0] > self.state_timeout_s:
            return None
        return sample[1]

    # ---- the control step ----
    def _tick(self) -> None:
        now = self._now()
        follower_q, leader_q = self._fresh(self._follower, now), self._fresh(self._leader_q, now)
        if follower_q is None or leader_q is None:
            self.get_logger().warning(
                "waiting for fresh follower and leader joint states", throttle_duration_sec=WARN_THROTTLE_S
            )
            return
        before = self.detector.active
        self.detector.update(now, follower_q, leader_q, self.leader.command)
        if self.detector.active != before:
            self.get_logger().info(
                f"intervention {'started' if self.detector.active else 'released'} (automatic, leader motion "
                f"unexplained by its commands {self.detector.last_deviation_deg:.1f} deg, tracking error "
                f"{self.detector.last_error_deg:.1f} deg)"
            )
        self._apply(follower_q)

    def _apply(self, follower_q: np.ndarray | None) -> None:
        """Publish the flag if it changed and do what the leader needs (a command, a torque switch)."""
        if self._published != self.detector.active:
            self._publish_flag()
        action = self.leader.step(self.detector.active, follower_q)
        if action.target is not None:  # before torque on, so the leader does not chase an old command
            msg = JointState(name=list(JOINT_NAMES), position=[float(v) for v in action.target])
            msg.header.stamp = self.get_clock().now().to_msg()
            self.leader_pub.publish(msg)
        if action.torque is not None:
            self._request_torque(action.torque)

    def _request_torque(self, enabled: bool) -> None:
        if not self.torque_client.service_is_ready():
            self.leader.torque_done(enabled, ok=False)  # retried at the next step
            self.get_logger().warning(
                "leader/enable_torque is not available; retrying", throttle_duration_sec=WARN_THROTTLE_S
            )
            return
        future = self.torque_client.call_async(SetBool.Request(data=enabled))

        def done(fut) -> None:
            ok = fut.exception() is None and fut.result() is not None and fut.result().success
            self.leader.torque_done(enabled, ok)
            if not ok:
                self.get_logger().warning(f"leader torque {'on' if enabled else 'off'} failed; retrying")

        future.add_done_callback(done)

    def _publish_flag(self) -> None:
        self._published = self.detector.active
        self.flag_pub.publish(Bool(data=self._published))

    # ---- manual commands ----
    def _handle(self, command: int, source: str) -> tuple[bool, str]:
        req = OperatorCommand.Request
        name = COMMAND_NAMES.get(command)
        if name is None:
            return False, f"unknown command {command}; use OperatorCommand's constants 0..4"
        if command in (req.MARK_SUCCESS, req.MARK_FAILURE):
            self.mark_pub.publish(UInt8(data=command))
            message = f"{name} forwarded on operator/episode_mark"
        else:
            active = {
                req.TOGGLE_INTERVENTION: not self.detector.active,
                req.START_INTERVENTION: True,
                req.END_INTERVENTION: False,
            }[command]
            self.detector.force(active, self._now())
            follower_q = self._fresh(self._follower, self._now())
            self._apply(follower_q)
            message = f"intervention {'on' if active else 'off'} (manual, held until the next command or episode)"
        self.get_logger().info(f"{source}: {message}")
        return True, message

    def _on_command_service(
        self, request: OperatorCommand.Request, response: OperatorCommand.Response
    ) -> OperatorCommand.Response:
        response.accepted, response.message = self._handle(int(request.command), "operator/command")
        return response

    def _on_command_topic(self, msg: UInt8) -> None:
        accepted, message = self._handle(int(msg.data), "operator/commands")
        if not accepted:
            self.get_logger().warning(message)

    def _on_joy(self, msg: Joy) -> None:
        req = OperatorCommand.Request
        mapping = {
            self.toggle_button: req.TOGGLE_INTERVENTION,
            self.success_button: req.MARK_SUCCESS,
            self.failure_button: req.MARK_FAILURE,
        }
        for button in sorted(self.buttons.pressed(msg.buttons)):
            if button >= 0 and button in mapping:
                self._handle(mapping[button], f"joy button {button}")

    def _on_episode(self, msg: EpisodeSummary) -> None:
        """An episode ended: the next one starts with the policy driving and no manual override."""
        self.detector.reset()
        self._apply(self._fresh(self._follower, self._now()))


def main(args=None) -> None:
    run_node(InterventionNode, args)


if __name__ == "__main__":
    main()
