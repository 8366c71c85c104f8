"""The intervention and keyboard nodes in a real graph with the simulation node (so101_driver.sim.sim_node).

The sim's leader is a powered low-gain leader: it tracks leader/joint_commands while its torque is on and stays
where it is left while it is off. So "the intervention node switched the torque off" is observed as the leader no
longer following the follower, exactly as it would be seen on the real arms.
"""

from __future__ import annotations

import os
import subprocess
import sys
import termios
import time

import numpy as np
import pytest
from sensor_msgs.msg import JointState, Joy
from std_msgs.msg import Bool, UInt8

from so101_contract import qos
from so101_contract.joints import JOINT_NAMES
from so101_hilserl_interfaces.msg import EpisodeSummary
from so101_hilserl_interfaces.srv import OperatorCommand, ResetEpisode
from so101_testing.graph import wait_until
from so101_testing.processes import ProcessGroup

Req = OperatorCommand.Request
STARTUP_S = 60.0  # first discovery and the MuJoCo scene build on a loaded 2-core machine
WAIT_S = 10.0


@pytest.fixture(scope="class")
def manual_graph(tmp_path_factory):
    """One sim (operator off: nothing moves by itself) and one intervention node with automatic detection off (the
    follower is moved by the tests, which must not be mistaken for a grab); shared by the manual-command tests and
    stopped after them (class scope), before another test starts its own graph on the same domain."""
    with ProcessGroup(tmp_path_factory.mktemp("intervention_logs")) as group:
        sim = group.start_module("so101_driver.sim.sim_node", "--ros-args", "-p", "operator_mode:=none", name="sim")
        node = group.start_module(
            "so101_hilserl_actor.intervention_node",
            "--ros-args",
            "-p",
            "auto_detect:=false",
            name="intervention",
        )
        yield group
        if not (sim.alive() and node.alive()):
            print(group.logs())


def positions(recorder) -> np.ndarray:
    msg = recorder.messages[-1]
    index = {name: i for i, name in enumerate(msg.name)}
    return np.array([msg.position[index[name]] for name in JOINT_NAMES])


def arm_error_deg(follower, leader) -> float:
    return float(np.linalg.norm(np.rad2deg(positions(follower)[:5] - positions(leader)[:5])))


class Arms:
    """The probe's view of both arms and the intervention flag, and a follower command publisher."""

    def __init__(self, probe):
        self.probe = probe
        self.follower = probe.subscribe(JointState, "follower/joint_states", qos.SENSOR_DATA)
        self.leader = probe.subscribe(JointState, "leader/joint_states", qos.SENSOR_DATA)
        self.flag = probe.subscribe(Bool, "intervention", qos.LATCHED)
        self.commands = probe.publisher(JointState, "follower/joint_commands", qos.COMMAND)
        self.follower.wait_for(5, STARTUP_S, "follower states")
        self.leader.wait_for(5, STARTUP_S, "leader states")
        self.flag.wait_for(1, STARTUP_S, "the latched intervention flag")
        probe.wait_for_subscribers(self.commands, timeout_s=STARTUP_S)

    def flag_is(self, value: bool, what: str) -> None:
        wait_until(lambda: self.flag.messages and self.flag.messages[-1].data is value, WAIT_S, what)

    def move_follower(self, delta) -> np.ndarray:
        """Command the follower by ``delta`` (rad) from where it is; wait until it got there; return the target."""
        target = positions(self.follower) + np.asarray(delta)
        msg = JointState(name=list(JOINT_NAMES), position=[float(v) for v in target])
        self.commands.publish(msg)
        wait_until(
            lambda: np.abs(positions(self.follower)[:5] - target[:5]).max() < 0.03,
            WAIT_S,
            f"the follower to move to {target} (at {positions(self.follower)})",
        )
        return target


def command(probe, code: int) -> OperatorCommand.Response:
    return probe.call(OperatorCommand, "operator/command", Req(command=code), timeout_s=STARTUP_S)


