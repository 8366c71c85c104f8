"""The simulation node owning simulated time, in a real graph (so101_contract.sim_time's protocol): lockstep
advances exactly to the actor's grant and holds while the learner owes updates; the follower's watchdog counts
simulated time; a hands-off reset keeps the simulated operator away for one episode; "sim" paces /clock to the wall
clock times the real-time factor."""

from __future__ import annotations

import signal

import numpy as np
import pytest
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import Image, JointState

from so101_contract import qos
from so101_contract.joints import ARM_JOINT_NAMES, JOINT_NAMES
from so101_contract.node_main import LAUNCH_SIGTERM_AFTER_SIGINT_S
from so101_contract.sim_time import ADVANCE_TOPIC, CLOCK_TOPIC, PROGRESS_TOPIC
from so101_contract.stamps import ns_to_stamp, stamp_to_ns
from so101_hilserl_interfaces.msg import LearnerProgress
from so101_hilserl_interfaces.srv import ResetEpisode
from so101_testing.graph import wait_until
from so101_testing.processes import ProcessGroup, assert_clean_log, signal_and_time_exit

MS = 1_000_000  # ns
START_TIMEOUT_S = 60.0  # a cold start of MuJoCo and DDS on a loaded 2-core machine
WAIT_S = 30.0  # anything else the simulation does on a loaded machine
HELD_REPUBLISHES = 3  # a held lockstep sim republishes its /clock every 0.25 s: 3 of them = held >= 0.5 s wall
ALL_CLOCKS = QoSProfile(depth=1000, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST)
ALL_SAMPLES = QoSProfile(depth=1000, reliability=ReliabilityPolicy.BEST_EFFORT, history=HistoryPolicy.KEEP_LAST)
SMALL_CAMERA = ("-p", "camera_width:=64", "-p", "camera_height:=48")
WAITING_FOR_THE_ACTOR = "is the actor running with lockstep:=true?"


@pytest.fixture(scope="module")
def lockstep_sim(tmp_path_factory):
    """One lockstep simulation for the module. Demo operator: it grabs the leader at once unless hands are off.
    A short watchdog (0.2 s) that wall time would trip whenever the test holds the simulation."""
    with ProcessGroup(tmp_path_factory.mktemp("sim_logs")) as group:
        process = group.start_module(
            "so101_driver.sim.sim_node", "--ros-args", "-p", "clock_mode:=lockstep", "-p", "operator_mode:=demo",
            "-p", "seed:=3", "-p", "command_timeout_s:=0.2", *SMALL_CAMERA,
            # The probe plays a learner that reports only when its backlog changes; a silent learner holding the
            # run is sim_clock's and the runner's fault tests' (a real learner also reports every 0.05 s).
            "-p", "lockstep_learner_lead_s:=60.0", name="sim",
        )  # fmt: skip
        yield process
        if not process.alive():
            print(group.logs())


class Lockstep:
    """The probe's side of the protocol: grants and learner progress out; /clock, images and joint states in."""

    def __init__(self, probe):
        self.probe = probe
        self.clocks = probe.subscribe(Clock, CLOCK_TOPIC, ALL_CLOCKS)
        self.images = probe.subscribe(Image, "wrist_camera/image_raw", ALL_SAMPLES)
        self.follower = probe.subscribe(JointState, "follower/joint_states", ALL_SAMPLES)
        self.leader = probe.subscribe(JointState, "leader/joint_states", ALL_SAMPLES)
        self.advance = probe.publisher(Clock, ADVANCE_TOPIC, qos.LATCHED)  # as the actor and the learner do
        self.progress = probe.publisher(LearnerProgress, PROGRESS_TOPIC, qos.LATCHED)
        probe.wait_for_subscribers(self.advance, timeout_s=START_TIMEOUT_S)
        probe.wait_for_subscribers(self.progress, timeout_s=WAIT_S)
        for topic in (CLOCK_TOPIC, "wrist_camera/image_raw", "follower/joint_states", "leader/joint_states"):
            probe.wait_for_publishers(topic, timeout_s=WAIT_S)

    def grant(self, t_ns: int) -> None:
        self.advance.publish(Clock(clock=ns_to_stamp(t_ns)))

    def report_backlog(self, backlog: int) -> None:
        self.progress.publish(LearnerProgress(update_backlog=backlog))

    def clock_ns(self) -> list[int]:
        return [stamp_to_ns(msg.clock) for msg in self.clocks.messages]

    def wait_clock(self, t_ns: int) -> None:
        wait_until(
            lambda: t_ns in self.clock_ns(), WAIT_S, f"/clock at {t_ns / 1e9:.2f} s (got {self.clock_ns()[-3:]})"
        )

    def wait_held(self) -> None:
        """Wait until the simulation has republished its /clock HELD_REPUBLISHES times: it is holding."""
        count = len(self.clocks)
        self.clocks.wait_for(count + HELD_REPUBLISHES, WAIT_S, "/clock republished while held")

    def now_ns(self) -> int:
        """The simulation's time as it holds: grant the past (changes nothing) and wait for a (re)published /clock."""
        self.grant(0)
        self.clocks.wait_for(1, WAIT_S, "a /clock")
        self.wait_held()
        return self.clock_ns()[-1]

    @staticmethod
    def state_at(recorder, t_ns: int) -> np.ndarray:
        """The joint positions (JOINT_NAMES order) stamped ``t_ns``, waiting for them."""

        def find():
            return next((m for m in recorder.messages if stamp_to_ns(m.header.stamp) == t_ns), None)

        msg = wait_until(find, WAIT_S, f"joint states stamped {t_ns / 1e9:.2f} s")
        index = {name: i for i, name in enumerate(msg.name)}
        return np.array([msg.position[index[name]] for name in JOINT_NAMES])


