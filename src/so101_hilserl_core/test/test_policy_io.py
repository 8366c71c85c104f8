"""policy_io: the one policy weights format. Round trips, and every way a file can be refused."""

from __future__ import annotations

import dataclasses
import json
import os

import pytest
import safetensors.torch
import torch

from so101_hilserl_core.policy import Policy, PolicyConfig
from so101_hilserl_core.policy_io import (
    FORMAT_FAMILY,
    POLICY_FORMAT,
    PolicyFormatError,
    config_differences,
    load_policy,
    policy_from_bytes,
    policy_to_bytes,
    save_policy,
    semantic_differences,
    sha256_hex,
)
from so101_hilserl_core.semantics import LEGACY_SEMANTICS, PICK101_SEMANTICS, PROJECT_SEMANTICS

SMALL = PolicyConfig(
    frame_stack=2, image_size=32, state_dim=5, action_dim=4, encoder_channels=8, bottleneck=16, hidden=(32, 32)
)


def _policy(config: PolicyConfig = SMALL, seed: int = 0) -> Policy:
    torch.manual_seed(seed)
    policy = Policy(config)
    with torch.no_grad():  # LayerNorm/bias init is constant; make every tensor distinct so mix-ups show
        for param in policy.parameters():
            param.add_(torch.randn_like(param) * 0.1)
    return policy.eval()


def _file(tensors: dict, config: PolicyConfig = SMALL, fmt: str = POLICY_FORMAT, **extra: str) -> bytes:
    metadata = {"format": fmt, "policy_config": config.to_json(), **extra}
    return safetensors.torch.save({k: v.contiguous() for k, v in tensors.items()}, metadata=metadata)


def _tensors(policy: Policy) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in policy.state_dict().items()}


def test_round_trip_keeps_every_tensor_and_the_config():
    policy = _policy()
    data = policy_to_bytes(policy)
    tensors, config = policy_from_bytes(data, expected=SMALL)
    assert config == SMALL
    assert set(tensors) == set(policy.state_dict())
    assert all(k.startswith(("encoder.", "actor.actor_model.")) for k in tensors)
    for key, value in policy.state_dict().items():
        assert torch.equal(tensors[key], value), key
    metadata = json.loads(data[8 : 8 + int.from_bytes(data[:8], "little")])["__metadata__"]
    assert metadata["format"] == POLICY_FORMAT
    assert PolicyConfig.from_json(metadata["policy_config"]) == SMALL


def test_save_and_load_give_the_same_actions(tmp_path):
    policy = _policy()
    path = tmp_path / "policy.safetensors"
    digest = save_policy(path, policy)
    assert digest == sha256_hex(path.read_bytes())
    loaded = load_policy(path, expected=SMALL)
    assert loaded.config == SMALL and not loaded.training
    pixels = torch.randint(0, 256, (3, SMALL.pixel_channels, SMALL.image_size, SMALL.image_size), dtype=torch.uint8)
    state = torch.randn(3, SMALL.stacked_state_dim)
    assert torch.equal(loaded.act(pixels, state), policy.act(pixels, state))
    save_policy(path, _policy(seed=1))  # replacing works and leaves no temporary files behind
    assert os.listdir(tmp_path) == ["policy.safetensors"]
    assert not torch.equal(load_policy(path).act(pixels, state), policy.act(pixels, state))


def test_default_config_round_trip():
    policy = _policy(PolicyConfig())
    tensors, config = policy_from_bytes(policy_to_bytes(policy))
    assert config == PolicyConfig() and config.feature_dim == 39200
    assert tensors["actor.actor_model.input_preprocess_modules.fused_view_feats.0.weight"].shape == (50, 39200)


def test_expected_config_mismatch_names_every_differing_field():
    data = policy_to_bytes(_policy())
    other = PolicyConfig(
        frame_stack=3, image_size=32, state_dim=5, action_dim=4, encoder_channels=8, bottleneck=16, hidden=(64, 32)
    )
    with pytest.raises(PolicyFormatError) as err:
        policy_from_bytes(data, expected=other)
    message = str(err.value)
    assert "frame_stack: file has 2, expected 3" in message
    assert "hidden: file has (32, 32), expected (64, 32)" in message
    assert "state_dim" not in message