class TestManualCommands:
    """Manual commands on one shared graph (class-scoped: stopped before the automatic test's graph starts)."""

    def test_leader_tracks_the_follower_and_the_flag_is_latched(self, manual_graph, probe):
        arms = Arms(probe)  # subscribed after the node published: the latched flag still arrives
        assert arms.flag.messages[0].data is False
        start_leader = positions(arms.leader)
        arms.move_follower([0.25, -0.2, 0.2, -0.15, 0.25, 0.3])

        def caught_up() -> bool:  # the five arm joints and the gripper (tracked too), each at its own pace
            gripper_error = abs(positions(arms.leader)[5] - positions(arms.follower)[5])
            return arm_error_deg(arms.follower, arms.leader) < 2.0 and gripper_error < 0.05

        wait_until(caught_up, WAIT_S, "the leader to catch up, gripper included")
        leader = positions(arms.leader)
        assert np.linalg.norm(leader[:5] - start_leader[:5]) > 0.4  # it really moved with the follower

    def test_manual_toggle_by_service_and_topic_switches_the_leader_limp_and_back(self, manual_graph, probe):
        arms = Arms(probe)
        topic = probe.publisher(UInt8, "operator/commands", qos.EVENTS)
        probe.wait_for_subscribers(topic, timeout_s=STARTUP_S)
        arms.flag_is(False, "no intervention at first")

        reply = command(probe, Req.TOGGLE_INTERVENTION)
        assert reply.accepted and "on" in reply.message
        arms.flag_is(True, "intervention on after the service toggle")
        time.sleep(0.3)  # the torque-off call has been answered
        held = positions(arms.leader)
        arms.move_follower([-0.3, 0.2, -0.2, 0.0, -0.3, 0.0])
        time.sleep(0.5)
        assert np.abs(positions(arms.leader) - held).max() < 1e-3  # limp: it stayed where it was
        assert arm_error_deg(arms.follower, arms.leader) > 15.0

        topic.publish(UInt8(data=Req.TOGGLE_INTERVENTION))
        arms.flag_is(False, "intervention off after the topic toggle")
        wait_until(lambda: arm_error_deg(arms.follower, arms.leader) < 2.0, WAIT_S, "the leader to track again")

        topic.publish(UInt8(data=Req.START_INTERVENTION))
        arms.flag_is(True, "intervention on after START")
        topic.publish(UInt8(data=Req.END_INTERVENTION))
        arms.flag_is(False, "intervention off after END")

        topic.publish(UInt8(data=Req.START_INTERVENTION))
        arms.flag_is(True, "intervention on after START")
        episodes = probe.publisher(EpisodeSummary, "hilserl/episodes", qos.EVENTS)
        probe.wait_for_subscribers(episodes, timeout_s=STARTUP_S)
        episodes.publish(EpisodeSummary(episode_id=1, end_reason="timeout"))
        arms.flag_is(False, "the next episode to start with the policy driving")
        assert command(probe, 99).accepted is False

    def test_joy_press_edges_toggle_and_episode_marks_are_forwarded(self, manual_graph, probe):
        arms = Arms(probe)
        marks = probe.subscribe(UInt8, "operator/episode_mark", qos.EVENTS)
        joy = probe.publisher(Joy, "joy", 10)
        probe.wait_for_subscribers(joy, timeout_s=STARTUP_S)
        command(probe, Req.END_INTERVENTION)
        arms.flag_is(False, "no intervention at first")

        joy.publish(Joy(buttons=[1, 0, 0]))  # default toggle button 0
        arms.flag_is(True, "intervention on after the button press")
        count = len(arms.flag)
        joy.publish(Joy(buttons=[1, 0, 0]))  # still held: no second toggle
        time.sleep(0.5)
        assert all(msg.data for msg in arms.flag.messages[count - 1 :])
        joy.publish(Joy(buttons=[0, 0, 0]))
        joy.publish(Joy(buttons=[1, 0, 0]))
        arms.flag_is(False, "intervention off after the second press")

        joy.publish(Joy(buttons=[0, 1, 0]))  # default success button 1
        assert command(probe, Req.MARK_FAILURE).accepted
        marks.wait_for(2, WAIT_S, "episode marks")
        assert [m.data for m in marks.messages] == [Req.MARK_SUCCESS, Req.MARK_FAILURE]
        assert arms.flag.messages[-1].data is False  # marks do not touch the intervention


