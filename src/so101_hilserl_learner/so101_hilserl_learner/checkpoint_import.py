"""The learner's agent checkpoint format, and importers for RoboBase snapshots and LeRobot drqv2 directories.

Why: the sim-pretrained DrQ-v2 weights of devlog 022 exist as RoboBase snapshots (torch.save pickles that also hold
an OmegaConf config) and as LeRobot conversions. Both are turned into one safetensors agent file:

    AGENT_FORMAT file: encoder.*, actor.actor_model.*, critic.qs.*, critic_target.qs.*  (float32)
        metadata {"format", "policy_config" (PolicyConfig JSON: sizes and the policy's semantics),
                  "source" (JSON: where it came from),
                  "training" (JSON, optional: stddev_schedule, stddev_clip, discount, nstep, critic_target_tau, lr...:
                  how the source was trained, a record, not settings), and optional entries such as
                  "exploration" (so101_hilserl_actor.exploration: a schedule to continue with)}

Imported sim checkpoints are marked with pick-101's semantics (absolute gripper, accumulated EE target, raw euler
state; so101_hilserl_actor.semantics) because that is how they were trained; the importers take other semantics
only when told. ``import_learner_checkpoint`` turns one of the project's own learner checkpoints into an agent file
with its semantics and exploration schedule (``checkpoint_tool export``).

Importing a snapshot must not run code from the file (DESIGN.md). torch.load(weights_only=True) only rebuilds
tensors and plain containers; every other class the pickle names must be on our allowlist, and the allowlist maps
each one (OmegaConf's DictConfig, ListConfig, nodes and metadata, typing.Any, numpy scalars) to an inert stub that
merely records what the pickle hands it. Any other global is refused before unpickling starts.
"""

from __future__ import annotations

import json
import math
import os
import pickle
import re
import zipfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import safetensors.torch
import torch

from so101_hilserl_actor import exploration
from so101_hilserl_actor.policy import Critic, Policy, PolicyConfig
from so101_hilserl_actor.policy_io import (
    AGENT_FORMAT,
    PolicyFormatError,
    atomic_write_bytes,
    check_tensors,
    config_from_metadata,
    expected_critic_shapes,
    expected_policy_shapes,
    read_safetensors,
    sha256_hex,
)
from so101_hilserl_actor.semantics import PICK101_SEMANTICS, SEMANTIC_FIELDS
from so101_hilserl_learner import checkpoint

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


class CheckpointImportError(ValueError):
    """A checkpoint that cannot be imported as it stands; the message names the file, key or field."""


# --------------------------------------------------------------------------------------------- the agent file


def _num_critics(tensors: dict[str, torch.Tensor], prefix: str = "critic.qs.") -> int:
    indices = {int(m.group(1)) for key in tensors if (m := re.match(re.escape(prefix) + r"(\d+)\.", key))}
    return max(indices) + 1 if indices else 0


def expected_agent_shapes(config: PolicyConfig, num_critics: int = 2) -> dict[str, tuple[int, ...]]:
    shapes = expected_policy_shapes(config)
    shapes.update(expected_critic_shapes(config, num_critics, "critic."))
    shapes.update(expected_critic_shapes(config, num_critics, "critic_target."))
    return shapes


def verify_agent_tensors(tensors: dict[str, torch.Tensor], config: PolicyConfig, what: str = "agent weights") -> int:
    """Exact keys, shapes, float32, finite; then a strict load into Policy and Critic. Returns the critic count."""
    num_critics = max(_num_critics(tensors), 1)
    try:
        check_tensors(tensors, expected_agent_shapes(config, num_critics), what)
    except PolicyFormatError as err:
        raise CheckpointImportError(str(err)) from None
    with torch.device("meta"):  # the key/shape checks above are the precise ones; this proves the modules agree
        policy, critic, target = Policy(config), Critic(config, num_critics), Critic(config, num_critics)
    for module, prefix in ((critic, "critic."), (target, "critic_target.")):
        part = {key[len(prefix) :]: value for key, value in tensors.items() if key.startswith(prefix)}
        module.load_state_dict(part, strict=True, assign=True)
    policy.load_state_dict(
        {key: value for key, value in tensors.items() if key.startswith(("encoder.", "actor."))},
        strict=True,
        assign=True,
    )
    return num_critics


_OWN_METADATA = ("format", "policy_config", "source", "training")


