"""The intervention node on simulated time: with use_sim_time its control-step timer and its stamps follow /clock.

The test publishes /clock running at five times real time (and both arms' joint states); the node's leader commands
(one per control step while the policy drives) must then be stamped in simulated time, one control period (0.1 s)
apart in it: a timer on the wall clock would space them about 0.5 s of simulated time apart.
"""

import threading

import numpy as np
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import JointState

from so101_contract import qos
from so101_contract.joints import JOINT_NAMES
from so101_contract.sim_time import CLOCK_TOPIC
from so101_contract.stamps import ns_to_stamp, stamp_to_ns
from so101_driver.model.kinematics import HOME_SEED

START_NS = 100_000_000_000  # simulated time starts at 100 s: far from the wall clock's stamps
STEP_NS, WALL_STEP_S = 50_000_000, 0.01  # 0.05 s of simulated time every 0.01 s of wall time: 5 x real time


def test_the_control_step_timer_and_stamps_follow_simulated_time(processes, probe):
    commands = probe.subscribe(JointState, "leader/joint_commands", qos.COMMAND)
    clock_pub = probe.publisher(Clock, CLOCK_TOPIC, qos.CLOCK)
    arms = [probe.publisher(JointState, f"{arm}/joint_states", qos.SENSOR_DATA) for arm in ("follower", "leader")]
    stop = threading.Event()

    def run_clock() -> None:
        t_ns = START_NS
        while not stop.wait(WALL_STEP_S):
            t_ns += STEP_NS
            for pub in arms:
                msg = JointState(name=list(JOINT_NAMES), position=[float(v) for v in HOME_SEED])
                msg.header.stamp = ns_to_stamp(t_ns)
                pub.publish(msg)
            clock_pub.publish(Clock(clock=ns_to_stamp(t_ns)))

    thread = threading.Thread(target=run_clock, daemon=True)
    thread.start()
    try:
        processes.start_module("so101_hilserl_actor.intervention_node", "--ros-args", "-p", "use_sim_time:=true",
                               name="intervention")  # fmt: skip
        received = commands.wait_for(30, 120, "leader commands")
    finally:
        stop.set()
        thread.join(timeout=5.0)
    stamps = np.array([stamp_to_ns(m.header.stamp) for m in received[5:]])  # after the first /clock settled
    assert (stamps >= START_NS).all() and (stamps < START_NS + 10**12).all()  # simulated time, not wall time
    spacing_s = float(np.median(np.diff(stamps))) * 1e-9
    assert abs(spacing_s - 0.1) <= 0.05, spacing_s  # one control period of simulated time (a wall timer: ~0.5)