def test_automatic_detection_with_the_simulated_person(processes, probe):
    """The sim's person corrects a stuck policy; the probe plays the actor: the follower mirrors the leader while
    the flag is on and holds its pose otherwise."""
    processes.start_module(
        "so101_driver.sim.sim_node",
        "--ros-args",
        "-p",
        "operator_mode:=correct",
        "-p",
        "seed:=1",
        name="sim",
    )
    processes.start_module("so101_hilserl_actor.intervention_node", name="intervention")
    arms = Arms(probe)
    t0 = time.monotonic()
    grabbed_at, settled = [], []

    def on_leader(msg: JointState) -> None:  # the actor's mirror, and the ground truth of the grab
        if not arms.flag.messages:
            return
        if arms.flag.messages[-1].data:
            arms.commands.publish(JointState(name=list(msg.name), position=list(msg.position)))
            return
        error = arm_error_deg(arms.follower, arms.leader)
        if not settled:  # at start-up the leader first catches up with the follower: not a grab
            if error < 2.0:
                settled.append(time.monotonic())
        elif not grabbed_at and error > 5.0:
            grabbed_at.append(time.monotonic())

    mirror = probe.node.create_subscription(JointState, "leader/joint_states", on_leader, qos.SENSOR_DATA)
    # The episode starts once the graph is up and the leader has settled on the follower: a person who took over
    # while the probe was not yet listening would be seen only at a later, slower move.
    wait_until(lambda: settled, 3 * WAIT_S, "the leader settling on the follower")
    start = ResetEpisode.Request(seed=1, randomize=False)
    assert probe.call(ResetEpisode, "sim/reset", start, timeout_s=WAIT_S).success
    settled.clear()
    grabbed_at.clear()
    # The person waits 2.5 s (min_policy_time_s), sees 1 s of a stalled arm and reacts after 0.3-0.5 s: ~4 s after
    # the reset.
    wait_until(lambda: grabbed_at and arms.flag.messages[-1].data, 3 * WAIT_S, "an automatic detection of a grab")
    # The person drives until the episode ends; a reset takes the hand off the leader.
    reset = ResetEpisode.Request(seed=2, randomize=False)
    assert probe.call(ResetEpisode, "sim/reset", reset, timeout_s=WAIT_S).success
    wait_until(lambda: arms.flag.messages[-1].data is False, WAIT_S, "the release after the person lets go")
    probe.node.destroy_subscription(mirror)
    # The flag is also republished every second: the transitions are the first True after the grab and the first
    # False after that.
    flags = list(zip(arms.flag.times, (m.data for m in arms.flag.messages), strict=True))
    detected_at = next(t for t, on in flags if on and t >= grabbed_at[0])
    released_at = next(t for t, on in flags if not on and t > detected_at)
    latency = detected_at - grabbed_at[0]
    print(
        f"\ngraph: flag on {latency:.2f} s after the leader left the follower by 5 deg "
        f"({detected_at - t0:.1f} s after the graph was up), off {released_at - detected_at:.2f} s later"
    )
    assert latency < 0.35  # two control periods plus transport and timer phase


def test_keyboard_node_without_a_terminal_exits_cleanly(processes):
    node = processes.start_module("so101_hilserl_actor.keyboard_node", name="keyboard")
    wait_until(lambda: not node.alive(), STARTUP_S, "the keyboard node to exit")
    assert node.popen.returncode == 0
    assert "not a terminal" in node.output()


def test_keyboard_node_in_a_terminal_sends_commands_and_restores_it(probe, tmp_path):
    commands = probe.subscribe(UInt8, "operator/commands", qos.EVENTS)
    master, slave = os.openpty()
    before = termios.tcgetattr(slave)
    log = open(tmp_path / "keyboard.log", "wb")
    node = subprocess.Popen(
        [sys.executable, "-u", "-m", "so101_hilserl_actor.keyboard_node"],
        stdin=slave,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        probe.wait_for_publishers("operator/commands", timeout_s=STARTUP_S)
        wait_until(lambda: termios.tcgetattr(slave) != before, WAIT_S, "the terminal in cbreak mode")
        wait_until(lambda: probe.node.count_publishers("operator/commands") >= 1, WAIT_S, "publisher")
        time.sleep(1.0)  # discovery of the probe's subscription by the node's publisher
        os.write(master, b" xsf")
        commands.wait_for(3, WAIT_S, "keyboard commands")
        assert [m.data for m in commands.messages] == [Req.TOGGLE_INTERVENTION, Req.MARK_SUCCESS, Req.MARK_FAILURE]
        os.write(master, b"q")
        assert node.wait(timeout=WAIT_S) == 0
        assert termios.tcgetattr(slave) == before  # the terminal is back as it was
    finally:
        if node.poll() is None:
            node.kill()
            node.wait()
        log.close()
        os.close(master)
        os.close(slave)