def save_agent_weights(
    path: str | os.PathLike,
    tensors: dict[str, torch.Tensor],
    config: PolicyConfig,
    source: str | dict,
    training: dict | None = None,
    extra_metadata: dict[str, str] | None = None,
) -> str:
    """Validate, then atomically write an AGENT_FORMAT file; returns the sha256 of the bytes written.

    ``extra_metadata``: further string entries (e.g. exploration.to_metadata(...)); they cannot replace the four
    this function writes."""
    tensors = {key: value.detach().to("cpu", torch.float32).contiguous().clone() for key, value in tensors.items()}
    verify_agent_tensors(tensors, config)
    metadata = {
        "format": AGENT_FORMAT,
        "policy_config": config.to_json(),
        "source": source if isinstance(source, str) else json.dumps(source, sort_keys=True),
    }
    if training:
        metadata["training"] = json.dumps(training, sort_keys=True)
    extra = dict(extra_metadata or {})
    clash = sorted(set(extra) & set(_OWN_METADATA))
    if clash or not all(isinstance(k, str) and isinstance(v, str) for k, v in extra.items()):
        raise CheckpointImportError(f"extra metadata must be string entries other than {list(_OWN_METADATA)}")
    metadata.update(extra)
    data = safetensors.torch.save(tensors, metadata=metadata)
    atomic_write_bytes(path, data)
    return sha256_hex(data)


def load_agent_weights(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], PolicyConfig, dict[str, str]]:
    """(tensors, config, metadata) of an AGENT_FORMAT file, fully validated."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointImportError(f"{path}: no such file")
    try:
        tensors, metadata = read_safetensors(path.read_bytes())
        config = config_from_metadata(metadata, (AGENT_FORMAT,))
    except PolicyFormatError as err:
        raise CheckpointImportError(f"{path}: {err}") from None
    try:
        verify_agent_tensors(tensors, config)
    except CheckpointImportError as err:
        raise CheckpointImportError(f"{path}: {err}") from None
    if "training" in metadata:
        try:
            json.loads(metadata["training"])
        except json.JSONDecodeError as err:
            raise CheckpointImportError(f"{path}: metadata 'training' is not JSON ({err})") from None
    return tensors, config, metadata


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


# ------------------------------------------------------------------------- inert stand-ins for pickled classes


class _Recorded:
    """Stand-in for a class a trusted-layout pickle names: it runs nothing and only records its arguments/state."""

    global_name = "?"
    args: tuple = ()
    state: Any = None

    def __init__(self, *args: Any) -> None:  # REDUCE calls the class with its arguments
        self.args = args

    def __setstate__(self, state: Any) -> None:  # BUILD hands over the pickled __dict__
        self.state = state

    def __repr__(self) -> str:
        return f"<{self.global_name}>"


def _inert_defaultdict(*_args: Any) -> dict:
    """collections.defaultdict(factory) -> a plain dict (the unpickler only fills exact dicts)."""
    return {}


_STUBBED_GLOBALS = (
    "omegaconf.dictconfig.DictConfig",
    "omegaconf.listconfig.ListConfig",
    "omegaconf.base.Metadata",
    "omegaconf.base.ContainerMetadata",
    "omegaconf.nodes.AnyNode",
    "omegaconf.nodes.StringNode",
    "omegaconf.nodes.IntegerNode",
    "omegaconf.nodes.FloatNode",
    "omegaconf.nodes.BooleanNode",
    "omegaconf.nodes.BytesNode",
    "omegaconf.nodes.PathNode",
    "typing.Any",
    "typing.Dict",
    "typing.List",
    "builtins.dict",
    "builtins.list",
    "builtins.tuple",
    "builtins.int",
    "builtins.float",
    "builtins.str",
    "builtins.bool",
    "builtins.bytes",
    "builtins.object",
    "numpy.dtype",
    "numpy.core.multiarray.scalar",
    "numpy._core.multiarray.scalar",
)
_STUBS: dict[str, type] = {
    name: type(name.rsplit(".", 1)[1], (_Recorded,), {"global_name": name, "__module__": __name__})
    for name in _STUBBED_GLOBALS
}
SAFE_GLOBALS: list[tuple[Any, str]] = [(stub, name) for name, stub in _STUBS.items()] + [
    (_inert_defaultdict, "collections.defaultdict")
]


def _numpy_scalar(stub: _Recorded) -> Any:
    """The value of a pickled numpy scalar (numeric kinds only), decoded from its bytes without numpy's pickle code."""
    if len(stub.args) != 2 or not isinstance(stub.args[1], bytes) or not isinstance(stub.args[0], _Recorded):
        return repr(stub)
    dtype_stub, raw = stub.args
    code = dtype_stub.args[0] if dtype_stub.args else None
    order = dtype_stub.state[1] if isinstance(dtype_stub.state, tuple) and len(dtype_stub.state) > 1 else "<"
    if not (isinstance(code, str) and re.fullmatch(r"[fiub]\d{1,2}", code) and order in ("<", ">", "|", "=")):
        return repr(stub)
    try:
        return np.frombuffer(raw, dtype=np.dtype(("=" if order == "|" else order) + code))[0].item()
    except (TypeError, ValueError):
        return repr(stub)


