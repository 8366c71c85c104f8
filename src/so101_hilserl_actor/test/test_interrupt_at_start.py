"""Ctrl-C in the first seconds of a node process ends it quietly: no traceback, whether the SIGINT lands while the
actor imports torch (so101_contract.quiet_interrupt), while rclpy starts or while the node is built (node_main).

Four real actor processes start together; each gets one SIGINT at its own instant after its start, as a terminal's
Ctrl-C would, and must exit within EXIT_TIMEOUT_S with the status of an interrupted or cleanly stopped process.
"""

from __future__ import annotations

import signal
import time

import pytest

from so101_testing.processes import ProcessGroup

ACTOR = "so101_hilserl_actor.actor_node"
SIGNAL_AFTER_S = (1.0, 2.0, 4.0, 8.0)
EXIT_TIMEOUT_S = 30.0  # from the signal; a loaded two-core machine
QUIET_EXITS = (0, 130, -signal.SIGINT)  # stopped in order; or killed by the SIGINT Python re-raises on itself


@pytest.fixture(scope="module")
def interrupted(tmp_path_factory):
    """{delay: (exit code or None, output)} of actors sent SIGINT ``delay`` seconds after they started."""
    with ProcessGroup(tmp_path_factory.mktemp("logs")) as group:
        started = {delay: group.start_module(ACTOR, name=f"actor-{delay:g}s") for delay in SIGNAL_AFTER_S}
        start = time.monotonic()
        for delay, process in started.items():
            time.sleep(max(start + delay - time.monotonic(), 0.0))  # the instant under test, not a wait for a state
            process.send_signal(signal.SIGINT)
        results = {}
        for delay, process in started.items():
            deadline = start + delay + EXIT_TIMEOUT_S
            results[delay] = (process.wait_exit(max(deadline - time.monotonic(), 0.1)), process.output())
        yield results


@pytest.mark.parametrize("delay", SIGNAL_AFTER_S, ids=lambda d: f"{d:g}s")
def test_sigint_in_the_first_seconds_exits_quietly(interrupted, delay):
    code, output = interrupted[delay]
    assert code is not None, f"SIGINT {delay:g} s after start: still running {EXIT_TIMEOUT_S:g} s later\n{output}"
    assert code in QUIET_EXITS, f"SIGINT {delay:g} s after start: exit code {code}\n{output}"
    assert "Traceback" not in output and "did not finish" not in output, output