def test_semantics_travel_with_the_file_and_are_not_a_mismatch(tmp_path):
    """A pick-101 policy loaded where the node's config has the project's semantics: the sizes match, so it loads,
    and the config returned is the file's (its semantics are what the actor must apply)."""
    pick101 = dataclasses.replace(SMALL, **PICK101_SEMANTICS)
    policy = _policy(pick101)
    path = tmp_path / "pick101.safetensors"
    save_policy(path, policy)
    assert SMALL.semantics() == PROJECT_SEMANTICS
    loaded = load_policy(path, expected=SMALL)
    assert loaded.config == pick101 and loaded.config.semantics() == PICK101_SEMANTICS
    _, config = policy_from_bytes(path.read_bytes(), expected=SMALL)
    assert config.gripper_action == "absolute" and config.ee_target == "accumulate"
    assert config.orientation == "euler_zyx"
    assert config_differences(config, SMALL) == []
    assert semantic_differences(config, SMALL) == [
        "gripper_action: file has 'absolute', configured 'delta'",
        "ee_target: file has 'accumulate', configured 'reread'",
        "orientation: file has 'euler_zyx', configured 'home_rotvec'",
    ]
    # a size mismatch is still refused, and names only the size field
    with pytest.raises(PolicyFormatError, match=r"differs from the expected network: frame_stack: file has 2"):
        policy_from_bytes(path.read_bytes(), expected=dataclasses.replace(SMALL, frame_stack=3))


def _legacy_json(config: PolicyConfig) -> str:
    data = json.loads(config.to_json())
    for name in ("gripper_action", "ee_target", "orientation"):
        del data[name]
    return json.dumps(data)


def test_files_without_semantics_read_as_what_wrote_them():
    """Written before semantics were recorded: a project policy acted with delta gripper, re-read target and raw
    euler; an imported sim checkpoint (source kind robobase-snapshot or lerobot-drqv2) is pick-101's."""
    tensors = _tensors(_policy())
    legacy = safetensors.torch.save(tensors, metadata={"format": POLICY_FORMAT, "policy_config": _legacy_json(SMALL)})
    assert policy_from_bytes(legacy)[1].semantics() == LEGACY_SEMANTICS
    for kind in ("robobase-snapshot", "lerobot-drqv2"):
        metadata = {"format": POLICY_FORMAT, "policy_config": _legacy_json(SMALL), "source": json.dumps({"kind": kind})}
        data = safetensors.torch.save(tensors, metadata=metadata)
        assert policy_from_bytes(data, expected=SMALL)[1].semantics() == PICK101_SEMANTICS


@pytest.mark.parametrize(
    ("field", "value"), [("gripper_action", "relative"), ("ee_target", "accumulated"), ("orientation", "euler")]
)
def test_unknown_semantics_are_refused_with_the_choices(field, value):
    with pytest.raises(ValueError, match=rf"PolicyConfig\.{field} must be one of .*; got '{value}'"):
        dataclasses.replace(SMALL, **{field: value})
    text = json.dumps({**json.loads(SMALL.to_json()), field: value})
    data = safetensors.torch.save(_tensors(_policy()), metadata={"format": POLICY_FORMAT, "policy_config": text})
    with pytest.raises(PolicyFormatError, match=rf"bad policy_config in metadata: PolicyConfig\.{field} must be"):
        policy_from_bytes(data)


def _critic_like(policy: Policy) -> dict[str, torch.Tensor]:
    """Tensors under critic.* as the learner's agent files hold them (the actor package knows no critic)."""
    return {f"critic.qs.0.{k}": v.clone() for k, v in policy.actor.actor_model.state_dict().items()}


def test_the_policy_part_of_another_project_weights_file_loads(tmp_path):
    policy = _policy()
    tensors = _tensors(policy) | _critic_like(policy)
    path = tmp_path / "agent.safetensors"
    path.write_bytes(_file(tensors, fmt=f"{FORMAT_FAMILY}agent/1", source="{}"))  # the learner's family member
    loaded = load_policy(path, expected=SMALL)
    for key, value in policy.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value)
    tensors["actor.extra.weight"] = torch.zeros(2)  # under the policy's prefixes: the policy part must be exact
    with pytest.raises(PolicyFormatError, match=r"unexpected keys \(1\): actor.extra.weight"):
        policy_from_bytes(_file(tensors, fmt=f"{FORMAT_FAMILY}agent/1"))
    with pytest.raises(
        PolicyFormatError,
        match=r"format is 'someone-else/1', expected so101-hilserl-policy/1 or a so101-hilserl-\* format",
    ):
        policy_from_bytes(_file(_tensors(policy), fmt="someone-else/1"))


