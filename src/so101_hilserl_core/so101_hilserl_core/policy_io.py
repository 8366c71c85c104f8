"""The one on-disk and on-the-wire format for policy weights (encoder + actor), and its strict validation.

The actor loads its initial weights from a file and later takes weights the learner publishes; both go through
``policy_from_bytes``, so a truncated transfer, a config mix-up (frame stack 2 vs 3) or a diverged learner (NaN
weights) is refused with a message that names the problem instead of reaching the robot. A file is safetensors bytes
(encoder.* + actor.actor_model.*, float32; metadata "format" and "policy_config"); an ``expected`` config is checked on
the network sizes only, as the semantics are the file's. The project's other weight files (FORMAT_FAMILY) load too,
their policy part only. safetensors only, never torch.load or pickle: loading runs no code from a file.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from pathlib import Path

import safetensors.torch
import torch

from so101_contract.files import atomic_write_bytes
from so101_hilserl_core.exploration import from_metadata
from so101_hilserl_core.policy import Policy, PolicyConfig
from so101_hilserl_core.semantics import PICK101_SEMANTICS, SEMANTIC_FIELDS

# Every weights file of the project has a format "so101-hilserl-<kind>/<version>"; each holds the policy under
# POLICY_PREFIXES. This package defines the policy's own format; the learner defines its agent format in the family.
FORMAT_FAMILY = "so101-hilserl-"
POLICY_FORMAT = f"{FORMAT_FAMILY}policy/1"
POLICY_PREFIXES = ("encoder.", "actor.")
# source "kind"s of imported sim checkpoints: a file of these written before semantics were recorded is pick-101's.
SIM_IMPORT_KINDS = ("robobase-snapshot", "lerobot-drqv2")

_MAX_HEADER_BYTES = 100 * 1024 * 1024  # safetensors' own limit
_MAX_LISTED = 8  # how many keys an error message lists before it says "and N more"


class PolicyFormatError(ValueError):
    """Weights that are not what the reader expects; the message says what and where."""


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def parse_safetensors_header(data: bytes) -> tuple[dict[str, dict], dict[str, str]]:
    """(tensor entries {name: {dtype, shape, data_offsets}}, metadata) from the start of a safetensors file.

    Only needs the header bytes, so tools can describe a large file without reading its tensors."""
    if len(data) < 8:
        raise PolicyFormatError(f"not a safetensors file: {len(data)} bytes, shorter than the 8-byte header length")
    (header_len,) = struct.unpack("<Q", data[:8])
    if header_len > _MAX_HEADER_BYTES:
        raise PolicyFormatError(f"not a safetensors file: header length {header_len} is implausible")
    if 8 + header_len > len(data):
        raise PolicyFormatError(
            f"truncated safetensors file: the header needs {8 + header_len} bytes, only {len(data)} present"
        )
    try:
        header = json.loads(data[8 : 8 + header_len].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise PolicyFormatError(f"not a safetensors file: the header is not JSON ({err})") from None
    if not isinstance(header, dict):
        raise PolicyFormatError("not a safetensors file: the header is not a JSON object")
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise PolicyFormatError("bad safetensors metadata: expected a JSON object of strings")
    return header, metadata


def read_safetensors(data: bytes) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """All tensors (CPU) and the metadata of safetensors bytes; any damage becomes a PolicyFormatError."""
    header, metadata = parse_safetensors_header(data)
    body = len(data) - 8 - struct.unpack("<Q", data[:8])[0]
    for name, entry in header.items():
        offsets = entry.get("data_offsets") if isinstance(entry, dict) else None
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(isinstance(o, int) for o in offsets)):
            raise PolicyFormatError(f"bad safetensors entry for {name!r}: {entry!r}")
        if offsets[1] > body:
            raise PolicyFormatError(
                f"truncated safetensors file: tensor {name!r} ends at byte {offsets[1]} of the data section, "
                f"which holds only {body} bytes"
            )
    try:
        tensors = safetensors.torch.load(data)
    except Exception as err:  # the Rust reader raises its own error type
        raise PolicyFormatError(f"unreadable safetensors data: {err}") from None
    return tensors, metadata


def module_shapes(module: torch.nn.Module, prefix: str = "") -> dict[str, tuple[int, ...]]:
    """{prefix + state-dict key: shape} of a module."""
    return {prefix + key: tuple(value.shape) for key, value in module.state_dict().items()}


def expected_policy_shapes(config: PolicyConfig) -> dict[str, tuple[int, ...]]:
    """Every key of Policy(config).state_dict() with its shape (built on the meta device: no memory, no init)."""
    with torch.device("meta"):
        return module_shapes(Policy(config))


def _listing(keys: list[str]) -> str:
    keys = sorted(keys)
    shown = ", ".join(keys[:_MAX_LISTED])
    return shown + (f" and {len(keys) - _MAX_LISTED} more" if len(keys) > _MAX_LISTED else "")


def check_tensors(
    tensors: dict[str, torch.Tensor], expected: dict[str, tuple[int, ...]], what: str = "weights"
) -> None:
    """Exactly the expected keys, each with the expected shape, float32 and finite; else one error naming all."""
    problems = []
    missing = [key for key in expected if key not in tensors]
    unexpected = [key for key in tensors if key not in expected]
    if missing:
        problems.append(f"missing keys ({len(missing)}): {_listing(missing)}")
    if unexpected:
        problems.append(f"unexpected keys ({len(unexpected)}): {_listing(unexpected)}")
    for key in sorted(set(expected) & set(tensors)):
        tensor = tensors[key]
        if not isinstance(tensor, torch.Tensor):
            problems.append(f"{key}: expected a tensor, found {type(tensor).__name__}")
            continue
        if tuple(tensor.shape) != tuple(expected[key]):
            problems.append(f"shape mismatch for {key}: expected {tuple(expected[key])}, found {tuple(tensor.shape)}")
        elif tensor.dtype != torch.float32:
            problems.append(f"{key}: dtype {tensor.dtype}, expected torch.float32")
        else:
            bad = int((~torch.isfinite(tensor)).sum())
            if bad:
                problems.append(f"{key}: {bad} non-finite value(s) (NaN or inf)")
    if problems:
        raise PolicyFormatError(f"{what}: " + "; ".join(problems))


def config_differences(found: PolicyConfig, expected: PolicyConfig) -> list[str]:
    """'field: file has X, expected Y' for every network (shape) field that differs. The semantics are not
    compared: they belong to the policy in the file (see semantic_differences)."""
    return [
        f"{name}: file has {getattr(found, name)!r}, expected {getattr(expected, name)!r}"
        for name in PolicyConfig.network_fields()
        if getattr(found, name) != getattr(expected, name)
    ]


def semantic_differences(found: PolicyConfig, expected: PolicyConfig) -> list[str]:
    """'field: file has X, configured Y' for every semantic field that differs (for logs: never a refusal)."""
    return [
        f"{name}: file has {getattr(found, name)!r}, configured {getattr(expected, name)!r}"
        for name in SEMANTIC_FIELDS
        if getattr(found, name) != getattr(expected, name)
    ]


def _holds_a_policy(fmt: str) -> bool:
    """POLICY_FORMAT, or another kind of the project's family (which holds the policy under POLICY_PREFIXES); another
    version of the policy format itself is not one this reader knows."""
    policy_kind = POLICY_FORMAT.rsplit("/", 1)[0] + "/"
    return fmt == POLICY_FORMAT or (fmt.startswith(FORMAT_FAMILY) and not fmt.startswith(policy_kind))


def config_from_metadata(metadata: dict[str, str], accepted_formats: tuple[str, ...] | None) -> PolicyConfig:
    """Check metadata["format"] (one of ``accepted_formats``; None: any of the project's FORMAT_FAMILY) and parse
    metadata["policy_config"]."""
    fmt = metadata.get("format")
    expected = (
        f"one of {list(accepted_formats)}" if accepted_formats else f"{POLICY_FORMAT} or a {FORMAT_FAMILY}* format"
    )
    if fmt is None:
        raise PolicyFormatError(f"metadata has no 'format' (expected {expected})")
    accepted = fmt in accepted_formats if accepted_formats else _holds_a_policy(fmt)
    if not accepted:
        raise PolicyFormatError(f"format is {fmt!r}, expected {expected}")
    text = metadata.get("policy_config")
    if text is None:
        raise PolicyFormatError("metadata has no 'policy_config'")
    try:
        return PolicyConfig.from_json(text, _legacy_semantics(metadata))
    except (ValueError, TypeError) as err:
        raise PolicyFormatError(f"bad policy_config in metadata: {err}") from None


def _legacy_semantics(metadata: dict[str, str]) -> dict[str, str] | None:
    """For a file without recorded semantics: pick-101's if it is an imported sim checkpoint, else None (from_json's
    legacy default, how the project then applied and observed every policy)."""
    try:
        source = json.loads(metadata.get("source", "null"))
    except json.JSONDecodeError:
        return None
    kind = source.get("kind") if isinstance(source, dict) else None
    return PICK101_SEMANTICS if kind in SIM_IMPORT_KINDS else None


def policy_tensors(policy: Policy) -> dict[str, torch.Tensor]:
    """The policy's weights as float32, contiguous CPU tensors that share no memory with the live module."""
    return {
        key: value.detach().to(device="cpu", dtype=torch.float32).contiguous().clone()
        for key, value in policy.state_dict().items()
    }


