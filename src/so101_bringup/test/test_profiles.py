"""The graph's size for the machine: the CPU profile is the benchmark's size, written on top of config/sim.yaml."""

import json

import torch
import yaml

from so101_bringup.graph import GraphOptions, build_graph
from so101_bringup.profiles import PROFILES, choose, write_params
from so101_bringup.runner import sim_profile


def test_auto_is_full_with_a_gpu_and_cpu_without():
    assert choose("auto").name == ("full" if torch.cuda.is_available() else "cpu")


def test_the_cpu_profile_sizes_every_node_alike(tmp_path):
    cpu = PROFILES["cpu"]
    data = yaml.safe_load(write_params(tmp_path / "p.yaml", cpu, {"actor": {"max_steps": 50}}).read_text())
    sim, actor, learner = (data[f"/**/{n}"]["ros__parameters"] for n in ("so101_sim", "actor", "learner"))
    assert (sim["camera_width"], sim["camera_height"], sim["curriculum_stage"]) == (320, 240, 3)
    assert json.loads(actor["network"]) == json.loads(learner["network"]) == cpu.network
    preprocessing = json.loads(actor["preprocessing"])
    assert preprocessing["output_size"] == 64 and preprocessing["source_width"] == 320
    assert learner["batch_size"] == 64 and actor["max_steps"] == 50
    assert actor["evaluation_every_episodes"] == 3 and learner["warmup_transitions"] == 200
    assert sim["operator_pedal"] is True  # everything else is sim.yaml's


def test_the_runner_says_what_it_chose_and_the_graph_takes_its_file(tmp_path, capsys):
    params, checkpoint = sim_profile("full", tmp_path, "")
    line = capsys.readouterr().out.strip()
    assert line.startswith("simulation: full configuration") and "start checkpoint none" in line
    assert checkpoint == ""
    specs = build_graph(GraphOptions(mode="sim", params_file=params, run_dir=str(tmp_path)))
    assert any(spec.name == "actor" for spec in specs)
