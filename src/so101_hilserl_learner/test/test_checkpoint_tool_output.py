"""checkpoint_tool's writing commands (import-robobase, import-lerobot, export) with an -o that cannot be written
(under a file, a directory, a place that does not exist) end with exit 2 and one line naming -o and what the user
gave, not the temporary file beside it; nothing is left behind (issue 15)."""

from __future__ import annotations

import pytest
from test_checkpoint_import import (
    SMALL,
    _agent,
    _learner_checkpoint,
    networks,
    robobase_agent,
    robobase_cfg,
    write_lerobot,
    write_snapshot,
)

from so101_hilserl_learner.weight_files.checkpoint_tool import main


@pytest.fixture
def sources(tmp_path):
    """One valid input per command, so only -o can be wrong."""
    tensors = networks(SMALL)
    snapshot = write_snapshot(tmp_path / "snapshot.pt", robobase_agent(tensors), robobase_cfg(SMALL))
    lerobot = write_lerobot(tmp_path / "lerobot", tensors, SMALL)
    run_dir = tmp_path / "run"
    _learner_checkpoint(run_dir, _agent(SMALL, seed=1), 10, None)
    return {"import-robobase": snapshot, "import-lerobot": lerobot, "export": run_dir}


@pytest.mark.parametrize("command", ["import-robobase", "import-lerobot", "export"])
@pytest.mark.parametrize(
    ("output", "force", "cause"),
    [
        ("a_file/agent.safetensors", False, "cannot write it"),
        ("missing/agent.safetensors", False, "cannot write it"),
        ("a_dir", True, "is a directory"),
    ],
)
def test_an_output_that_cannot_be_written_is_one_line_naming_it(
    sources, tmp_path, capsys, command, output, force, cause
):
    (tmp_path / "a_file").write_text("not a directory")
    (tmp_path / "a_dir").mkdir()
    out = tmp_path / output
    before = sorted(p.name for p in tmp_path.iterdir())
    status = main([command, str(sources[command]), "-o", str(out), *(["--force"] if force else [])])
    err = capsys.readouterr().err
    assert status == 2
    assert "Traceback" not in err and err.count("\n") == 1, err
    assert err.startswith(f"error: -o {out}: {cause}"), err
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no temporary file left
