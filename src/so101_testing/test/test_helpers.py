"""The helper's own guarantees: private domains, processes always reaped, waits that time out."""

import os
import subprocess
import sys
import textwrap
import time

import pytest
from std_msgs.msg import String

from so101_testing.graph import GraphTimeout, wait_until
from so101_testing.processes import NodeProcess


def test_plugin_isolated_this_process():
    assert os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] == "LOCALHOST"
    assert 20 <= int(os.environ["ROS_DOMAIN_ID"]) < 100


def test_two_processes_never_get_the_same_domain(tmp_path):
    code = textwrap.dedent(
        """
        import time
        from so101_testing.domain import claim_private_domain
        print(claim_private_domain(), flush=True)
        time.sleep(3)
        """
    )
    children = [
        subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(3)
    ]
    try:
        lines = [child.stdout.readline().strip() for child in children]
    finally:
        for child in children:
            child.kill()
            child.wait(timeout=5)
    assert all(lines), [child.stderr.read() for child in children]
    claimed = {int(line) for line in lines}
    claimed.add(int(os.environ["ROS_DOMAIN_ID"]))
    assert len(claimed) == 4


def test_exhausted_domain_range_is_a_clear_error():
    mine = int(os.environ["ROS_DOMAIN_ID"])
    with pytest.raises(RuntimeError, match="held by other processes"):
        # the only candidate is the domain this process holds: another process must be refused it
        _claim_in_child(range(mine, mine + 1))


def _claim_in_child(candidates: range) -> int:
    code = (
        "from so101_testing.domain import claim_private_domain;"
        f"print(claim_private_domain(range({candidates.start}, {candidates.stop})))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    if result.returncode != 0:
        raise RuntimeError(result.stderr.strip().splitlines()[-1])
    return int(result.stdout)


def test_stop_kills_a_process_that_ignores_sigint_and_its_children(tmp_path):
    script = tmp_path / "stubborn.py"
    script.write_text(
        textwrap.dedent(
            """
            import signal, subprocess, sys, time
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            sleeper = "import signal, time; signal.signal(signal.SIGINT, signal.SIG_IGN); time.sleep(600)"
            child = subprocess.Popen([sys.executable, "-c", sleeper])
            print(child.pid, flush=True)
            time.sleep(600)
            """
        )
    )
    proc = NodeProcess([sys.executable, str(script)], tmp_path / "stubborn.log")
    grandchild = int(wait_until(lambda: proc.output().strip(), 20, "the grandchild pid"))
    started = time.monotonic()
    proc.stop(grace_s=0.5)
    assert time.monotonic() - started < 10
    assert not proc.alive()
    assert proc.output().strip() == str(grandchild)  # logs stay readable after the stop (printed on failures)
    with pytest.raises(ProcessLookupError):
        os.kill(grandchild, 0)


def test_wait_until_times_out_with_a_message():
    with pytest.raises(GraphTimeout, match="the impossible"):
        wait_until(lambda: False, 0.2, "the impossible")


def test_probe_sees_a_node_process_over_dds(processes, probe):
    """A real two-process exchange on the private domain through the echo node."""
    processes.start_module("so101_testing.echo", "std_msgs/msg/String", "ping", "pong", name="echo")
    received = probe.subscribe(String, "pong")
    publisher = probe.publisher(String, "ping")
    probe.wait_for_subscribers(publisher, timeout_s=30)
    probe.wait_for_publishers("pong", timeout_s=30)
    wait_until(lambda: probe.node.count_subscribers("pong") >= 1, 30, "probe subscription matched")

    def ping_until_echoed():
        publisher.publish(String(data="hello"))
        return len(received) > 0

    wait_until(ping_until_echoed, 30, "the echo", period_s=0.2)
    assert received.messages[0].data == "hello"
