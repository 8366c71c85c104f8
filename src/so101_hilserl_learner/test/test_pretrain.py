"""Sim pretraining end to end with a tiny network on small images: it trains, evaluates, writes the agent file the
learner and the actor start from (project semantics, pretrained exploration schedule), resumes from its own
checkpoint, and refuses bad input with one line and exit 2."""

import csv

import numpy as np
import pytest
import torch

from so101_hilserl_core import exploration
from so101_hilserl_core.policy_io import load_initial_policy, load_policy
from so101_hilserl_core.semantics import PROJECT_SEMANTICS
from so101_hilserl_learner import checkpoint, pretrain
from so101_hilserl_learner.weight_files.agent_file import load_agent_weights

TINY = ["--stage", "1", "--batch-size", "8", "--warmup-transitions", "16", "--num-explore-steps", "10",
        "--image-size", "24", "--camera", "160x120", "--hidden", "32", "--encoder-channels", "8",
        "--bottleneck", "16", "--eval-episodes", "2", "--eval-every", "40", "--checkpoint-every", "40",
        "--no-progress", "--threads", "1", "--device", "cpu"]  # fmt: skip


def rows(out):
    with (out / pretrain.EVAL_CSV).open() as handle:
        return list(csv.DictReader(handle))


@pytest.mark.timeout(300)
def test_pretrain_writes_a_starting_agent_file_and_resumes(tmp_path, capsys):
    out = tmp_path / "run"
    assert pretrain.main([*TINY, "--out", str(out), "--steps", "30"]) == 0
    first = rows(out)
    assert first[0]["env_steps"] == "0" and first[0]["updates"] == "0"  # the untrained policy's evaluation
    steps_1 = int(first[-1]["env_steps"])
    assert steps_1 >= 30 and int(first[-1]["updates"]) > 0
    assert "eval success" in capsys.readouterr().out

    # The agent file: what the learner's initial_checkpoint and the actor's initial_weights take.
    tensors, config, metadata = load_agent_weights(out / pretrain.AGENT_FILE)
    assert config.semantics() == PROJECT_SEMANTICS and config.image_size == 24 and config.hidden == (32,)
    assert exploration.from_metadata(metadata) == (exploration.DEFAULT_PRETRAINED_SCHEDULE, 0)
    policy = load_policy(out / pretrain.AGENT_FILE, expected=config)
    _, schedule, steps = load_initial_policy(str(out / pretrain.AGENT_FILE), config)
    assert (schedule, steps) == (exploration.DEFAULT_PRETRAINED_SCHEDULE, 0)
    saved = checkpoint.load_newest_good(out / "checkpoints")
    assert saved.step == steps_1
    for key, value in policy.state_dict().items():  # the file holds the trained weights, not fresh ones
        assert torch.equal(value, tensors[key]) and torch.equal(value, saved.state["agent"][key])
    pixels = torch.zeros(1, 9, 24, 24, dtype=torch.uint8)
    assert np.all(np.abs(policy(pixels, torch.zeros(1, 54)).detach().numpy()) <= 1.0)

    # Without --resume an existing run is not overwritten; with it the run continues where it stopped.
    more = str(steps_1 + 30)
    assert pretrain.main([*TINY, "--out", str(out), "--steps", more]) == 2
    assert "--resume" in capsys.readouterr().err
    assert pretrain.main([*TINY, "--out", str(out), "--steps", more, "--resume"]) == 0
    second = rows(out)
    assert second[: len(first)] == first
    assert len(second) > len(first) and int(second[-1]["env_steps"]) >= steps_1 + 30
    assert int(second[-1]["updates"]) > int(first[-1]["updates"])
    resumed = checkpoint.load_newest_good(out / "checkpoints")
    assert resumed.state["progress"]["episodes"] > saved.state["progress"]["episodes"]
    assert int(resumed.state["agent"]["counters.num_updates"]) == int(second[-1]["updates"])

    # A resume with other network sizes names the flag.
    assert pretrain.main([*TINY[:-2], "--device", "cpu", "--out", str(out), "--steps", "150", "--resume",
                          "--hidden", "64"]) == 2  # fmt: skip
    assert "--hidden" in capsys.readouterr().err


def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert pretrain.main(["--out", str(tmp_path / "a"), "--device", "cuda"]) == 2
    err = capsys.readouterr().err.strip()
    assert "--device cuda" in err and len(err.splitlines()) == 1
    assert pretrain.main([*TINY, "--out", str(tmp_path / "b"), "--stddev-schedule", "fast"]) == 2
    assert "--stddev-schedule" in capsys.readouterr().err
    assert not (tmp_path / "b").exists()  # nothing written for a refused run
    with pytest.raises(SystemExit) as exit_info:
        pretrain.main(["--out", str(tmp_path / "c"), "--steps", "0"])
    assert exit_info.value.code == 2
    with pytest.raises(SystemExit) as exit_info:
        pretrain.main(["--out", str(tmp_path / "c"), "--camera", "640by480"])
    assert exit_info.value.code == 2