def test_critic_keys_in_a_policy_file_are_unexpected():
    policy = _policy()
    critic = _critic_like(policy)
    with pytest.raises(PolicyFormatError, match=rf"unexpected keys \({len(critic)}\): critic\.qs\.0\."):
        policy_from_bytes(_file(_tensors(policy) | critic))


@pytest.mark.parametrize(
    ("metadata", "match"),
    [
        ({"policy_config": SMALL.to_json()}, "no 'format'"),
        ({"format": "so101-hilserl-policy/2", "policy_config": SMALL.to_json()}, "format is 'so101-hilserl-policy/2'"),
        ({"format": POLICY_FORMAT}, "no 'policy_config'"),
        ({"format": POLICY_FORMAT, "policy_config": '{"frame_stack": 3, "colour": 1}'}, "unknown PolicyConfig field"),
        ({"format": POLICY_FORMAT, "policy_config": "{not json"}, "bad policy_config"),
        ({"format": POLICY_FORMAT, "policy_config": '{"frame_stack": 0}'}, "frame_stack must be positive"),
    ],
)
def test_bad_metadata_is_refused(metadata, match):
    data = safetensors.torch.save(_tensors(_policy()), metadata=metadata)
    with pytest.raises(PolicyFormatError, match=match):
        policy_from_bytes(data)


def test_missing_key_is_named():
    tensors = _tensors(_policy())
    del tensors["actor.actor_model.out_mlp.0.bias"]
    with pytest.raises(PolicyFormatError, match=r"missing keys \(1\): actor.actor_model.out_mlp.0.bias"):
        policy_from_bytes(_file(tensors))


def test_shape_mismatch_names_key_and_both_shapes():
    tensors = _tensors(_policy())
    tensors["actor.actor_model.main_mlp.3.weight"] = torch.zeros(32, 31)
    with pytest.raises(PolicyFormatError) as err:
        policy_from_bytes(_file(tensors))
    assert "shape mismatch for actor.actor_model.main_mlp.3.weight: expected (32, 32), found (32, 31)" in str(err.value)


def test_non_finite_values_are_refused_on_read_and_write():
    tensors = _tensors(_policy())
    tensors["encoder.convs_per_cam.0.3.weight"][0, 0, 0, 0] = float("nan")
    tensors["encoder.convs_per_cam.0.3.bias"][1] = float("inf")
    with pytest.raises(PolicyFormatError) as err:
        policy_from_bytes(_file(tensors))
    assert "encoder.convs_per_cam.0.3.weight: 1 non-finite" in str(err.value)
    assert "encoder.convs_per_cam.0.3.bias: 1 non-finite" in str(err.value)
    policy = _policy()
    with torch.no_grad():
        policy.actor.actor_model.out_mlp[0].bias[0] = float("nan")
    with pytest.raises(PolicyFormatError, match="out_mlp.0.bias: 1 non-finite"):
        policy_to_bytes(policy)


def test_wrong_dtype_is_refused():
    tensors = _tensors(_policy())
    tensors["actor.actor_model.out_mlp.0.weight"] = tensors["actor.actor_model.out_mlp.0.weight"].double()
    with pytest.raises(PolicyFormatError, match=r"out_mlp.0.weight: dtype torch.float64, expected torch.float32"):
        policy_from_bytes(_file(tensors))


def test_damaged_bytes_are_refused_clearly(tmp_path):
    data = policy_to_bytes(_policy())
    with pytest.raises(PolicyFormatError, match="truncated safetensors file"):
        policy_from_bytes(data[: len(data) // 2])
    with pytest.raises(PolicyFormatError, match="truncated safetensors file: the header needs"):
        policy_from_bytes(data[:100])
    with pytest.raises(PolicyFormatError, match="shorter than the 8-byte"):
        policy_from_bytes(b"abc")
    with pytest.raises(PolicyFormatError, match="not a safetensors file"):
        policy_from_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00" + b"x" * 32)
    with pytest.raises(PolicyFormatError, match="expected bytes"):
        policy_from_bytes("a string")  # type: ignore[arg-type]
    path = tmp_path / "cut.safetensors"
    path.write_bytes(data[:-1])
    with pytest.raises(PolicyFormatError, match=f"^{path}: truncated"):
        load_policy(path)
    with pytest.raises(FileNotFoundError):
        load_policy(tmp_path / "absent.safetensors")


def test_pickle_files_are_never_unpickled(tmp_path):
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    path = tmp_path / "evil.safetensors"
    torch.save({"x": Payload()}, path)
    with pytest.raises(PolicyFormatError):
        load_policy(path)
    assert not marker.exists()