def policy_to_bytes(policy: Policy) -> bytes:
    """safetensors bytes of encoder.* + actor.* with format and config metadata. Refuses non-finite weights."""
    tensors = policy_tensors(policy)
    check_tensors(tensors, expected_policy_shapes(policy.config), "policy weights")
    metadata = {"format": POLICY_FORMAT, "policy_config": policy.config.to_json()}
    return safetensors.torch.save(tensors, metadata=metadata)


def policy_from_bytes(
    data: bytes, expected: PolicyConfig | None = None
) -> tuple[dict[str, torch.Tensor], PolicyConfig]:
    """Validated (encoder.* + actor.* tensors, config) from a policy file's bytes, or the policy part of another of
    the project's weight files (the learner's agent files).

    If expected is given, the file's network sizes must equal it (every differing field is named). The returned
    config is the file's, semantics included: apply those, not the expected config's."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise PolicyFormatError(f"expected bytes, got {type(data).__name__}")
    data = bytes(data)
    tensors, metadata = read_safetensors(data)
    fmt = metadata.get("format")
    config = config_from_metadata(metadata, None)
    differences = config_differences(config, expected) if expected is not None else []
    if differences:
        raise PolicyFormatError("policy_config differs from the expected network: " + "; ".join(differences))
    if fmt != POLICY_FORMAT:  # take the policy part; the learner's loader validates the rest
        tensors = {key: value for key, value in tensors.items() if key.startswith(POLICY_PREFIXES)}
    check_tensors(tensors, expected_policy_shapes(config), f"{fmt} weights")
    return tensors, config


def policy_from_tensors(tensors: dict[str, torch.Tensor], config: PolicyConfig) -> Policy:
    """A Policy holding exactly these (already validated) tensors, loaded strictly, in eval mode."""
    with torch.device("meta"):
        policy = Policy(config)
    policy.load_state_dict(tensors, strict=True, assign=True)
    return policy.eval()


def save_policy(path: str | os.PathLike, policy: Policy) -> str:
    """Atomically write the policy file; returns the sha256 of the bytes written."""
    data = policy_to_bytes(policy)
    atomic_write_bytes(path, data)
    return sha256_hex(data)


def load_policy(path: str | os.PathLike, expected: PolicyConfig | None = None) -> Policy:
    """Load a policy (or agent) file into a Policy; PolicyFormatError messages start with the path.

    ``policy.config`` is the file's (its semantics decide how to apply the policy); ``expected`` checks sizes."""
    data = Path(path).read_bytes()
    try:
        tensors, config = policy_from_bytes(data, expected)
    except PolicyFormatError as err:
        raise PolicyFormatError(f"{path}: {err}") from None
    return policy_from_tensors(tensors, config)


def load_initial_policy(path: str, network: PolicyConfig) -> tuple[Policy, str | None, int]:
    """(policy, carried schedule or None, carried environment steps) from an initial policy or agent file; '' = a
    fresh network. Raises PolicyFormatError/ValueError naming the file."""
    if not path:
        return Policy(network), None, 0
    where = f"parameter initial_weights={path!r}"
    fix = "give a policy or agent .safetensors file, or '' for a fresh network"
    if not Path(path).is_file():
        raise PolicyFormatError(f"{where}: {'not a file' if Path(path).exists() else 'no such file'}; {fix}")
    try:
        data = Path(path).read_bytes()
    except OSError as err:
        raise PolicyFormatError(f"{where}: cannot read it ({err.strerror or err})") from None
    try:
        tensors, config = policy_from_bytes(data, expected=network)
        schedule, steps = from_metadata(read_safetensors(data)[1], "the file")
    except PolicyFormatError as err:
        raise PolicyFormatError(f"{where}: {err}; {fix}") from None
    except ValueError as err:  # its exploration metadata entry
        raise PolicyFormatError(f"{where}: {err}") from None
    return policy_from_tensors(tensors, config), schedule, steps
