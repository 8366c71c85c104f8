"""Shutdown through node_main, with real processes over DDS: ordered (no traceback, exit 0) and always bounded.

The sim node renders a large image as fast as it can here, so its camera thread is nearly always between its last
look at the stop and its next publish when the signal comes: with rclpy's own signal handlers (the context shut
down at once) every one of these stops printed "Exception in thread sim-camera ... publisher's context is invalid".
"""

import signal
import sys
import time
from pathlib import Path

import pytest
from geometry_msgs.msg import PoseStamped
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import String

from so101_driver import qos
from so101_driver.node_main import (
    BACKSTOP_MARGIN_S,
    DEFAULT_SHUTDOWN_TIMEOUT_S,
    LAUNCH_SIGKILL_AFTER_SIGINT_S,
    LAUNCH_SIGTERM_AFTER_SIGINT_S,
)
from so101_testing.graph import wait_until

START_TIMEOUT_S = 60.0  # a cold start of MuJoCo and DDS on a loaded 2-core machine
# A node must be gone before launch escalates to SIGTERM; on a loaded machine a clean stop takes well under 1 s.
EXIT_BOUND_S = LAUNCH_SIGTERM_AFTER_SIGINT_S
PROBE_NODE = Path(__file__).with_name("shutdown_probe_node.py")
PROBE_TIMEOUT_S = 2.0  # the probe node's shutdown_timeout_s: short, so the hang tests are quick
SLACK_S = 2.0  # scheduling and os._exit on a loaded machine, on top of the guard's own time
SIM_ARGS = (
    "--ros-args",
    "-p",
    "operator_mode:=none",
    "-p",
    "camera_rate_hz:=100.0",  # back-to-back renders: the widest window for a publish racing the shutdown
    "-p",
    "camera_width:=1280",
    "-p",
    "camera_height:=960",
)


def assert_clean_log(process) -> None:
    log = process.output()
    assert "Traceback" not in log, log
    assert "Exception in thread" not in log, log
    assert "did not finish" not in log, log  # the bounded-exit guard was not needed


def signal_and_time_exit(process, signals: list[int], bound_s: float) -> tuple[int | None, float]:
    start = time.monotonic()
    for sig in signals:
        process.send_signal(sig)
    code = process.wait_exit(bound_s)
    return code, time.monotonic() - start


def test_shutdown_bound_fits_launchs_grace_period():
    # The guard (plus faulthandler's backstop for a hang that holds the GIL) ends a node before launch's SIGTERM.
    assert DEFAULT_SHUTDOWN_TIMEOUT_S + BACKSTOP_MARGIN_S <= LAUNCH_SIGTERM_AFTER_SIGINT_S
    assert LAUNCH_SIGTERM_AFTER_SIGINT_S < LAUNCH_SIGKILL_AFTER_SIGINT_S


def test_sim_and_fk_node_stop_cleanly_on_sigint(processes, probe):
    sim = processes.start_module("so101_driver.sim.sim_node", *SIM_ARGS, name="sim")
    fk = processes.start_module("so101_driver.model.fk_node", name="fk")
    images = probe.subscribe(Image, "wrist_camera/image_raw", qos.SENSOR_DATA)
    states = probe.subscribe(JointState, "follower/joint_states", qos.SENSOR_DATA)
    poses = probe.subscribe(PoseStamped, "follower/ee_pose", 10)
    images.wait_for(3, START_TIMEOUT_S, "wrist images from the sim")
    states.wait_for(10, START_TIMEOUT_S, "follower joint states from the sim")
    poses.wait_for(3, START_TIMEOUT_S, "poses from fk_node")

    start = time.monotonic()
    sim.send_signal(signal.SIGINT)
    fk.send_signal(signal.SIGINT)
    sim_code = sim.wait_exit(EXIT_BOUND_S)
    fk_code = fk.wait_exit(max(0.0, EXIT_BOUND_S - (time.monotonic() - start)))
    assert sim_code == 0, f"sim: exit {sim_code} (None: still running {EXIT_BOUND_S} s after SIGINT)\n{sim.output()}"
    assert fk_code == 0, f"fk_node: exit {fk_code} (None: still running)\n{fk.output()}"
    assert_clean_log(sim)
    assert_clean_log(fk)


