"""Upstream LeRobot's HIL-SERL checkpoints are `sac` policies: `checkpoint_tool import-lerobot` refuses them with
one line that says so (only the seed author's `drqv2` directories map onto this project's DrQ-v2 agent)."""

import json

from so101_hilserl_learner.weight_files.checkpoint_tool import main


def test_a_lerobot_sac_policy_directory_is_refused_saying_why(tmp_path, capsys):
    directory = tmp_path / "pretrained_model"
    directory.mkdir()
    (directory / "config.json").write_text(json.dumps({"type": "sac", "num_critics": 2}))
    (directory / "model.safetensors").write_bytes(b"\0" * 16)  # never read: the type decides first
    out = tmp_path / "agent.safetensors"
    status = main(["import-lerobot", str(directory), "-o", str(out)])
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1 and "Traceback" not in err, err
    assert str(directory / "config.json") in err and "type is 'sac', expected 'drqv2'" in err
    assert "upstream LeRobot's HIL-SERL policies are 'sac' and cannot be imported" in err and "import-robobase" in err
    assert not out.exists()
