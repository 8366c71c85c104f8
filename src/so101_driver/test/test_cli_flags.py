"""Numeric command-line flags of the driver's CLIs are checked by argparse (issue 15): a value the bus cannot take
(``calibrate --baudrate -5``), a probability above 1 or a servo id past the protocol's range is exit 2 with one
error line naming the flag and what is allowed, before any port is opened; never a traceback from deep in the bus."""

import subprocess
import sys

import pytest

from so101_driver.hardware.calibrate import main as calibrate_main
from so101_driver.hardware.feetech.emulator import main as emulator_main
from so101_testing.cli import refusal_line


def test_calibrate_baudrate_minus_5_is_refused_naming_the_flag_and_the_rates():
    # A real process, as a user runs it: the port does not exist, so only the flag can be what is refused.
    result = subprocess.run(
        [sys.executable, "-m", "so101_driver.hardware.calibrate", "--port", "/dev/so101_none", "--kind", "follower",
         "--id", "x", "--baudrate", "-5"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("python -m so101_driver.hardware.calibrate: error: argument --baudrate: -5 is not allowed")
    assert "expected one of 4800, 9600" in last and "1000000" in last


@pytest.mark.parametrize(
    ("main", "argv", "flag"),
    [
        (calibrate_main, ["--port", "p", "--kind", "leader", "--baudrate", "12345"], "--baudrate"),
        (emulator_main, ["--link", "l", "--corrupt", "2"], "--corrupt"),
        (emulator_main, ["--link", "l", "--drop", "-0.1"], "--drop"),
        (emulator_main, ["--link", "l", "--ids", "1", "300"], "--ids"),
        (emulator_main, ["--link", "l", "--baudrate", "0"], "--baudrate"),
    ],
)
def test_numeric_flags_out_of_range_are_refused_by_argparse(main, argv, flag, capsys):
    line = refusal_line(main, argv, capsys)
    assert f"error: argument {flag}: " in line, line
