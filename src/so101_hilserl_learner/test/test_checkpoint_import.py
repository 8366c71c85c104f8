"""Importing RoboBase snapshots and LeRobot directories, the agent format, and the checkpoint_tool CLI.

The RoboBase snapshots are built here to RoboBase's snapshot layout: a torch.save dict with
counters, the 98-key agent state dict (with the actor_model.* alias and six hidden_state buffers) and a cfg pickled
as OmegaConf's classes (stand-ins registered under omegaconf.* module names only while saving, laid out like
OmegaConf 2.3's pickles: NEWOBJ + BUILD of __dict__, ContainerMetadata with typing.Any and a defaultdict)."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import types
import typing
from collections import OrderedDict, defaultdict
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import safetensors.torch
import torch

from so101_hilserl_core import exploration
from so101_hilserl_core.action_mapping import PolicyActionMapper, absolute_gripper_position
from so101_hilserl_core.observation import StateBuilder
from so101_hilserl_core.policy import Policy, PolicyConfig
from so101_hilserl_core.policy_io import load_policy
from so101_hilserl_core.semantics import PICK101_SEMANTICS, PROJECT_SEMANTICS
from so101_hilserl_learner.agent import AgentConfig, DrQV2Agent
from so101_hilserl_learner.checkpoint import save_checkpoint
from so101_hilserl_learner.critic import Critic
from so101_hilserl_learner.weight_files.checkpoint_import import (
    AGENT_FORMAT,
    CheckpointImportError,
    import_lerobot,
    import_robobase,
    import_robobase_with_source,
    infer_policy_config,
    load_agent_weights,
    save_agent_weights,
)
from so101_hilserl_learner.weight_files.checkpoint_tool import main

SMALL = PolicyConfig(
    frame_stack=2, image_size=32, state_dim=5, action_dim=3, encoder_channels=8, bottleneck=16, hidden=(32, 24)
)
SMALL_PICK101 = replace(SMALL, **PICK101_SEMANTICS)  # what an import of SMALL's weights is marked with


# ------------------------------------------------------------------ OmegaConf look-alikes, only for writing files


class Metadata:
    __module__ = "omegaconf.base"

    def __init__(self, **fields):
        self.__dict__.update(fields)


class ContainerMetadata(Metadata):
    __module__ = "omegaconf.base"


class AnyNode:
    __module__ = "omegaconf.nodes"


class DictConfig:
    __module__ = "omegaconf.dictconfig"


class ListConfig:
    __module__ = "omegaconf.listconfig"


_FAKE_MODULES = {
    "omegaconf": [],
    "omegaconf.base": [Metadata, ContainerMetadata],
    "omegaconf.nodes": [AnyNode],
    "omegaconf.dictconfig": [DictConfig],
    "omegaconf.listconfig": [ListConfig],
}


@contextlib.contextmanager
def omegaconf_registered():
    """Make pickle find the look-alikes under omegaconf.* while a file is written; removed again afterwards, so the
    importer below runs in a process without any omegaconf."""
    saved = {name: sys.modules.get(name) for name in _FAKE_MODULES}
    for name, classes in _FAKE_MODULES.items():
        module = types.ModuleType(name)
        for cls in classes:
            setattr(module, cls.__name__, cls)
        sys.modules[name] = module
    try:
        yield
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module


def to_omegaconf(value, parent=None, key=None):
    common = {"optional": True, "key": key, "flags": {}, "flags_root": False, "resolver_cache": defaultdict(dict)}
    if isinstance(value, dict):
        node = DictConfig()
        node._metadata = ContainerMetadata(
            ref_type=typing.Any, object_type=dict, key_type=typing.Any, element_type=typing.Any, **common
        )
        node._parent = parent
        node._content = {k: to_omegaconf(v, node, k) for k, v in value.items()}
    elif isinstance(value, list):
        node = ListConfig()
        node._metadata = ContainerMetadata(
            ref_type=typing.Any, object_type=list, key_type=int, element_type=typing.Any, **common
        )
        node._parent = parent
        node._content = [to_omegaconf(v, node, i) for i, v in enumerate(value)]
    else:
        node = AnyNode()
        node._metadata = Metadata(ref_type=typing.Any, object_type=None, **common)
        node._parent = parent
        node._val = value
    return node


def robobase_cfg(config: PolicyConfig, **overrides) -> dict:
    cfg = {
        "frame_stack": config.frame_stack,
        "visual_observation_shape": [config.image_size, config.image_size],
        "action_sequence": 1,
        "batch_size": 256,
        "num_explore_steps": 2000,
        "replay": {"gamma": 0.99, "nstep": 3, "size": 100000},
        "method": {
            "stddev_schedule": "linear(1.0,0.1,500000)",
            "stddev_clip": 0.3,
            "critic_target_tau": 0.01,
            "actor_lr": 1e-4,
            "critic_lr": 1e-4,
            "num_critics": 2,
            "num_explore_steps": "${num_explore_steps}",
            "encoder_model": {
                "channels": config.encoder_channels,
                "num_downsample_convs": 1,
                "num_post_downsample_convs": config.encoder_convs - 1,
                "kernel_size": 3,
            },
            "actor_model": {"bottleneck_size": config.bottleneck, "mlp_nodes": list(config.hidden)},
            "critic_model": {"bottleneck_size": config.bottleneck, "mlp_nodes": list(config.hidden)},
        },
    }
    for dotted, value in overrides.items():
        node = cfg
        *parents, last = dotted.split(".")
        for part in parents:
            node = node[part]
        node[last] = value
    return cfg


def networks(config: PolicyConfig, seed: int = 0) -> dict[str, torch.Tensor]:
    """Agent-layout tensors with the networks' keys and shapes, every tensor random so that mix-ups cannot hide."""
    generator = torch.Generator().manual_seed(seed)
    with torch.device("meta"):  # only the keys and shapes are taken from the modules
        modules = {"": Policy(config), "critic.": Critic(config), "critic_target.": Critic(config)}
    out = {}
    for prefix, module in modules.items():
        for key, value in module.state_dict().items():
            out[prefix + key] = 0.1 * torch.randn(value.shape, generator=generator)
    return out


