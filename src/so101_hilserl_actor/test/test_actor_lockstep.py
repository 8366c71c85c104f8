"""The actor's side of lockstep, with the real actor process against a stand-in for the simulation in this test.

The stand-in is not a simulation: it advances simulated time in 10 ms ticks only up to the actor's newest grant on
sim/advance_until, and per tick publishes both arms' joint states, on the 100 ms grid an image, then /clock (the
order of so101_contract.sim_time's protocol). A reward verdict on each image follows 30 ms of wall time after its
/clock, as a classifier's would. It answers sim/reset and records the requests. The graph test with
the real simulation and learner is the bringup package's.
"""

import itertools
import threading
import time

import numpy as np
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import Image, JointState

from so101_contract import qos
from so101_contract.joints import JOINT_NAMES
from so101_contract.sim_time import ADVANCE_TOPIC, CLOCK_TOPIC
from so101_contract.stamps import ns_to_stamp, stamp_to_ns
from so101_driver.model.kinematics import HOME_SEED
from so101_driver.vision.image_messages import array_to_image_msg
from so101_hilserl_interfaces.msg import EpisodeSummary, RewardSignal, Transition
from so101_hilserl_interfaces.srv import ResetEpisode
from so101_testing.graph import wait_until
from so101_testing.processes import ros_args

TINY = '{"encoder_channels": 4, "hidden": [16, 16], "bottleneck": 8}'
TICK_NS, PERIOD_NS = 10_000_000, 100_000_000
MAX_STEPS, EPISODES = 6, 4


class StandIn:
    """See the module docstring. ``t_ns``: its simulated time; ``max_ahead_ns``: the largest amount by which its
    time ever exceeded the newest grant (must stay 0)."""

    def __init__(self, probe):
        node = probe.node
        self.t_ns, self.granted_ns, self.max_ahead_ns = 0, -1, 0
        self.grants: list[int] = []
        self.resets: list[ResetEpisode.Request] = []
        self._lock = threading.Lock()
        node.create_subscription(Clock, ADVANCE_TOPIC, self._on_grant, qos.LATCHED)
        node.create_service(ResetEpisode, "sim/reset", self._on_reset)
        self.clock_pub = node.create_publisher(Clock, CLOCK_TOPIC, 10)
        self.follower_pub = node.create_publisher(JointState, "follower/joint_states", qos.SENSOR_DATA)
        self.leader_pub = node.create_publisher(JointState, "leader/joint_states", qos.SENSOR_DATA)
        self.image_pub = node.create_publisher(Image, "wrist_camera/image_raw", qos.SENSOR_DATA)
        self.reward_pub = node.create_publisher(RewardSignal, "reward/signal", qos.EVENTS)
        self.image = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="stand-in", daemon=True)
        self._thread.start()

    def _on_grant(self, msg: Clock) -> None:
        with self._lock:
            self.grants.append(stamp_to_ns(msg.clock))
            self.granted_ns = max(self.granted_ns, self.grants[-1])

    def _on_reset(self, request, response):
        self.resets.append(request)
        response.success = True
        return response

    def _run(self) -> None:
        q = [float(v) for v in HOME_SEED]
        republish_at = 0.0
        while not self._stop.is_set():
            with self._lock:
                granted = self.granted_ns
            if self.t_ns + TICK_NS <= granted:
                self.t_ns += TICK_NS
                stamp = ns_to_stamp(self.t_ns)
                for pub in (self.follower_pub, self.leader_pub):
                    msg = JointState(name=list(JOINT_NAMES), position=q)
                    msg.header.stamp = stamp
                    pub.publish(msg)
                if self.t_ns % PERIOD_NS == 0:
                    self.image_pub.publish(array_to_image_msg(self.image, "rgb8", stamp, "wrist_camera"))
                self.clock_pub.publish(Clock(clock=stamp))
                if self.t_ns % PERIOD_NS == 0:
                    threading.Timer(0.03, self._judge, (stamp,)).start()
                self.max_ahead_ns = max(self.max_ahead_ns, self.t_ns - granted)
            else:
                if time.monotonic() > republish_at:  # /clock is best effort: say where time stands while holding
                    self.clock_pub.publish(Clock(clock=ns_to_stamp(self.t_ns)))
                    republish_at = time.monotonic() + 0.2
                self._stop.wait(0.001)

    def _judge(self, stamp) -> None:
        signal = RewardSignal(probability=0.0, success=False, threshold=0.5)
        signal.header.stamp = stamp
        self.reward_pub.publish(signal)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5.0)