def plain(obj: Any, _depth: int = 0) -> Any:
    """Stub tree -> plain Python: DictConfig -> dict, ListConfig -> list, nodes -> their values."""
    if _depth > 200:
        raise CheckpointImportError("config nesting deeper than 200 levels")
    if isinstance(obj, _Recorded):
        name = obj.global_name
        state = obj.state if isinstance(obj.state, dict) else {}
        if name in ("omegaconf.dictconfig.DictConfig", "omegaconf.listconfig.ListConfig"):
            return plain(state.get("_content"), _depth + 1)  # None or a "${...}"/"???" string stay as they are
        if name.startswith("omegaconf.nodes."):
            return plain(state.get("_val"), _depth + 1)
        if name.endswith("multiarray.scalar"):
            return _numpy_scalar(obj)
        return repr(obj)
    if isinstance(obj, dict):
        return {
            key if isinstance(key, (str, int, float, bool)) else repr(key): plain(v, _depth + 1)
            for key, v in obj.items()
        }
    if isinstance(obj, (list, tuple)):
        return [plain(v, _depth + 1) for v in obj]
    return obj


_MISSING = object()
_INTERPOLATION = re.compile(r"^\$\{([A-Za-z0-9_.]+)\}$")


def cfg_get(cfg: Any, dotted: str, _hops: int = 0) -> Any:
    """cfg value at a dotted path, following plain ${a.b} interpolations; _MISSING if absent or unresolvable."""
    node = cfg
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return _MISSING
        node = node[part]
    if isinstance(node, str) and (m := _INTERPOLATION.match(node)) and _hops < 10:
        return cfg_get(cfg, m.group(1), _hops + 1)
    if isinstance(node, str) and ("${" in node or node == "???"):
        return _MISSING
    return node


# ----------------------------------------------------------------------------------------------- RoboBase


