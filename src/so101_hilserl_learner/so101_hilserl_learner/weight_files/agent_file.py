"""The learner's agent file: the policy (encoder.*, actor.*) plus the critics, in one validated safetensors file.

The format belongs to the learner, which alone trains the critics; it is one of the project's weight-file family
(so101_hilserl_core.policy_io.FORMAT_FAMILY), so the actor reads its policy part as it reads a policy file.
safetensors only: loading runs no code from the file. ``import_learner_checkpoint`` turns one of the project's own
learner checkpoints into agent-file content (``checkpoint_tool export``).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import safetensors.torch
import torch

from so101_contract.files import atomic_write_bytes
from so101_contract.run_dir import LearnerDir
from so101_hilserl_core import exploration
from so101_hilserl_core.policy import Policy, PolicyConfig
from so101_hilserl_core.policy_io import (
    FORMAT_FAMILY,
    POLICY_PREFIXES,
    PolicyFormatError,
    check_tensors,
    config_from_metadata,
    expected_policy_shapes,
    read_safetensors,
    sha256_hex,
)
from so101_hilserl_learner import checkpoint
from so101_hilserl_learner.critic import CRITIC_PREFIXES, Critic, expected_critic_shapes

# An AGENT_FORMAT file: encoder.*, actor.actor_model.*, critic.qs.*, critic_target.qs.* (float32), with metadata
# "format", "policy_config" (PolicyConfig JSON: sizes and the policy's semantics), "source" (JSON: where it came
# from), optionally "training" (JSON: stddev_schedule, stddev_clip, discount, nstep, critic_target_tau, lr...: how
# the source was trained, a record, not settings) and entries such as "exploration" (a schedule to continue with).
AGENT_FORMAT = f"{FORMAT_FAMILY}agent/1"


class CheckpointImportError(ValueError):
    """A checkpoint that cannot be imported as it stands; the message names the file, key or field."""


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
        {key: value for key, value in tensors.items() if key.startswith(POLICY_PREFIXES)},
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


# ------------------------------------------------------------------------------- the project's own checkpoints

_AGENT_PREFIXES = (*POLICY_PREFIXES, *CRITIC_PREFIXES)


def _read_checkpoint(path: Path) -> tuple[int, dict]:
    """One ckpt-N directory, read only (no clean-up: a learner may be writing next to it)."""
    try:
        checkpoint.verify_checkpoint(path)  # its manifest's SHA-256, as the learner checks it on load
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
    directory = LearnerDir(path).checkpoints if LearnerDir(path).checkpoints.is_dir() else path
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
    if candidate.parent == LearnerDir(candidate.parent.parent).checkpoints:
        source["run_dir"] = candidate.parent.parent.name
    for key in ("run_id", "learner_epoch"):
        if isinstance(state.get(key), str):
            source[key] = state[key]
    return tensors, config, source, extra
