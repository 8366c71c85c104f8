"""Command-line refusals as a user sees them: a CLI's main, given a bad flag, must exit 2 with argparse's one error
line (after its usage line) and never a traceback."""

from __future__ import annotations

from collections.abc import Callable

import pytest


def refusal_line(main: Callable[[list[str]], object], argv: list[str], capsys: pytest.CaptureFixture) -> str:
    """Run ``main(argv)``, which must exit 2 without a traceback; the last line of its stderr (the error line)."""
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2, f"exit {exit_info.value.code} for {argv}"
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    return err.strip().splitlines()[-1]