def robobase_agent(tensors: dict[str, torch.Tensor]) -> OrderedDict:
    """RoboBase's DrQV2.state_dict(): actor_model.* registered twice (sharing storage) and RNN hidden states."""
    agent = OrderedDict()
    for key, value in tensors.items():
        if key.startswith("encoder."):
            agent[key] = value
    for key, value in tensors.items():
        if key.startswith("actor.actor_model."):
            agent[key[len("actor.") :]] = value
    agent["actor_model.hidden_state"] = torch.zeros(1, 1, 128)
    for key, value in tensors.items():
        if key.startswith("actor."):
            agent[key] = value  # the same tensor object: torch.save stores one shared storage, like RoboBase's alias
    agent["actor.actor_model.hidden_state"] = agent["actor_model.hidden_state"]
    for name in ("critic", "critic_target"):
        for key, value in tensors.items():
            if key.startswith(name + ".qs."):
                agent[key] = value
        for index in range(2):
            agent[f"{name}.qs.{index}.hidden_state"] = torch.zeros(1, 1, 128)
    return agent


def write_snapshot(path: Path, agent, cfg: dict | None, **extra) -> Path:
    payload = {"_pretrain_step": 0, "_main_loop_iterations": 12345, "_global_env_episode": 678, "agent": agent}
    payload.update(extra)
    with omegaconf_registered():
        if cfg is not None:
            payload["cfg"] = to_omegaconf(cfg)
        torch.save(payload, path)
    return path


def assert_agent_equal(imported: dict[str, torch.Tensor], original: dict[str, torch.Tensor]) -> None:
    assert set(imported) == set(original)
    for key, value in original.items():
        assert imported[key].dtype == torch.float32
        assert torch.equal(imported[key], value), key


