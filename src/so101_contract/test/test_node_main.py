"""node_main with real processes over DDS: a shutdown that is ordered (no traceback, exit 0) and always bounded,
a dying worker thread that takes its node down, and a refused parameter that exits 2 with one line. The probe node
(shutdown_probe_node.py) misbehaves in one chosen way each; the driver's test_clean_shutdown.py stops real nodes.
"""

import signal
import sys
from pathlib import Path

import pytest
from std_msgs.msg import String

from so101_contract.node_main import (
    BACKSTOP_MARGIN_S,
    DEFAULT_SHUTDOWN_TIMEOUT_S,
    EXIT_REFUSED,
    LAUNCH_SIGKILL_AFTER_SIGINT_S,
    LAUNCH_SIGTERM_AFTER_SIGINT_S,
)
from so101_testing.graph import wait_until
from so101_testing.processes import assert_clean_log, signal_and_time_exit

START_TIMEOUT_S = 60.0  # a cold start of rclpy and DDS on a loaded 2-core machine
# A node must be gone before launch escalates to SIGTERM; on a loaded machine a clean stop takes well under 1 s.
EXIT_BOUND_S = LAUNCH_SIGTERM_AFTER_SIGINT_S
PROBE_NODE = Path(__file__).with_name("shutdown_probe_node.py")
PROBE_TIMEOUT_S = 2.0  # the probe node's shutdown_timeout_s: short, so the hang tests are quick
SLACK_S = 2.0  # scheduling and os._exit on a loaded machine, on top of the guard's own time


def test_shutdown_bound_fits_launchs_grace_period():
    # The guard (plus faulthandler's backstop for a hang that holds the GIL) ends a node before launch's SIGTERM.
    assert DEFAULT_SHUTDOWN_TIMEOUT_S + BACKSTOP_MARGIN_S <= LAUNCH_SIGTERM_AFTER_SIGINT_S
    assert LAUNCH_SIGTERM_AFTER_SIGINT_S < LAUNCH_SIGKILL_AFTER_SIGINT_S


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


@pytest.mark.parametrize(
    ("parameter", "line"),
    [
        ("shutdown_timeout_s:=-1.0", "shutdown_timeout_s=-1.0 is out of range; expected float in [0.1, 60.0]"),
        ("shutdown_timeout_s:=fast", "parameter shutdown_timeout_s='fast' has the wrong type; expected float"),
        ("mode:=sometimes", "parameter mode='sometimes' is not allowed; expected one of clean, "),
    ],
)
def test_a_refused_parameter_exits_2_with_one_line_naming_it(processes, parameter, line):
    node = processes.start([sys.executable, "-u", str(PROBE_NODE), "--ros-args", "-p", parameter], name="probe_bad")
    code = node.wait_exit(START_TIMEOUT_S)
    log = node.output()
    assert code == EXIT_REFUSED, f"exit {code} (None: still running)\n{log}"
    assert line in log, log
    assert "Traceback" not in log, log


def test_an_integer_for_a_float_parameter_is_that_float(processes, probe):
    """Launch files and command lines cannot mark a type: shutdown_timeout_s:=2 means 2.0, not a refusal."""
    node = processes.start(
        [sys.executable, "-u", str(PROBE_NODE), "--ros-args", "-p", "shutdown_timeout_s:=2"], name="probe_int"
    )
    alive = probe.subscribe(String, "probe/alive", 10)
    alive.wait_for(1, START_TIMEOUT_S, "the probe node given an integer timeout")
    code, elapsed = signal_and_time_exit(node, [signal.SIGINT], EXIT_BOUND_S)
    assert code == 0, f"exit {code} after {elapsed:.1f} s (None: still running)\n{node.output()}"
    assert_clean_log(node)
