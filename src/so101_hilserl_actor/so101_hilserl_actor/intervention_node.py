"""intervention: is a person driving the follower? Publishes the latched ``intervention`` flag and manages the leader.

ROS plumbing around intervention_control.InterventionControl: every control step (``control_rate_hz``) it hands the
newest follower and leader states to it and sends what it decides: the flag on change (and every
``publish_period_s``), the leader's command (``leader/joint_commands``) and its torque switch (``leader/enable_torque``,
called asynchronously: the timer never waits for a service). Manual commands arrive on ``operator/command``,
``operator/commands`` and ``joy``; success and failure marks go on to the actor on ``operator/episode_mark``, and
``hilserl/episodes`` clears a manual override. Time is the node clock, so with ``use_sim_time`` it follows ``/clock``.
"""

from __future__ import annotations

import so101_contract.quiet_interrupt  # noqa: F401  (first: Ctrl-C during the heavy imports below is quiet)

# isort: split
from rclpy.node import Node
from sensor_msgs.msg import JointState, Joy
from std_msgs.msg import Bool, UInt8
from std_srvs.srv import SetBool

from so101_contract import qos
from so101_contract.joints import JOINT_NAMES, positions_by_name
from so101_contract.node_main import run_node
from so101_contract.parameters import ParameterError, declare_config
from so101_hilserl_actor.intervention_control import InterventionConfig, InterventionControl, Step
from so101_hilserl_interfaces.msg import EpisodeSummary
from so101_hilserl_interfaces.srv import OperatorCommand

CONFIG = InterventionConfig
WARN_THROTTLE_S = 5.0


class InterventionNode(Node):
    def __init__(self):
        super().__init__("intervention")
        try:
            self.config = c = declare_config(self, CONFIG)
        except ParameterError:
            raise
        except ValueError as err:  # a relation between parameters (start_window <= queue_size), from DetectorConfig
            raise ParameterError(str(err).replace("DetectorConfig.", "parameter ", 1)) from None
        self.control = InterventionControl(c)

        self.flag_pub = self.create_publisher(Bool, "intervention", qos.LATCHED)
        self.leader_pub = self.create_publisher(JointState, "leader/joint_commands", qos.COMMAND)
        self.mark_pub = self.create_publisher(UInt8, "operator/episode_mark", qos.EVENTS)
        self.torque_client = self.create_client(SetBool, "leader/enable_torque")
        self.create_subscription(JointState, "follower/joint_states", self._on_follower, qos.SENSOR_DATA)
        self.create_subscription(JointState, "leader/joint_states", self._on_leader, qos.SENSOR_DATA)
        # operator/commands carries OperatorCommand's constants as a UInt8
        self.create_subscription(UInt8, "operator/commands", self._on_command_topic, qos.EVENTS)
        # joy_node publishes reliably; a lost press would be a lost command, so the subscription is reliable too.
        self.create_subscription(Joy, "joy", self._on_joy, qos.EVENTS)
        self.create_subscription(EpisodeSummary, "hilserl/episodes", self._on_episode, qos.EVENTS)
        self.create_service(OperatorCommand, "operator/command", self._on_command_service)
        self.create_timer(1.0 / c.control_rate_hz, self._tick)
        if c.publish_period_s > 0.0:
            self.create_timer(c.publish_period_s, self._publish_flag)
        self._publish_flag()
        self.get_logger().info(
            f"intervention: {c.control_rate_hz:.0f} Hz, automatic detection {'on' if c.detector.auto_detect else 'off'}"
            f", leader tracking {'on' if c.leader_tracking else 'off'}"
        )

    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    # ---- inputs ----
    def _on_follower(self, msg: JointState) -> None:
        q, _ = positions_by_name(msg.name, msg.position)
        if q is None:
            self.get_logger().warning(f"follower state without all of {JOINT_NAMES}", throttle_duration_sec=5.0)
            return
        self.control.follower_state(self._now(), q)

    def _on_leader(self, msg: JointState) -> None:
        q, _ = positions_by_name(msg.name, msg.position)
        if q is None:
            self.get_logger().warning(f"leader state without all of {JOINT_NAMES}", throttle_duration_sec=5.0)
            return
        self.control.leader_state(self._now(), q)

    # ---- the control step ----
    def _tick(self) -> None:
        detector, before = self.control.detector, self.control.detector.active
        step = self.control.tick(self._now())
        if step is None:
            self.get_logger().warning(
                "waiting for fresh follower and leader joint states", throttle_duration_sec=WARN_THROTTLE_S
            )
            return
        if detector.active != before:
            self.get_logger().info(
                f"intervention {'started' if detector.active else 'released'} (automatic, leader motion "
                f"unexplained by its commands {detector.last_deviation_deg:.1f} deg, tracking error "
                f"{detector.last_error_deg:.1f} deg)"
            )
        self._send(step)

    def _send(self, step: Step) -> None:
        """Publish the flag if it changed and do what the leader needs (a command, a torque switch)."""
        if step.flag_changed:
            self._publish_flag()
        if step.leader_target is not None:  # before torque on, so the leader does not chase an old command
            msg = JointState(name=list(JOINT_NAMES), position=[float(v) for v in step.leader_target])
            msg.header.stamp = self.get_clock().now().to_msg()
            self.leader_pub.publish(msg)
        if step.torque is not None:
            self._request_torque(step.torque)

    def _request_torque(self, enabled: bool) -> None:
        if not self.torque_client.service_is_ready():
            self.control.leader.torque_done(enabled, ok=False)  # retried at the next step
            self.get_logger().warning(
                "leader/enable_torque is not available; retrying", throttle_duration_sec=WARN_THROTTLE_S
            )
            return
        future = self.torque_client.call_async(SetBool.Request(data=enabled))

        def done(fut) -> None:
            ok = fut.exception() is None and fut.result() is not None and fut.result().success
            self.control.leader.torque_done(enabled, ok)
            if not ok:
                self.get_logger().warning(f"leader torque {'on' if enabled else 'off'} failed; retrying")

        future.add_done_callback(done)

    def _publish_flag(self) -> None:
        self.flag_pub.publish(Bool(data=self.control.publish_flag()))

    # ---- manual commands ----
    def _handle(self, command: int, source: str) -> tuple[bool, str]:
        outcome = self.control.command(command, self._now())
        if outcome.mark is not None:
            self.mark_pub.publish(UInt8(data=outcome.mark))
        if outcome.step is not None:
            self._send(outcome.step)
        if outcome.accepted:
            self.get_logger().info(f"{source}: {outcome.message}")
        return outcome.accepted, outcome.message

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
        for command, source in self.control.joy(msg.buttons):
            self._handle(command, source)

    def _on_episode(self, msg: EpisodeSummary) -> None:
        self._send(self.control.episode_ended(self._now()))


def main(args=None) -> None:
    run_node(InterventionNode, args)


if __name__ == "__main__":
    main()