@pytest.fixture(scope="module")
def small_snapshot(tmp_path_factory) -> tuple[Path, dict[str, torch.Tensor]]:
    tensors = networks(SMALL)
    path = tmp_path_factory.mktemp("snap") / "latest_snapshot.pt"
    return write_snapshot(path, robobase_agent(tensors), robobase_cfg(SMALL)), tensors


# ----------------------------------------------------------------------------------------------- RoboBase


def test_full_size_robobase_snapshot_imports_exactly(tmp_path):
    config = PolicyConfig()  # RoboBase's SO-101 run: 9x84x84 pixels, 54 state values, 39200 features
    tensors = networks(config)
    agent = robobase_agent(tensors)
    assert len(agent) == 98 and sum("hidden_state" in k for k in agent) == 6
    path = write_snapshot(tmp_path / "best_snapshot.pt", agent, robobase_cfg(config), best_eval_reward=np.float64(7.25))
    assert "omegaconf" not in sys.modules
    imported, inferred, training, source = import_robobase_with_source(path)
    # pick-101's sizes, and its semantics: absolute gripper, accumulated EE target, raw euler state
    assert inferred == replace(config, **PICK101_SEMANTICS) and inferred.feature_dim == 39200
    assert (inferred.gripper_action, inferred.ee_target, inferred.orientation) == (
        "absolute",
        "accumulate",
        "euler_zyx",
    )
    assert len(imported) == 78
    assert_agent_equal(imported, tensors)
    assert training == {
        "stddev_schedule": "linear(1.0,0.1,500000)",
        "stddev_clip": 0.3,
        "critic_target_tau": 0.01,
        "discount": 0.99,
        "nstep": 3,
        "actor_lr": 1e-4,
        "critic_lr": 1e-4,
        "num_critics": 2,
        "num_explore_steps": 2000,  # through the ${num_explore_steps} interpolation
        "batch_size": 256,
        "replay_size": 100000,
    }
    assert source["best_eval_reward"] == 7.25 and source["main_loop_iterations"] == 12345
    assert source["kind"] == "robobase-snapshot" and len(source["sha256"]) == 64


def test_config_is_inferred_from_shapes_alone(tmp_path):
    config = PolicyConfig(
        frame_stack=1, image_size=64, state_dim=7, action_dim=2, encoder_channels=4, encoder_convs=3, bottleneck=8,
        hidden=(16,),
    )  # fmt: skip
    tensors = networks(config)
    path = write_snapshot(tmp_path / "s.pt", robobase_agent(tensors), cfg=None)
    imported, inferred, training = import_robobase(path)
    assert inferred == replace(config, **PICK101_SEMANTICS)
    assert training == {"num_critics": 2}
    assert_agent_equal(imported, tensors)
    assert infer_policy_config(tensors, image_size=63).image_size == 63  # 63 and 64 give the same feature map


def test_imported_agent_round_trips_and_serves_the_actor(small_snapshot, tmp_path):
    path, tensors = small_snapshot
    imported, config, training, source = import_robobase_with_source(path)
    out = tmp_path / "agent.safetensors"
    digest = save_agent_weights(out, imported, config, source, training)
    loaded, loaded_config, metadata = load_agent_weights(out)
    assert loaded_config == SMALL_PICK101  # the semantics travel in the file
    assert_agent_equal(loaded, tensors)
    assert metadata["format"] == AGENT_FORMAT
    assert json.loads(metadata["training"])["nstep"] == 3
    assert json.loads(metadata["source"])["file"] == "latest_snapshot.pt"
    assert len(digest) == 64
    policy = load_policy(out, expected=SMALL)  # a node configured with the project's semantics: sizes match
    assert policy.config == SMALL_PICK101
    reference = Policy(SMALL)
    reference.load_state_dict({k: v for k, v in tensors.items() if k.startswith(("encoder.", "actor."))})
    pixels = torch.randint(0, 256, (2, SMALL.pixel_channels, 32, 32), dtype=torch.uint8)
    state = torch.randn(2, SMALL.stacked_state_dim)
    assert torch.equal(policy.act(pixels, state), reference.act(pixels, state))


