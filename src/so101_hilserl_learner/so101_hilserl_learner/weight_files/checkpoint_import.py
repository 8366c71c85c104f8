"""Importers into the learner's agent file (agent_file.py): RoboBase snapshots, LeRobot drqv2 directories, and the
project's own learner checkpoints.

Sim-pretrained DrQ-v2 weights exist as RoboBase snapshots (torch.save pickles holding an OmegaConf config, read by
safe_unpickle.py without running code from them) and as LeRobot conversions; both become one safetensors agent file.
Imports are marked with pick-101's semantics (so101_hilserl_core.semantics), how they were trained, unless told
otherwise; ``import_learner_checkpoint`` keeps a project checkpoint's semantics and exploration schedule.
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from so101_hilserl_core.policy import PolicyConfig
from so101_hilserl_core.policy_io import PolicyFormatError, read_safetensors, sha256_hex
from so101_hilserl_core.semantics import PICK101_SEMANTICS, SEMANTIC_FIELDS
from so101_hilserl_learner.weight_files.agent_file import (
    AGENT_FORMAT,
    CheckpointImportError,
    expected_agent_shapes,
    import_learner_checkpoint,
    load_agent_weights,
    save_agent_weights,
    verify_agent_tensors,
)
from so101_hilserl_learner.weight_files.safe_unpickle import _MISSING, cfg_get, plain, safe_load_snapshot

__all__ = [
    "AGENT_FORMAT",
    "CheckpointImportError",
    "expected_agent_shapes",
    "import_learner_checkpoint",
    "import_lerobot",
    "import_lerobot_with_source",
    "import_robobase",
    "import_robobase_with_source",
    "infer_policy_config",
    "load_agent_weights",
    "safe_load_snapshot",
    "save_agent_weights",
    "verify_agent_tensors",
]

IMAGE_CHANNELS_PER_FRAME = 3  # RGB; RoboBase stacks frames on the channel axis
_KEY_PREFIXES = ("encoder.", "actor.actor_model.", "critic.qs.", "critic_target.qs.")
_FUSED = "actor.actor_model.input_preprocess_modules.fused_view_feats.0.weight"
_LOW_DIM = "actor.actor_model.input_preprocess_modules.low_dim_obs.0.weight"
_OUT = "actor.actor_model.out_mlp.0.weight"
_CONV0 = "encoder.convs_per_cam.0.0.weight"


# ------------------------------------------------------------------------------------------ config inference


def _conv_indices(tensors: dict[str, torch.Tensor]) -> list[int]:
    pattern = re.compile(r"encoder\.convs_per_cam\.0\.(\d+)\.weight$")
    return sorted(int(m.group(1)) for key in tensors if (m := pattern.match(key)))


def _mlp_widths(tensors: dict[str, torch.Tensor], prefix: str) -> list[int]:
    pattern = re.compile(re.escape(prefix) + r"main_mlp\.(\d+)\.weight$")
    layers = sorted((int(m.group(1)), key) for key in tensors if (m := pattern.match(key)))
    return [int(tensors[key].shape[0]) for _, key in layers]


def _require(tensors: dict[str, torch.Tensor], key: str, ndim: int) -> torch.Tensor:
    if key not in tensors:
        raise CheckpointImportError(f"missing key {key} (needed to infer the network sizes)")
    tensor = tensors[key]
    if tensor.ndim != ndim:
        raise CheckpointImportError(f"{key}: expected a {ndim}-D tensor, found shape {tuple(tensor.shape)}")
    return tensor


def infer_policy_config(tensors: dict[str, torch.Tensor], image_size: int | None = None) -> PolicyConfig:
    """PolicyConfig from weight shapes (agent key layout). image_size picks between the two sizes that give the
    same feature map (e.g. 83 and 84); without it 84, RoboBase's default, or the even one."""
    if any(key.startswith("encoder.convs_per_cam.1.") for key in tensors):
        raise CheckpointImportError(
            "the encoder has more than one camera (encoder.convs_per_cam.1.*); one is supported"
        )
    conv0 = _require(tensors, _CONV0, 4)
    channels, pixel_channels, kh, kw = (int(v) for v in conv0.shape)
    if (kh, kw) != (3, 3):
        raise CheckpointImportError(f"{_CONV0}: kernel {kh}x{kw}, only 3x3 is supported")
    if pixel_channels % IMAGE_CHANNELS_PER_FRAME:
        raise CheckpointImportError(
            f"{_CONV0}: {pixel_channels} input channels is not a multiple of {IMAGE_CHANNELS_PER_FRAME} (RGB frames)"
        )
    frame_stack = pixel_channels // IMAGE_CHANNELS_PER_FRAME
    convs = _conv_indices(tensors)
    if convs != [3 * i for i in range(len(convs))]:
        raise CheckpointImportError(f"encoder conv indices {convs}, expected 0, 3, 6, ...")
    fused = _require(tensors, _FUSED, 2)
    bottleneck, feature_dim = (int(v) for v in fused.shape)
    side = math.isqrt(feature_dim // channels) if feature_dim % channels == 0 else -1
    if side <= 0 or channels * side * side != feature_dim:
        raise CheckpointImportError(
            f"{_FUSED}: {feature_dim} input features is not {channels} channels times a square feature map"
        )
    first = side + 2 * (len(convs) - 1)  # size after the stride-2 conv
    candidates = [size for size in (2 * first + 1, 2 * first + 2) if (size - 3) // 2 + 1 == first]
    for preferred in (image_size, PolicyConfig.image_size, candidates[-1]):
        if preferred in candidates:
            size = preferred
            break
    state_dim = 0
    if _LOW_DIM in tensors:
        stacked = int(_require(tensors, _LOW_DIM, 2).shape[1])
        if stacked % frame_stack:
            raise CheckpointImportError(
                f"{_LOW_DIM}: {stacked} state inputs is not a multiple of frame_stack {frame_stack}"
            )
        state_dim = stacked // frame_stack
    action_dim = int(_require(tensors, _OUT, 2).shape[0])
    hidden = _mlp_widths(tensors, "actor.actor_model.")
    try:
        return PolicyConfig(
            frame_stack=frame_stack,
            image_size=size,
            image_channels=IMAGE_CHANNELS_PER_FRAME,
            state_dim=state_dim,
            action_dim=action_dim,
            encoder_channels=channels,
            encoder_convs=len(convs),
            bottleneck=bottleneck,
            hidden=tuple(hidden),
        )
    except ValueError as err:
        raise CheckpointImportError(f"inferred sizes are not a valid PolicyConfig: {err}") from None


def _cross_check(config: PolicyConfig, claims: dict[str, Any], where: str) -> None:
    """claims: PolicyConfig field -> value a config file states; any disagreement with the weights is an error."""
    problems = []
    for name, claimed in claims.items():
        actual = getattr(config, name)
        if isinstance(actual, tuple) and isinstance(claimed, list):
            claimed = tuple(claimed)  # noqa: PLW2901 - JSON/YAML lists compare as tuples
        if claimed != actual:
            problems.append(f"{name}: {where} says {claimed!r}, the weights have {actual!r}")
    if problems:
        raise CheckpointImportError(f"{where} and weights disagree: " + "; ".join(problems))


def _with_semantics(config: PolicyConfig, semantics: dict[str, str] | None, where: str) -> PolicyConfig:
    """The inferred sizes with the source's semantics: pick-101's unless the caller states others."""
    chosen = {**PICK101_SEMANTICS, **(semantics or {})}
    unknown = sorted(set(chosen) - set(SEMANTIC_FIELDS))
    if unknown:
        raise CheckpointImportError(f"{where}: unknown semantic field(s) {unknown}; known: {list(SEMANTIC_FIELDS)}")
    try:
        return replace(config, **chosen)
    except ValueError as err:
        raise CheckpointImportError(f"{where}: {err}") from None


def _to_float32(tensors: dict[str, Any], what: str) -> dict[str, torch.Tensor]:
    out = {}
    for key, value in tensors.items():
        if not isinstance(value, torch.Tensor):
            raise CheckpointImportError(f"{what}: {key} is a {type(value).__name__}, not a tensor")
        if not value.is_floating_point():
            raise CheckpointImportError(f"{what}: {key} has dtype {value.dtype}, expected floating point")
        out[key] = value.detach().to("cpu", torch.float32).contiguous().clone()
    return out


def _map_keys(state: dict[str, Any], aliases: dict[str, str], drop: tuple[str, ...], what: str) -> dict[str, Any]:
    """Rename alias prefixes (checking that aliases hold equal values), drop known extras, refuse the unknown."""
    mapped: dict[str, Any] = {}
    sources: dict[str, str] = {}
    unexpected = []
    for key, value in state.items():
        if any(part in key for part in drop):
            continue
        new = key
        for old_prefix, new_prefix in aliases.items():
            if key.startswith(old_prefix):
                new = new_prefix + key[len(old_prefix) :]
                break
        if not new.startswith(_KEY_PREFIXES):
            unexpected.append(key)
            continue
        if new in mapped:
            if not (isinstance(value, torch.Tensor) and torch.equal(mapped[new], value)):
                raise CheckpointImportError(f"{what}: {sources[new]} and {key} are aliases of {new} but differ")
            continue
        mapped[new], sources[new] = value, key
    if unexpected:
        raise CheckpointImportError(f"{what}: unexpected keys ({len(unexpected)}): {', '.join(sorted(unexpected))}")
    return mapped


# ----------------------------------------------------------------------------------------------- RoboBase


def _robobase_claims(cfg: dict) -> dict[str, Any]:
    """PolicyConfig fields as the snapshot's cfg states them (only those it records)."""
    claims: dict[str, Any] = {}
    if (frame_stack := cfg_get(cfg, "frame_stack")) is not _MISSING:
        claims["frame_stack"] = frame_stack
    shape = cfg_get(cfg, "visual_observation_shape")
    if isinstance(shape, list) and len(shape) == 2:
        if shape[0] != shape[1]:
            raise CheckpointImportError(f"cfg visual_observation_shape {shape} is not square; only square is supported")
        claims["image_size"] = shape[0]
    enc = "method.encoder_model."
    if (channels := cfg_get(cfg, enc + "channels")) is not _MISSING:
        claims["encoder_channels"] = channels
    down, post = cfg_get(cfg, enc + "num_downsample_convs"), cfg_get(cfg, enc + "num_post_downsample_convs")
    if down is not _MISSING and down != 1:
        raise CheckpointImportError(f"cfg {enc}num_downsample_convs is {down!r}; the network supports exactly 1")
    if down is not _MISSING and post is not _MISSING:
        claims["encoder_convs"] = down + post
    if (kernel := cfg_get(cfg, enc + "kernel_size")) not in (_MISSING, 3):
        raise CheckpointImportError(f"cfg {enc}kernel_size is {kernel!r}; the network supports 3")
    # The actor's sizes; the critic's must be the same (one PolicyConfig), which the strict shape check enforces.
    if (size := cfg_get(cfg, "method.actor_model.bottleneck_size")) is not _MISSING:
        claims["bottleneck"] = size
    if (nodes := cfg_get(cfg, "method.actor_model.mlp_nodes")) is not _MISSING:
        claims["hidden"] = nodes
    sequence = cfg_get(cfg, "action_sequence")
    if sequence is not _MISSING and sequence != 1:
        raise CheckpointImportError(f"cfg action_sequence is {sequence!r}; only 1 is supported")
    return claims


_ROBOBASE_TRAINING = {  # training key -> cfg path
    "stddev_schedule": "method.stddev_schedule",
    "stddev_clip": "method.stddev_clip",
    "critic_target_tau": "method.critic_target_tau",
    "discount": "replay.gamma",
    "nstep": "replay.nstep",
    "actor_lr": "method.actor_lr",
    "critic_lr": "method.critic_lr",
    "encoder_lr": "method.encoder_lr",
    "weight_decay": "method.weight_decay",
    "num_critics": "method.num_critics",
    "use_augmentation": "method.use_augmentation",
    "num_explore_steps": "method.num_explore_steps",
    "batch_size": "batch_size",
    "update_every_steps": "update_every_steps",
    "replay_size": "replay.size",
    "action_repeat": "action_repeat",
}


def _training_from(getter, table: dict[str, str]) -> dict[str, Any]:
    out = {}
    for key, where in table.items():
        value = getter(where)
        if value is not _MISSING and (value is None or isinstance(value, (str, int, float, bool))):
            out[key] = value
    return out


def import_robobase(
    snapshot_path: str | os.PathLike, semantics: dict[str, str] | None = None
) -> tuple[dict[str, torch.Tensor], PolicyConfig, dict]:
    """(agent tensors, PolicyConfig, training hyperparameters) from a RoboBase DrQ-v2 snapshot, without executing it.

    Keys are mapped like LeRobot's converter (actor_model.* -> actor.actor_model.*, *hidden_state dropped). The
    config carries pick-101's semantics (the snapshots were trained in its simulation); ``semantics`` overrides
    single fields."""
    return import_robobase_with_source(snapshot_path, semantics)[:3]


def import_robobase_with_source(
    snapshot_path: str | os.PathLike, semantics: dict[str, str] | None = None
) -> tuple[dict[str, torch.Tensor], PolicyConfig, dict, dict]:
    """import_robobase plus the "source" record: file name, sha256 and the snapshot's counters."""
    path = Path(snapshot_path)
    snapshot = safe_load_snapshot(path)
    agent = snapshot.get("agent")
    if not isinstance(agent, dict):
        raise CheckpointImportError(f"{path}: no 'agent' state dict (top-level keys: {sorted(map(str, snapshot))})")
    what = f"{path}: agent"
    mapped = _map_keys(agent, {"actor_model.": "actor.actor_model."}, ("hidden_state",), what)
    tensors = _to_float32(mapped, what)
    cfg = plain(snapshot.get("cfg")) if "cfg" in snapshot else {}
    cfg = cfg if isinstance(cfg, dict) else {}
    claims = _robobase_claims(cfg)
    try:
        config = infer_policy_config(tensors, claims.get("image_size"))
        _cross_check(config, claims, "the snapshot's cfg")
        num_critics = verify_agent_tensors(tensors, config, what)
    except CheckpointImportError as err:
        raise CheckpointImportError(f"{path}: {err}") from None
    config = _with_semantics(config, semantics, str(path))
    training = _training_from(lambda where: cfg_get(cfg, where), _ROBOBASE_TRAINING)
    if training.get("num_critics", num_critics) != num_critics:
        raise CheckpointImportError(
            f"{path}: cfg method.num_critics is {training['num_critics']}, the weights have {num_critics} critics"
        )
    training["num_critics"] = num_critics
    source: dict[str, Any] = {"kind": "robobase-snapshot", "file": path.name, "sha256": sha256_hex(path.read_bytes())}
    for key in ("_pretrain_step", "_main_loop_iterations", "_global_env_episode", "best_eval_reward"):
        value = plain(snapshot.get(key))
        if isinstance(value, (int, float, str)) and not isinstance(value, bool):
            source[key.lstrip("_")] = value
    return tensors, config, training, source


# ------------------------------------------------------------------------------------------------- LeRobot


_LEROBOT_TRAINING = {
    "stddev_schedule": "stddev_schedule",
    "stddev_clip": "stddev_clip",
    "discount": "discount",
    "critic_target_tau": "critic_target_tau",
    "num_critics": "num_critics",
    "use_augmentation": "use_augmentation",
    "actor_lr": "actor_lr",
    "critic_lr": "critic_lr",
    "encoder_lr": "encoder_lr",
    "num_explore_steps": "num_explore_steps",
    "utd_ratio": "utd_ratio",
    "batch_size": "batch_size",
    "grad_clip_norm": "grad_clip_norm",
}


def _feature_shape(features: Any, key: str, where: str) -> list[int] | None:
    if not isinstance(features, dict) or key not in features:
        return None
    shape = features[key].get("shape") if isinstance(features[key], dict) else None
    if not (isinstance(shape, list) and all(isinstance(v, int) for v in shape)):
        raise CheckpointImportError(f"{where}: {key} has no integer list 'shape'")
    return shape


def import_lerobot(
    directory: str | os.PathLike, semantics: dict[str, str] | None = None
) -> tuple[dict[str, torch.Tensor], PolicyConfig, dict]:
    """(agent tensors, PolicyConfig, training) from a LeRobot drqv2 directory: config.json + model.safetensors.

    The seed's drqv2 directories are conversions of pick-101 snapshots (convert_robobase_checkpoint), so the config
    carries pick-101's semantics; ``semantics`` overrides single fields (e.g. for weights trained elsewhere)."""
    return import_lerobot_with_source(directory, semantics)[:3]


def import_lerobot_with_source(
    directory: str | os.PathLike, semantics: dict[str, str] | None = None
) -> tuple[dict[str, torch.Tensor], PolicyConfig, dict, dict]:
    """import_lerobot plus the "source" record: directory name and the weights' sha256."""
    directory = Path(directory)
    config_path, weights_path = directory / "config.json", directory / "model.safetensors"
    if not directory.is_dir():
        raise CheckpointImportError(f"{directory}: not a directory (expected a LeRobot policy directory)")
    for needed in (config_path, weights_path):
        if not needed.is_file():
            raise CheckpointImportError(f"{directory}: missing {needed.name}")
    try:
        lr_config = json.loads(config_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CheckpointImportError(f"{config_path}: not valid JSON ({err})") from None
    if not isinstance(lr_config, dict):
        raise CheckpointImportError(f"{config_path}: expected a JSON object")
    if lr_config.get("type") != "drqv2":
        why = ""
        if lr_config.get("type") == "sac":  # what upstream LeRobot's HIL-SERL trains: another network and algorithm
            why = (
                "; upstream LeRobot's HIL-SERL policies are 'sac' and cannot be imported: only 'drqv2' directories "
                "(the seed author's LeRobot fork) map onto this project's DrQ-v2 agent. Start from a RoboBase "
                "snapshot (import-robobase) or from scratch"
            )
        raise CheckpointImportError(f"{config_path}: type is {lr_config.get('type')!r}, expected 'drqv2'{why}")
    try:
        state, _ = read_safetensors(weights_path.read_bytes())
    except PolicyFormatError as err:
        raise CheckpointImportError(f"{weights_path}: {err}") from None
    what = str(weights_path)
    # critic_ensemble is LeRobot's alias of critic; log_alpha is its dummy SAC temperature.
    mapped = _map_keys(
        {key: value for key, value in state.items() if key != "log_alpha"},
        {"critic_ensemble.": "critic.", "actor_model.": "actor.actor_model."},
        ("hidden_state",),
        what,
    )
    tensors = _to_float32(mapped, what)

    where = "config.json"
    inputs = lr_config.get("input_features")
    images = [key for key in (inputs or {}) if key.startswith("observation.image")]
    if len(images) > 1:
        raise CheckpointImportError(f"{config_path}: {len(images)} image features {images}; one camera is supported")
    claims: dict[str, Any] = {}
    image_shape = _feature_shape(inputs, images[0], where) if images else None
    if image_shape is not None:
        if len(image_shape) != 3 or image_shape[1] != image_shape[2]:
            raise CheckpointImportError(f"{config_path}: image shape {image_shape} is not [C, S, S]")
        claims["image_size"] = image_shape[1]
    names = {"frame_stack": "frame_stack", "encoder_channels": "encoder_channels", "bottleneck": "bottleneck_size"}
    for field, key in {**names, "hidden": "mlp_nodes"}.items():
        if key in lr_config:
            claims[field] = lr_config[key]
    if lr_config.get("num_downsample_convs", 1) != 1:
        down = lr_config["num_downsample_convs"]
        raise CheckpointImportError(f"{config_path}: num_downsample_convs is {down!r}, the network supports exactly 1")
    if "num_downsample_convs" in lr_config and "num_post_downsample_convs" in lr_config:
        claims["encoder_convs"] = lr_config["num_downsample_convs"] + lr_config["num_post_downsample_convs"]
    if lr_config.get("encoder_kernel_size", 3) != 3:
        raise CheckpointImportError(f"{config_path}: encoder_kernel_size {lr_config['encoder_kernel_size']}, need 3")
    try:
        config = infer_policy_config(tensors, claims.get("image_size"))
        _cross_check(config, claims, where)
        derived = []
        if image_shape is not None and image_shape[0] != config.pixel_channels:
            derived.append(f"image channels: {where} says {image_shape[0]}, the weights have {config.pixel_channels}")
        state_shape = _feature_shape(inputs, "observation.state", where)
        if state_shape is not None and state_shape != [config.stacked_state_dim]:
            derived.append(
                f"observation.state: {where} says {state_shape}, the weights have [{config.stacked_state_dim}]"
            )
        action_shape = _feature_shape(lr_config.get("output_features"), "action", where)
        if action_shape is not None and action_shape != [config.action_dim]:
            derived.append(f"action: {where} says {action_shape}, the weights have [{config.action_dim}]")
        if derived:
            raise CheckpointImportError(f"{where} and weights disagree: " + "; ".join(derived))
        num_critics = verify_agent_tensors(tensors, config, what)
    except CheckpointImportError as err:
        raise CheckpointImportError(f"{directory}: {err}") from None
    config = _with_semantics(config, semantics, str(directory))
    training = _training_from(lambda key: lr_config.get(key, _MISSING), _LEROBOT_TRAINING)
    if training.get("num_critics", num_critics) != num_critics:
        raise CheckpointImportError(
            f"{directory}: config.json num_critics is {training['num_critics']}, the weights have {num_critics}"
        )
    training["num_critics"] = num_critics
    training["nstep"] = 1  # the LeRobot port does single-step TD
    source = {"kind": "lerobot-drqv2", "directory": directory.name, "sha256": sha256_hex(weights_path.read_bytes())}
    return tensors, config, training, source