@pytest.mark.parametrize(
    "signals",
    [
        pytest.param([signal.SIGTERM], id="sigterm"),  # the runner's or launch's escalation, or `kill`
        pytest.param([signal.SIGINT, signal.SIGINT, signal.SIGTERM], id="sigint-twice-then-sigterm"),
    ],
)
def test_sim_stops_cleanly_whatever_the_signals(processes, probe, signals):
    """Ctrl-C in a terminal under launch reaches the node twice (the terminal, launch); later signals must not
    interrupt the teardown under way."""
    sim = processes.start_module("so101_driver.sim.sim_node", *SIM_ARGS, name="sim")
    images = probe.subscribe(Image, "wrist_camera/image_raw", qos.SENSOR_DATA)
    images.wait_for(3, START_TIMEOUT_S, "wrist images from the sim")
    code, elapsed = signal_and_time_exit(sim, signals, EXIT_BOUND_S)
    assert code == 0, f"exit {code} after {elapsed:.1f} s (None: still running)\n{sim.output()}"
    assert_clean_log(sim)


def start_probe_node(processes, probe, mode: str):
    parameters = ["-p", f"mode:={mode}", "-p", f"shutdown_timeout_s:={PROBE_TIMEOUT_S}"]
    node = processes.start([sys.executable, "-u", str(PROBE_NODE), "--ros-args", *parameters], name=f"probe_{mode}")
    alive = probe.subscribe(String, "probe/alive", 10)
    alive.wait_for(1, START_TIMEOUT_S, f"the {mode} probe node")
    return node


@pytest.mark.parametrize(
    ("mode", "expected_code", "stuck_in"),
    [
        # The node's own stop never finished: its final state is not written, so the exit says failure.
        ("destroy_node", 1, "ShutdownProbeNode.destroy_node"),
        # The node was destroyed; only rclpy's shutdown hung (as a DDS teardown can): the run's own code.
        ("context_shutdown", 0, "rclpy shutdown"),
    ],
)
def test_a_hanging_teardown_still_exits_in_time(processes, probe, mode, expected_code, stuck_in):
    node = start_probe_node(processes, probe, mode)
    code, elapsed = signal_and_time_exit(node, [signal.SIGINT], PROBE_TIMEOUT_S + SLACK_S)
    assert code == expected_code, f"exit {code} after {elapsed:.1f} s (None: still running)\n{node.output()}"
    assert elapsed >= PROBE_TIMEOUT_S - 0.1, "exited before the guard's time: the teardown did not really hang"
    log = node.output()
    assert f"did not finish within {PROBE_TIMEOUT_S:g} s (stuck in {stuck_in})" in log, log
    assert "Traceback" not in log, log


def test_a_teardown_hanging_in_c_with_the_gil_held_still_exits(processes, probe):
    """The guard thread cannot run while C code holds the GIL; faulthandler's C watchdog ends the process."""
    node = start_probe_node(processes, probe, "destroy_node_holding_gil")
    code, elapsed = signal_and_time_exit(node, [signal.SIGINT], PROBE_TIMEOUT_S + BACKSTOP_MARGIN_S + SLACK_S)
    assert code == 1, f"exit {code} after {elapsed:.1f} s (None: still running)\n{node.output()}"
    assert elapsed >= PROBE_TIMEOUT_S - 0.1, "exited before the guard's time: the teardown did not really hang"
    log = node.output()
    assert "Timeout" in log and "destroy_node" in log, log  # faulthandler's dump says where it hung


def test_a_publish_racing_the_teardown_ends_its_thread_quietly(processes, probe):
    node = start_probe_node(processes, probe, "publish_after_destroy")
    code, elapsed = signal_and_time_exit(node, [signal.SIGINT], EXIT_BOUND_S)
    assert code == 0, f"exit {code} after {elapsed:.1f} s (None: still running)\n{node.output()}"
    assert_clean_log(node)


def test_a_signal_during_start_up_stops_the_node_once_it_is_built(processes):
    """Ctrl-C while a node is still being built (a learner loading its buffer): the node is finished, then torn
    down in order, instead of a KeyboardInterrupt inside its constructor."""
    node = processes.start(
        [sys.executable, "-u", str(PROBE_NODE), "--ros-args", "-p", "mode:=slow_start"], name="probe_slow_start"
    )
    wait_until(lambda: "constructing" in node.output(), START_TIMEOUT_S, "the probe node's constructor")
    code, elapsed = signal_and_time_exit(node, [signal.SIGINT], EXIT_BOUND_S)
    assert code == 0, f"exit {code} after {elapsed:.1f} s (None: still running)\n{node.output()}"
    assert "destroyed" in node.output()
    assert_clean_log(node)


def test_a_dying_worker_thread_takes_the_node_down(processes, probe):
    node = start_probe_node(processes, probe, "thread_dies")
    code = node.wait_exit(START_TIMEOUT_S)  # no signal: the thread's death alone stops the node
    log = node.output()
    assert code == 1, f"exit {code} (None: still running)\n{log}"
    assert "RuntimeError: probe worker failed" in log and "thread probe-thread_dies died" in log, log