def test_malicious_pickle_is_refused_and_nothing_runs(tmp_path):
    marker = tmp_path / "side_effect"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    class EvalPayload:
        def __reduce__(self):
            return (eval, (f"open({str(marker)!r}, 'w')",))

    agent = robobase_agent(networks(SMALL))
    for name, payload, global_name in (("os", Payload(), "posix.system"), ("eval", EvalPayload(), "builtins.eval")):
        path = tmp_path / f"{name}.pt"
        torch.save({"agent": agent, "cfg": payload}, path)
        with pytest.raises(CheckpointImportError) as err:
            import_robobase(path)
        assert global_name in str(err.value)
        assert "nothing from the file was executed" in str(err.value)
        assert not marker.exists()


def test_damaged_files_give_clear_errors(small_snapshot, tmp_path):
    data = small_snapshot[0].read_bytes()
    cases = {
        "truncated.pt": data[: len(data) // 2],
        "tail_cut.pt": data[:-100],
        "garbage.pt": bytes(range(256)) * 40,
        "empty.pt": b"",
    }
    for name, content in cases.items():
        path = tmp_path / name
        path.write_bytes(content)
        with pytest.raises(CheckpointImportError, match="truncated or corrupt") as err:
            import_robobase(path)
        assert str(path) in str(err.value), name
    with pytest.raises(CheckpointImportError, match="no such file"):
        import_robobase(tmp_path / "absent.pt")


def test_shape_mismatch_names_key_and_both_shapes(tmp_path):
    tensors = networks(SMALL)
    tensors["critic.qs.1.main_mlp.0.weight"] = torch.zeros(32, 36)  # expected 16 + 16 + 3 = 35 inputs
    path = write_snapshot(tmp_path / "s.pt", robobase_agent(tensors), robobase_cfg(SMALL))
    with pytest.raises(CheckpointImportError) as err:
        import_robobase(path)
    assert "shape mismatch for critic.qs.1.main_mlp.0.weight: expected (32, 35), found (32, 36)" in str(err.value)


def test_missing_and_unexpected_keys_are_listed(tmp_path):
    agent = robobase_agent(networks(SMALL))
    del agent["critic_target.qs.1.out_mlp.0.bias"]
    path = write_snapshot(tmp_path / "missing.pt", agent, robobase_cfg(SMALL))
    with pytest.raises(CheckpointImportError, match=r"missing keys \(1\): critic_target.qs.1.out_mlp.0.bias"):
        import_robobase(path)
    agent = robobase_agent(networks(SMALL))
    agent["intrinsic_reward_module.weight"] = torch.zeros(3)
    path = write_snapshot(tmp_path / "extra.pt", agent, robobase_cfg(SMALL))
    with pytest.raises(CheckpointImportError, match=r"unexpected keys \(1\): intrinsic_reward_module.weight"):
        import_robobase(path)


def test_diverging_alias_is_refused(tmp_path):
    agent = robobase_agent(networks(SMALL))
    agent["actor_model.out_mlp.0.bias"] = agent["actor_model.out_mlp.0.bias"] + 1.0
    path = write_snapshot(tmp_path / "s.pt", agent, robobase_cfg(SMALL))
    with pytest.raises(CheckpointImportError, match="actor_model.out_mlp.0.bias and actor.actor_model.out_mlp.0.bias"):
        import_robobase(path)


def test_cfg_that_disagrees_with_the_weights_is_refused(tmp_path):
    agent = robobase_agent(networks(SMALL))
    cfg = robobase_cfg(SMALL, frame_stack=3, **{"method.actor_model.mlp_nodes": [64, 64]})
    path = write_snapshot(tmp_path / "s.pt", agent, cfg)
    with pytest.raises(CheckpointImportError) as err:
        import_robobase(path)
    assert "frame_stack: the snapshot's cfg says 3, the weights have 2" in str(err.value)
    assert "hidden: the snapshot's cfg says (64, 64), the weights have (32, 24)" in str(err.value)
    path = write_snapshot(tmp_path / "seq.pt", agent, robobase_cfg(SMALL, action_sequence=4))
    with pytest.raises(CheckpointImportError, match="action_sequence is 4"):
        import_robobase(path)


# ------------------------------------------------------------------------------------------------ LeRobot


def write_lerobot(directory: Path, tensors: dict[str, torch.Tensor], config: PolicyConfig, **overrides) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    lerobot_config = {
        "type": "drqv2",
        "frame_stack": config.frame_stack,
        "encoder_channels": config.encoder_channels,
        "num_downsample_convs": 1,
        "num_post_downsample_convs": config.encoder_convs - 1,
        "encoder_kernel_size": 3,
        "bottleneck_size": config.bottleneck,
        "mlp_nodes": list(config.hidden),
        "num_critics": 2,
        "stddev_schedule": "linear(0.2,0.1,10000)",
        "stddev_clip": 0.3,
        "discount": 0.99,
        "critic_target_tau": 0.01,
        "input_features": {
            "observation.images.gripper_cam": {"type": "VISUAL", "shape": [config.pixel_channels, 32, 32]},
            "observation.state": {"type": "STATE", "shape": [config.stacked_state_dim]},
        },
        "output_features": {"action": {"type": "ACTION", "shape": [config.action_dim]}},
    }
    lerobot_config.update(overrides)
    (directory / "config.json").write_text(json.dumps(lerobot_config))
    weights = {k: v.contiguous() for k, v in tensors.items()}
    weights["log_alpha"] = torch.zeros(1)
    safetensors.torch.save_file(weights, directory / "model.safetensors")
    return directory


def test_lerobot_directory_imports_exactly(tmp_path):
    tensors = networks(SMALL)
    # LeRobot registers the critic twice (critic_ensemble); a file may carry either name.
    renamed = {
        k.replace("critic.", "critic_ensemble.", 1) if k.startswith("critic.") else k: v for k, v in tensors.items()
    }
    directory = write_lerobot(tmp_path / "pretrained_model", renamed, SMALL)
    imported, config, training = import_lerobot(directory)
    assert config == SMALL_PICK101  # the seed's drqv2 directories are conversions of pick-101 snapshots
    assert_agent_equal(imported, tensors)
    assert training == {
        "stddev_schedule": "linear(0.2,0.1,10000)",
        "stddev_clip": 0.3,
        "discount": 0.99,
        "critic_target_tau": 0.01,
        "num_critics": 2,
        "nstep": 1,
    }


def test_lerobot_errors_are_clear(tmp_path):
    tensors = networks(SMALL)
    with pytest.raises(CheckpointImportError, match="not a directory"):
        import_lerobot(tmp_path / "absent")
    directory = write_lerobot(tmp_path / "no_weights", tensors, SMALL)
    (directory / "model.safetensors").unlink()
    with pytest.raises(CheckpointImportError, match="missing model.safetensors"):
        import_lerobot(directory)
    directory = write_lerobot(tmp_path / "sac", tensors, SMALL, type="sac")
    with pytest.raises(CheckpointImportError, match="type is 'sac', expected 'drqv2'"):
        import_lerobot(directory)
    directory = write_lerobot(tmp_path / "disagree", tensors, SMALL, bottleneck_size=50, frame_stack=3)
    with pytest.raises(CheckpointImportError) as err:
        import_lerobot(directory)
    assert "bottleneck: config.json says 50, the weights have 16" in str(err.value)
    assert "frame_stack: config.json says 3, the weights have 2" in str(err.value)
    directory = write_lerobot(tmp_path / "state", tensors, SMALL, input_features={"observation.state": {"shape": [54]}})
    with pytest.raises(
        CheckpointImportError, match=r"observation.state: config.json says \[54\], the weights have \[10\]"
    ):
        import_lerobot(directory)
    directory = write_lerobot(tmp_path / "cut", tensors, SMALL)
    data = (directory / "model.safetensors").read_bytes()
    (directory / "model.safetensors").write_bytes(data[: len(data) - 10])
    with pytest.raises(CheckpointImportError, match="truncated safetensors file"):
        import_lerobot(directory)


def test_agent_file_validation(tmp_path):
    tensors = networks(SMALL)
    out = tmp_path / "agent.safetensors"
    broken = dict(tensors)
    broken["critic_target.qs.0.out_mlp.0.weight"] = torch.full((1, 24), float("nan"))
    with pytest.raises(CheckpointImportError, match="critic_target.qs.0.out_mlp.0.weight: 24 non-finite"):
        save_agent_weights(out, broken, SMALL, "test")
    assert not out.exists()
    save_agent_weights(out, tensors, SMALL, {"kind": "test"})
    safetensors.torch.save_file(tensors, tmp_path / "plain.safetensors", metadata={"format": "something-else/1"})
    with pytest.raises(CheckpointImportError, match="format is 'something-else/1'"):
        load_agent_weights(tmp_path / "plain.safetensors")


# ---------------------------------------------------------------------------------------------------- CLI


def run_tool(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "so101_hilserl_learner.weight_files.checkpoint_tool", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_import_inspect_and_errors(small_snapshot, tmp_path, capsys):
    """Subprocesses for the real entry point; main() in-process for the rest (a Python start costs seconds here)."""
    snapshot, tensors = small_snapshot
    result = run_tool("--help")
    assert result.returncode == 0 and all(c in result.stdout for c in ("import-robobase", "import-lerobot", "inspect"))

    out = tmp_path / "agent.safetensors"
    result = run_tool("import-robobase", snapshot, "-o", out)
    assert result.returncode == 0, result.stderr
    assert f"wrote {out}" in result.stdout and '"frame_stack": 2' in result.stdout
    assert_agent_equal(load_agent_weights(out)[0], tensors)

    assert main(["import-robobase", str(snapshot), "-o", str(out)]) == 2
    assert "--force" in capsys.readouterr().err
    assert main(["import-robobase", str(snapshot), "-o", str(out), "--force"]) == 0

    assert main(["inspect", str(out)]) == 0
    stdout = capsys.readouterr().out
    assert f"format: {AGENT_FORMAT}" in stdout
    assert "actor.actor_model.out_mlp.0.weight [3, 24] F32" in stdout and "valid: yes" in stdout

    result = run_tool("inspect", snapshot)
    assert result.returncode == 0, result.stderr
    assert "nothing executed" in result.stdout and "_main_loop_iterations: 12345" in result.stdout
    assert "actor_model.hidden_state [1, 1, 128] float32" in result.stdout and "importable: yes" in result.stdout

    directory = write_lerobot(tmp_path / "lerobot", tensors, SMALL)
    assert main(["import-lerobot", str(directory), "-o", str(tmp_path / "from_lerobot.safetensors")]) == 0
    assert_agent_equal(load_agent_weights(tmp_path / "from_lerobot.safetensors")[0], tensors)


def test_cli_refuses_bad_input_with_one_line(small_snapshot, tmp_path, capsys):
    marker = tmp_path / "side_effect"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    evil = tmp_path / "evil.pt"
    torch.save({"agent": {}, "cfg": Payload()}, evil)
    cut = tmp_path / "cut.pt"
    cut.write_bytes(small_snapshot[0].read_bytes()[:5000])
    result = run_tool("inspect", evil)
    assert result.returncode == 2 and "posix.system" in result.stderr and "Traceback" not in result.stderr
    assert [line for line in result.stderr.splitlines() if line.startswith("error:")] == result.stderr.splitlines()
    for args, expected in (
        (("import-robobase", evil, "-o", tmp_path / "x.safetensors"), "nothing from the file was executed"),
        (("import-robobase", cut, "-o", tmp_path / "y.safetensors"), "truncated or corrupt"),
        (("import-lerobot", tmp_path, "-o", tmp_path / "z.safetensors"), "missing config.json"),
        (("inspect", tmp_path / "absent.safetensors"), "no such file"),
    ):
        assert main([str(a) for a in args]) == 2, args
        stderr = capsys.readouterr().err
        assert expected in stderr, (args, stderr)
        assert stderr.startswith("error: ") and stderr.count("\n") == 1, stderr
    with pytest.raises(SystemExit) as exit_info:  # usage errors exit 2 too
        main([])
    assert exit_info.value.code == 2 and "required" in capsys.readouterr().err
    assert not marker.exists()
    assert not any((tmp_path / name).exists() for name in ("x.safetensors", "y.safetensors", "z.safetensors"))


# ------------------------------------------------------------------------------------- semantics and export


def test_import_semantics_can_be_stated(small_snapshot, tmp_path, capsys):
    path, _ = small_snapshot
    _, config, _ = import_robobase(path, {"gripper_action": "delta"})
    assert config.semantics() == {**PICK101_SEMANTICS, "gripper_action": "delta"}
    with pytest.raises(CheckpointImportError, match="PolicyConfig.orientation must be one of home_rotvec, euler_zyx"):
        import_robobase(path, {"orientation": "quaternion"})
    out = tmp_path / "agent.safetensors"
    assert main(["import-robobase", str(path), "-o", str(out), "--ee-target", "reread"]) == 0
    assert "semantics: gripper_action absolute, ee_target reread, orientation euler_zyx" in capsys.readouterr().out
    assert load_agent_weights(out)[1].semantics() == {**PICK101_SEMANTICS, "ee_target": "reread"}
    with pytest.raises(SystemExit) as exit_info:
        main(["import-robobase", str(path), "-o", str(out), "--force", "--gripper-action", "relative"])
    assert exit_info.value.code == 2 and "invalid choice: 'relative'" in capsys.readouterr().err


def _agent(config: PolicyConfig, seed: int = 0) -> DrQV2Agent:
    torch.manual_seed(seed)
    agent = DrQV2Agent(config, AgentConfig(seed=seed))
    with torch.no_grad():  # distinct values everywhere, so a mixed-up tensor shows
        for name in ("encoder", "actor", "critic", "critic_target"):
            for param in getattr(agent, name).parameters():
                param.add_(torch.randn_like(param) * 0.05)
    return agent


def _learner_checkpoint(directory: Path, agent: DrQV2Agent, updates: int, explore: dict | None) -> Path:
    """A checkpoint laid out as LearnerNode._checkpoint writes it, through the learner's own save_checkpoint."""
    state = {
        "agent": agent.state_dict(),
        "policy_config": agent.policy_config.to_json(),
        "counters": {"updates": updates, "weights_version": 3, "training_transitions": 650},
        "learner_epoch": "abc123:1700000000000000000",
        "run_id": "abc123",
    }
    if explore is not None:
        state["exploration"] = explore
    return save_checkpoint(directory / "checkpoints", updates, state)


@pytest.mark.parametrize("semantics", [PROJECT_SEMANTICS, PICK101_SEMANTICS], ids=["project", "pick101"])
def test_export_turns_a_learner_checkpoint_into_the_same_policy(tmp_path, semantics):
    config = replace(SMALL, **semantics)
    run_dir = tmp_path / "run"
    _learner_checkpoint(run_dir, _agent(config, seed=1), 100, None)  # older: LATEST moves past it
    agent = _agent(config, seed=2)
    explore = {"stddev_schedule": "linear(0.3,0.1,5000)", "environment_steps": 700, "start_steps": 0}
    newest = _learner_checkpoint(run_dir, agent, 250, explore)
    leftover = run_dir / "checkpoints" / ".tmp-999-300"  # a learner writing its next checkpoint right now
    leftover.mkdir()
    out = tmp_path / "agent.safetensors"
    result = run_tool("export", run_dir, "-o", out)
    assert result.returncode == 0, result.stderr
    assert leftover.is_dir()  # export only reads: it leaves a running learner's files alone
    assert f"wrote {out}" in result.stdout and newest.name in result.stdout

    tensors, loaded_config, metadata = load_agent_weights(out)
    assert loaded_config == config  # the run's semantics, kept
    assert_agent_equal(tensors, {k: v.cpu() for k, v in agent.weights().items()})
    assert exploration.from_metadata(metadata) == ("linear(0.3,0.1,5000)", 700)
    source = json.loads(metadata["source"])
    assert source["kind"] == "learner-checkpoint" and source["updates"] == 250 and source["run_dir"] == "run"
    assert source["run_id"] == "abc123"
    # what the actor would run from this file acts exactly as the learner's policy did
    policy, reference = load_policy(out, expected=SMALL), agent.policy()
    assert policy.config == config
    pixels = torch.randint(0, 256, (4, SMALL.pixel_channels, SMALL.image_size, SMALL.image_size), dtype=torch.uint8)
    state = torch.randn(4, SMALL.stacked_state_dim)
    assert torch.equal(policy.act(pixels, state), reference.act(pixels, state))
    # one ckpt-N directory exports too; a checkpoint without an exploration record carries none
    older = sorted((run_dir / "checkpoints").glob("ckpt-*"))[0]
    assert main(["export", str(older), "-o", str(tmp_path / "older.safetensors")]) == 0
    older_metadata = load_agent_weights(tmp_path / "older.safetensors")[2]
    assert exploration.from_metadata(older_metadata) == (None, 0)
    assert json.loads(older_metadata["source"])["updates"] == 100


def test_export_refuses_bad_input_with_one_line(tmp_path, capsys):
    empty = tmp_path / "empty_run"
    empty.mkdir()
    out = tmp_path / "agent.safetensors"
    assert main(["export", str(empty), "-o", str(out)]) == 2
    assert "no learner checkpoint" in capsys.readouterr().err
    assert main(["export", str(tmp_path / "absent"), "-o", str(out)]) == 2
    assert "not a directory" in capsys.readouterr().err
    run_dir = tmp_path / "run"
    ckpt = _learner_checkpoint(run_dir, _agent(SMALL), 10, None)
    (ckpt / "state.safetensors").write_bytes(b"\x00" * 10)  # damaged, and the only one
    assert main(["export", str(run_dir), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no readable checkpoint") and len(err.splitlines()) == 1
    assert not out.exists()
    _learner_checkpoint(run_dir, _agent(SMALL), 20, None)
    assert main(["export", str(run_dir), "-o", str(out)]) == 0
    assert main(["export", str(run_dir), "-o", str(out)]) == 2  # no silent overwrite
    assert "--force" in capsys.readouterr().err


def test_both_semantics_travel_through_files_to_the_robot(small_snapshot, tmp_path):
    """An imported pick-101 snapshot and an exported project checkpoint, loaded by a node configured with the
    project's defaults: each file's semantics decide the action mapping and the state, not the node's."""
    from so101_driver.model.kinematics import HOME_SEED, Kinematics

    snapshot, _ = small_snapshot
    imported = tmp_path / "pick101.safetensors"
    assert main(["import-robobase", str(snapshot), "-o", str(imported)]) == 0
    run_dir = tmp_path / "run"
    _learner_checkpoint(run_dir, _agent(SMALL), 5, None)
    exported = tmp_path / "project.safetensors"
    assert main(["export", str(run_dir), "-o", str(exported)]) == 0

    kin = Kinematics()
    home = HOME_SEED.copy()
    home[5] = 0.5  # jaw half open (rad)
    hold = np.zeros(4)
    results = {}
    for name, path in (("pick101", imported), ("project", exported)):
        config = load_policy(path, expected=SMALL).config
        mapper = PolicyActionMapper(kin, config)
        mapper.reset(home)
        state = StateBuilder(kin, orientation=config.orientation).build(home)
        results[name] = (mapper.to_joints(hold, home), state[15:18])
    pick_target, pick_orientation = results["pick101"]
    project_target, project_orientation = results["project"]
    # gripper 0: the pick-101 policy asks for the middle of its range (clamped to the robot's per-step limit from
    # 0.5 rad), the project's holds the jaw where it is
    assert pick_target[5] == pytest.approx(min(absolute_gripper_position(0.0), 0.5 + 0.3))
    assert project_target[5] == 0.5
    # orientation at home: raw euler roll at +-pi for pick-101, ~0 for the project's policies
    assert abs(abs(pick_orientation[0]) - np.pi) < 1e-3
    np.testing.assert_allclose(project_orientation, 0.0, atol=1e-6)
