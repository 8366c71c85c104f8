"""The learner's and the actor's start-up files (issue 15): a run_dir that is a file or cannot be created, initial
weights that are missing, a folder, not safetensors, or for another network end the node process with exit code 2
and one line naming the parameter, its value and the fix; never a traceback. Real node processes, as launch starts
them."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch
from test_learner_node import TINY, learner_args

from so101_contract.parameters import ParameterError
from so101_hilserl_core.policy import Policy, PolicyConfig
from so101_hilserl_learner.critic import Critic
from so101_hilserl_learner.start_files import check_journal_covers
from so101_hilserl_learner.weight_files.agent_file import save_agent_weights
from so101_testing.graph import wait_until

EXIT_TIMEOUT_S = 120  # torch import and node start on a loaded 2-core machine; the refusal itself is immediate


def agent_file(path, config: PolicyConfig):
    """A valid agent file for ``config``: random tensors of the networks' keys and shapes."""
    generator = torch.Generator().manual_seed(0)
    with torch.device("meta"):
        modules = {"": Policy(config), "critic.": Critic(config), "critic_target.": Critic(config)}
    tensors = {
        prefix + key: 0.1 * torch.randn(value.shape, generator=generator)
        for prefix, module in modules.items()
        for key, value in module.state_dict().items()
    }
    save_agent_weights(path, tensors, config, {"kind": "test"})
    return path


def refusal_line(process) -> str:
    wait_until(lambda: not process.alive(), EXIT_TIMEOUT_S, f"{process} to refuse its start")
    output = process.output()
    assert process.popen.returncode == 2, output
    assert "Traceback" not in output, output
    lines = [line for line in output.splitlines() if "parameter " in line]
    assert len(lines) == 1, output
    return lines[0]


def learner_cases(tmp_path):
    (tmp_path / "a_file").write_text("not a directory")
    (tmp_path / "text.safetensors").write_text("not weights\n")
    (tmp_path / "folder.safetensors").mkdir()
    other = replace(PolicyConfig(), **{**json.loads(TINY), "hidden": (8, 8)})  # the learner is configured with TINY
    wrong = agent_file(tmp_path / "other_network.safetensors", other)
    run = str(tmp_path / "run")
    return {  # name -> (parameters, what the line must say)
        "run_dir a file": ({"run_dir": str(tmp_path / "a_file")}, "run_dir=", "is a file, not a directory"),
        "run_dir under a file": ({"run_dir": str(tmp_path / "a_file" / "run")}, "run_dir=", "cannot create it"),
        "initial_weights missing": (
            {"run_dir": run + "1", "initial_weights": str(tmp_path / "x.safetensors")},
            f"initial_weights={str(tmp_path / 'x.safetensors')!r}",
            "no such file",
        ),
        "initial_weights not safetensors": (
            {"run_dir": run + "2", "initial_weights": str(tmp_path / "text.safetensors")},
            "initial_weights=",
            "not a safetensors file",
        ),
        "initial_weights a folder": (
            {"run_dir": run + "3", "initial_weights": str(tmp_path / "folder.safetensors")},
            "initial_weights=",
            "not a file",
        ),
        "initial_weights another network": (
            {"run_dir": run + "4", "initial_weights": str(wrong)},
            "initial_weights=",
            "network differs from the configured one",
        ),
    }


def test_learner_start_file_problems_exit_2_naming_the_parameter(processes, tmp_path):
    cases = learner_cases(tmp_path)
    started = {  # all at once: each waits for its own torch import, not for the others
        name: processes.start_module(
            "so101_hilserl_learner.learner_node", *learner_args(params.pop("run_dir"), **params), name=f"learner{i}"
        )
        for i, (name, (params, _, _)) in enumerate(cases.items())
    }
    for name, process in started.items():
        _, named, cause = cases[name]
        line = refusal_line(process)
        assert f"parameter {named}" in line and cause in line, (name, line)
    assert not (tmp_path / "a_file" / "run").exists()


@pytest.mark.parametrize(
    ("weights", "cause"),
    [("missing.safetensors", "no such file"), ("folder", "not a file"), ("text.safetensors", "not a safetensors")],
)
def test_actor_initial_weights_problems_exit_2_naming_the_parameter(processes, tmp_path, weights, cause):
    (tmp_path / "folder").mkdir()
    (tmp_path / "text.safetensors").write_text("not weights\n")
    path = str(tmp_path / weights)
    actor = processes.start_module(
        "so101_hilserl_actor.actor_node", "--ros-args", "-p", f"initial_weights:={path}", name="actor"
    )
    line = refusal_line(actor)
    assert f"parameter initial_weights={path!r}: {cause}" in line, line


def test_a_journal_shorter_than_its_checkpoint_is_refused_unless_accepted(tmp_path):
    """The rule the learner applies once its journal is replayed (its process: test_learner_journal)."""
    run = tmp_path / "run"
    assert check_journal_covers(run, 60, "ckpt-000000045", 60, accept_short=False) is None
    assert check_journal_covers(run, 75, "ckpt-000000045", 60, accept_short=False) is None  # journaled since
    assert check_journal_covers(run, 0, "ckpt-000000045", None, accept_short=False) is None  # counts unknown
    with pytest.raises(ParameterError) as refused:
        check_journal_covers(run, 0, "ckpt-000000045", 60, accept_short=False)
    line = str(refused.value)
    assert line.startswith(f"parameter run_dir={str(run)!r}: the journal {run / 'journal'} yields 0 training ")
    assert "fewer than the 60 its checkpoint ckpt-000000045 counts" in line and "\n" not in line
    assert "restore the journal" in line and "accept_short_journal:=true" in line
    warning = check_journal_covers(run, 15, "ckpt-000000045", 60, accept_short=True)
    assert "yields 15 training transitions, fewer than the 60" in warning and "accept_short_journal: true" in warning
