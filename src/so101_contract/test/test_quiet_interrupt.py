"""A Ctrl-C during a node's imports ends it without a traceback, also when the import turned it into another error
(rclpy's C-extension import raises ImportError "initialization failed" from the KeyboardInterrupt); any other error
still prints its traceback. A SIGINT while the modules load is noted and honoured once the process can: raised
inside a pybind11 module's import it would abort the process."""

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


def test_a_sigint_during_a_pybind11_import_is_noted_not_raised_inside_it():
    """The signal arrives while rclpy (a pybind11 extension) is being imported: the process must not abort; the
    interrupt is there for whoever takes the signals over, and a later Ctrl-C raises again after take_over."""
    code = (
        "import os, signal, threading\n"
        "import so101_contract.quiet_interrupt as qi\n"
        "threading.Timer(0.0, os.kill, (os.getpid(), signal.SIGINT)).start()\n"
        "import rclpy, rclpy.node, pinocchio\n"
        "import time; deadline = time.monotonic() + 10\n"
        "while not qi.INTERRUPTED.is_set() and time.monotonic() < deadline: time.sleep(0.01)\n"
        "assert qi.take_over(), 'the interrupt was lost'\n"
        "try:\n"
        "    os.kill(os.getpid(), signal.SIGINT); time.sleep(5)\n"
        "except KeyboardInterrupt:\n"
        "    print('raised after take_over')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "raised after take_over" in result.stdout, result.stderr