def test_lockstep_advances_exactly_to_the_grant_and_holds_while_the_learner_owes_updates(lockstep_sim, probe):
    sim = Lockstep(probe)
    # No grant yet: the simulation holds before its first instant and says what it waits for.
    wait_until(lambda: WAITING_FOR_THE_ACTOR in lockstep_sim.output(), WAIT_S, "the sim's log of its hold")
    assert not [t for t in sim.clock_ns() if t > 0], sim.clock_ns()
    assert len(sim.images) == 0

    sim.grant(300 * MS)
    sim.wait_clock(300 * MS)
    sim.wait_held()
    clocks = sim.clock_ns()
    assert max(clocks) == clocks[-1] == 300 * MS, clocks  # reached the grant exactly, and stays there
    assert clocks == sorted(clocks)  # never back
    sim.images.wait_for(4, WAIT_S, "images up to the grant")
    assert [stamp_to_ns(m.header.stamp) for m in sim.images.messages] == [0, 100 * MS, 200 * MS, 300 * MS]
    assert (sim.images.messages[0].width, sim.images.messages[0].height) == (64, 48)
    sim.state_at(sim.follower, 300 * MS)
    sim.state_at(sim.leader, 300 * MS)
    follower_stamps = [stamp_to_ns(m.header.stamp) for m in sim.follower.messages]
    assert all(t % (10 * MS) == 0 and t <= 300 * MS for t in follower_stamps), follower_stamps  # the 100 Hz grid

    # The learner owes more updates than the bound: a grant alone does not move the simulation.
    sim.report_backlog(500)
    wait_until(lambda: "update backlog 500 > lockstep_max_backlog_updates 100" in lockstep_sim.output(), WAIT_S,
               "the sim's log of the learner's backlog")  # fmt: skip
    sim.grant(1000 * MS)
    sim.wait_held()
    assert max(sim.clock_ns()) == 300 * MS, sim.clock_ns()[-5:]
    sim.report_backlog(0)  # caught up
    sim.wait_clock(1000 * MS)
    sim.images.wait_for(11, WAIT_S, "images up to the second grant")
    assert [stamp_to_ns(m.header.stamp) for m in sim.images.messages] == [k * 100 * MS for k in range(11)]


def test_the_follower_watchdog_counts_simulated_time(lockstep_sim, probe):
    """Commands stop while the simulation is held for longer than the watchdog in wall time, but not in simulated
    time: the follower keeps moving to its target (a wall-time watchdog would hold it where it was)."""
    sim = Lockstep(probe)
    sim.report_backlog(0)
    now = sim.now_ns() + 10 * MS  # one tick on, so that this probe hears the state it starts from
    sim.grant(now)
    start = sim.state_at(sim.follower, now)
    target = start.copy()
    target[0] += 0.25  # shoulder_pan, within max_joint_step
    commands = probe.publisher(JointState, "follower/joint_commands", qos.COMMAND)
    probe.wait_for_subscribers(commands, timeout_s=WAIT_S)
    commands.publish(JointState(name=list(JOINT_NAMES), position=[float(v) for v in target]))
    sim.wait_held()  # >= 0.5 s of wall time without a command: beyond the 0.2 s watchdog in wall time
    sim.grant(now + 150 * MS)  # 0.15 s of simulated time: within the watchdog
    moved = sim.state_at(sim.follower, now + 150 * MS)[0] - start[0]
    assert moved > 0.1, f"the follower moved {moved:.3f} rad towards a 0.25 rad command"


def test_a_hands_off_reset_keeps_the_operator_away_for_that_episode_only(lockstep_sim, probe):
    sim = Lockstep(probe)
    sim.report_backlog(0)
    now = sim.now_ns()
    arm = [JOINT_NAMES.index(name) for name in ARM_JOINT_NAMES]

    hands_off = probe.call(ResetEpisode, "sim/reset", ResetEpisode.Request(seed=4, operator_hands_off=True))
    assert hands_off.success and "hands off" in hands_off.message
    home = np.array(hands_off.joint_positions)
    sim.grant(now + 1000 * MS)  # a demo operator would have grabbed the leader at once
    still = sim.state_at(sim.leader, now + 1000 * MS)
    assert np.abs(still - home)[arm].max() < 0.02, f"the leader moved by {still - home} with hands off"

    demo = probe.call(ResetEpisode, "sim/reset", ResetEpisode.Request(seed=4, operator_hands_off=False))
    assert demo.success and "hands off" not in demo.message
    home = np.array(demo.joint_positions)
    sim.grant(now + 2000 * MS)
    grabbed = sim.state_at(sim.leader, now + 2000 * MS)
    assert np.linalg.norm((grabbed - home)[arm]) > 0.1, "the operator is back after a normal reset"


