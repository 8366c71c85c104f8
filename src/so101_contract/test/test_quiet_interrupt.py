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