def test_lockstep_actor_grants_time_and_steps_exactly_one_period_apart_with_evaluation_episodes(processes, probe):
    transitions = probe.subscribe(Transition, "hilserl/transitions", qos.TRANSITIONS)
    episodes = probe.subscribe(EpisodeSummary, "hilserl/episodes", qos.EVENTS)
    stand_in = StandIn(probe)
    try:
        actor = processes.start_module(
            "so101_hilserl_actor.actor_node",
            *ros_args(use_sim_time=True, lockstep=True, network=TINY, max_episodes=EPISODES, max_steps=MAX_STEPS,
                      evaluation_every_episodes=1, reset_pause_s=0.35, seed=2),
            name="actor",
        )  # fmt: skip
        wait_until(lambda: not actor.alive(), 180, "the actor to run its episodes and exit")
        assert actor.popen.returncode == 0, actor.output()
        summaries = episodes.wait_for(EPISODES, 10, "episode summaries")
        received = transitions.wait_for(EPISODES * MAX_STEPS, 10, "transitions")
    finally:
        stand_in.close()

    assert stand_in.grants, "no grant on sim/advance_until"
    assert stand_in.max_ahead_ns == 0  # (the stand-in's own check) time never ran past a grant
    assert [s.evaluation for s in summaries] == [False, True, False, True]
    assert [r.operator_hands_off for r in stand_in.resets] == [False, True, False, True]
    granted = set(stand_in.grants)
    for summary in summaries:
        steps = [m for m in received if m.episode_id == summary.episode_id]
        stamps = [stamp_to_ns(m.header.stamp) for m in steps]
        assert len(steps) == summary.steps == MAX_STEPS
        assert [b - a for a, b in itertools.pairwise(stamps)] == [PERIOD_NS] * (MAX_STEPS - 1), stamps
        assert all(s % PERIOD_NS == 0 and s in granted for s in stamps)  # on the grid, each instant granted
        assert all(m.evaluation == summary.evaluation for m in steps)
        # each step acted on the image of its instant, judged: it waited for the verdict, not acted on an older image
        assert all(stamp_to_ns(m.observation.image.header.stamp) == s for m, s in zip(steps, stamps, strict=True))
        assert all(m.success_probability == 0.0 for m in steps)  # each outcome's verdict was there (no NaN miss)
        if summary.evaluation:
            assert all(list(m.action) == list(m.policy_action) for m in steps)
        # simulated time: the episode lasts its steps (plus at most the wait for its first step), not wall time
        assert MAX_STEPS * 0.1 - 1e-6 <= summary.duration <= MAX_STEPS * 0.1 + 0.2 + 1e-6
    output = actor.output()
    assert "on lockstep simulated time" in output
    assert "of which 2 evaluation episodes with success rate 0%" in output


def test_lockstep_without_simulated_time_is_refused_with_one_line_naming_both(processes):
    actor = processes.start_module("so101_hilserl_actor.actor_node", *ros_args(lockstep=True), name="actor")
    wait_until(lambda: not actor.alive(), 60, "the actor to refuse lockstep on the wall clock")
    assert actor.popen.returncode == 2
    output = actor.output()
    assert "parameter lockstep=true needs use_sim_time=true" in output and "Traceback" not in output