def test_a_grant_sent_before_the_simulation_started_still_arrives(processes, probe):
    """The actor starts faster than MuJoCo loads: its first grant must not be lost (both would wait for ever)."""
    advance = probe.publisher(Clock, ADVANCE_TOPIC, qos.LATCHED)
    advance.publish(Clock(clock=ns_to_stamp(200 * MS)))
    clocks = probe.subscribe(Clock, CLOCK_TOPIC, ALL_CLOCKS)
    processes.start_module(
        "so101_driver.sim.sim_node", "--ros-args", "-p", "clock_mode:=lockstep", "-p", "operator_mode:=none",
        *SMALL_CAMERA, name="sim",
    )  # fmt: skip
    wait_until(lambda: 200 * MS in [stamp_to_ns(m.clock) for m in clocks.messages], START_TIMEOUT_S, "/clock at 0.2 s")


def test_sim_clock_runs_at_the_real_time_factor(processes, probe):
    sim = processes.start_module(
        "so101_driver.sim.sim_node", "--ros-args", "-p", "clock_mode:=sim", "-p", "real_time_factor:=5.0",
        "-p", "state_rate_hz:=50.0", "-p", "operator_mode:=none", *SMALL_CAMERA, name="sim",
    )  # fmt: skip
    clocks = probe.subscribe(Clock, CLOCK_TOPIC, ALL_CLOCKS)
    images = probe.subscribe(Image, "wrist_camera/image_raw", ALL_SAMPLES)

    def clock_ns(index: int) -> int:
        return stamp_to_ns(clocks.messages[index].clock) if len(clocks) else -1

    wait_until(lambda: clock_ns(-1) >= 1000 * MS, START_TIMEOUT_S, "/clock past 1 s")
    first = len(clocks) - 1
    wait_until(lambda: clock_ns(-1) >= clock_ns(first) + 30_000 * MS, WAIT_S, "30 s more of /clock")
    # Simulated seconds per wall second: the slope over every /clock received (~6 s of wall time), so one late
    # delivery to this probe does not decide it. The pacer only ever waits, so above 5 is the probe's delivery
    # jitter on a loaded machine (a late batch); an unpaced simulation runs far faster than the bound.
    samples = clocks.messages[first:]
    sim_s = np.array([stamp_to_ns(m.clock) for m in samples]) / 1e9
    wall_s = np.array(clocks.times[first : first + len(samples)])
    factor = np.polyfit(wall_s - wall_s[0], sim_s, 1)[0]
    assert 2.0 < factor < 7.0, f"simulated time ran {factor:.2f} x the wall clock (real_time_factor 5)\n{sim.output()}"
    stamps = [stamp_to_ns(m.header.stamp) for m in images.messages]
    assert stamps and all(t % (100 * MS) == 0 for t in stamps), stamps[:10]


@pytest.mark.parametrize(
    ("args", "name", "allowed"),
    [
        (("-p", "clock_mode:=fast"), "clock_mode", "one of wall, sim, lockstep"),
        (("-p", "clock_mode:=lockstep", "-p", "state_rate_hz:=300.0"), "state_rate_hz", "whole number of physics"),
    ],
    ids=["clock_mode", "tick-not-whole-physics-steps"],
)
def test_a_clock_setting_it_cannot_run_with_is_refused(processes, args, name, allowed):
    process = processes.start_module("so101_driver.sim.sim_node", "--ros-args", *args, name="sim")
    code = process.wait_exit(START_TIMEOUT_S)
    output = process.output()
    assert code == 2, f"exit code {code}\n{output}"
    assert any(f"parameter {name}" in line and allowed in line for line in output.splitlines()), output
    assert "Traceback" not in output, output


@pytest.mark.parametrize("mode", ["lockstep", "sim"])
def test_the_simulated_time_loop_stops_cleanly_on_sigint(processes, probe, mode):
    """Held (lockstep, no grant) or running (sim): the loop sees the stop at once; exit 0, nothing in the log."""
    sim = processes.start_module(
        "so101_driver.sim.sim_node", "--ros-args", "-p", f"clock_mode:={mode}", *SMALL_CAMERA, name="sim"
    )
    if mode == "lockstep":
        wait_until(lambda: WAITING_FOR_THE_ACTOR in sim.output(), START_TIMEOUT_S, "the sim's log of its hold")
    else:
        clocks = probe.subscribe(Clock, CLOCK_TOPIC, ALL_CLOCKS)
        clocks.wait_for(10, START_TIMEOUT_S, "/clock")
    code, elapsed = signal_and_time_exit(sim, [signal.SIGINT], LAUNCH_SIGTERM_AFTER_SIGINT_S)
    assert code == 0, f"exit {code} after {elapsed:.1f} s (None: still running)\n{sim.output()}"
    assert_clean_log(sim)
