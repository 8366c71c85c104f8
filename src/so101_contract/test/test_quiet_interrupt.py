"""A Ctrl-C during a node's imports ends it without a traceback, also when the import turned it into another error
(rclpy's C-extension import raises ImportError "initialization failed" from the KeyboardInterrupt); any other error
still prints its traceback."""

import subprocess
import sys

import pytest


@pytest.mark.parametrize(
    ("body", "traceback"),
    [
        ("raise KeyboardInterrupt", False),
        ("try:\n    raise KeyboardInterrupt\nexcept KeyboardInterrupt as e:\n    raise ImportError('x') from e", False),
        ("raise ImportError('a real missing module')", True),
    ],
)  # fmt: skip
def test_an_interrupt_is_quiet_and_a_real_error_is_not(body, traceback):
    code = "import so101_contract.quiet_interrupt\n" + body
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and ("Traceback" in result.stderr) == traceback, result.stderr


def test_an_interrupt_a_library_swallowed_during_the_imports_still_stops_the_node():
    """A KeyboardInterrupt caught by library code while the node module loads must not leave a node that runs on
    (an actor sent Ctrl-C 4 s after its start ran until it was killed): node_main stops it at once."""
    code = (
        "import os, signal, time\n"
        "import so101_contract.quiet_interrupt\n"
        "try:\n"
        "    os.kill(os.getpid(), signal.SIGINT)\n"
        "    time.sleep(5)\n"
        "except BaseException:\n"
        "    pass  # what a careless import does\n"
        "import rclpy\n"
        "from so101_contract.node_main import run_node\n"
        "run_node(lambda: rclpy.create_node('swallowed_interrupt'), [])\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