def safe_load_snapshot(path: str | os.PathLike) -> dict[str, Any]:
    """A torch.save file loaded without running any code from it: stubs for the allowlisted classes, refusal (naming
    the globals) for anything else. Tensors are mapped to the CPU."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointImportError(f"{path}: no such file")
    if not zipfile.is_zipfile(path):
        raise CheckpointImportError(
            f"{path}: not a torch.save zip archive (truncated or corrupt, or the legacy pre-1.6 format)"
        )
    with torch.serialization.safe_globals(SAFE_GLOBALS):
        try:
            disallowed = torch.serialization.get_unsafe_globals_in_checkpoint(str(path))
        except (ValueError, RuntimeError, KeyError, zipfile.BadZipFile, pickle.UnpicklingError, EOFError) as err:
            raise CheckpointImportError(
                f"{path}: unreadable torch.save archive (truncated or corrupt?): {err}"
            ) from None
        if disallowed:
            raise CheckpointImportError(
                f"{path}: refused: its pickle names global(s) {', '.join(sorted(disallowed))} that are not on the "
                "allowlist of inert config classes; nothing from the file was executed"
            )
        try:
            loaded = torch.load(str(path), map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as err:
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise CheckpointImportError(
                f"{path}: refused by the weights-only unpickler ({first}); nothing was executed"
            ) from None
        except (RuntimeError, EOFError, KeyError, ValueError, zipfile.BadZipFile) as err:
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise CheckpointImportError(
                f"{path}: unreadable torch.save archive (truncated or corrupt?): {first}"
            ) from None
    if not isinstance(loaded, dict):
        raise CheckpointImportError(f"{path}: expected a dict at the top level, found {type(loaded).__name__}")
    return loaded


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
    training["nstep"] = 1  # the LeRobot port does single-step TD (seed-system-facts 3b)
    source = {"kind": "lerobot-drqv2", "directory": directory.name, "sha256": sha256_hex(weights_path.read_bytes())}
    return tensors, config, training, source


# ------------------------------------------------------------------------------- the project's own checkpoints

_AGENT_PREFIXES = ("encoder.", "actor.", "critic.", "critic_target.")


def _read_checkpoint(path: Path) -> tuple[int, dict]:
    """One ckpt-N directory, read only (no clean-up: a learner may be writing next to it)."""
    try:
        meta = json.loads((path / checkpoint.META_FILE).read_text())
        tensors, _ = read_safetensors((path / checkpoint.TENSORS_FILE).read_bytes())
        state = checkpoint.unflatten_state(tensors, meta["state"])
        step = int(meta["step"])
    except (OSError, ValueError, KeyError, TypeError, checkpoint.CheckpointError) as err:
        raise CheckpointImportError(f"{path}: unreadable learner checkpoint ({' '.join(str(err).split())})") from None
    if not isinstance(state, dict):
        raise CheckpointImportError(f"{path}: the checkpoint's state is not a mapping")
    return step, state


def _checkpoint_candidates(path: Path) -> list[Path]:
    """ckpt-N directories to try, best first: ``path`` itself if it is one; else the one its LATEST names, then the
    others newest first (``path`` is a run dir or its checkpoints directory)."""
    if path.name.startswith(checkpoint.PREFIX) and (path / checkpoint.META_FILE).is_file():
        return [path]
    directory = path / "checkpoints" if (path / "checkpoints").is_dir() else path
    candidates = sorted((p for p in directory.glob(f"{checkpoint.PREFIX}*") if p.is_dir()), reverse=True)
    latest = directory / checkpoint.LATEST
    if latest.is_file():
        named = directory / latest.read_text().strip()
        if named in candidates:
            candidates.remove(named)
            candidates.insert(0, named)
    return candidates


def import_learner_checkpoint(
    run_dir: str | os.PathLike,
) -> tuple[dict[str, torch.Tensor], PolicyConfig, dict, dict[str, str]]:
    """(agent tensors, PolicyConfig, source, extra metadata) from a learner checkpoint: ``run_dir`` is a learner run
    directory (its checkpoints/LATEST, else the newest complete ckpt-N), its checkpoints directory or one ckpt-N.

    The config is the checkpoint's, semantics included; the extra metadata carries its exploration schedule and
    the environment step it had reached (exploration.to_metadata) when the checkpoint records them. Read only."""
    path = Path(run_dir)
    if not path.is_dir():
        raise CheckpointImportError(f"{path}: not a directory (expected a learner run_dir or a ckpt-N directory)")
    candidates = _checkpoint_candidates(path)
    if not candidates:
        raise CheckpointImportError(f"{path}: no learner checkpoint (expected checkpoints/ckpt-N with a LATEST file)")
    errors = []
    for candidate in candidates:
        try:
            step, state = _read_checkpoint(candidate)
            break
        except CheckpointImportError as err:
            errors.append(str(err))
    else:
        raise CheckpointImportError("no readable checkpoint: " + "; ".join(errors))
    where = str(candidate)
    try:
        config = PolicyConfig.from_json(state["policy_config"])
    except (KeyError, TypeError, ValueError) as err:
        raise CheckpointImportError(f"{where}: bad or missing policy_config ({err})") from None
    agent = state.get("agent")
    if not isinstance(agent, dict):
        raise CheckpointImportError(f"{where}: no agent state")
    tensors = {key: value for key, value in agent.items() if key.startswith(_AGENT_PREFIXES)}
    try:
        verify_agent_tensors(tensors, config, f"{where}: agent")
    except CheckpointImportError as err:
        raise CheckpointImportError(str(err)) from None
    extra: dict[str, str] = {}
    explore = state.get("exploration")
    if isinstance(explore, dict) and explore.get("stddev_schedule"):
        try:
            extra = exploration.to_metadata(explore["stddev_schedule"], int(explore.get("environment_steps", 0)))
        except (ValueError, TypeError) as err:
            raise CheckpointImportError(f"{where}: bad exploration record ({err})") from None
    source: dict[str, Any] = {"kind": "learner-checkpoint", "checkpoint": candidate.name, "updates": step}
    if candidate.parent.name == "checkpoints":
        source["run_dir"] = candidate.parent.parent.name
    for key in ("run_id", "learner_epoch"):
        if isinstance(state.get(key), str):
            source[key] = state[key]
    return tensors, config, source, extra
