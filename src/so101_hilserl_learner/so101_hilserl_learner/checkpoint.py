"""Crash-safe, checksummed learner checkpoints under ``<run_dir>/checkpoints``: safetensors + JSON, never pickled.

A checkpoint is written into a temporary directory, fsync'ed, renamed into place (atomic on POSIX), and only then
named in LATEST, so a kill at any moment leaves the previous or the new checkpoint, never a half-written one that
loads. A diverged learner cannot replace the last good checkpoint (a non-finite state is not written); at load a
checkpoint that fails its manifest's SHA-256, does not parse or holds a non-finite value is passed over for the next
older one (``load_newest_good`` says why), and a LATEST naming a missing checkpoint is an error with the fix, never a
silent fresh start from 0 updates (DanglingLatestError).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from so101_contract.files import atomic_write_text, fsync_path

# Layout under <run_dir>/checkpoints:
#   ckpt-000001200/state.safetensors   every tensor (networks, optimiser moments) under a flat key
#   ckpt-000001200/state.json          everything else (counters, config, optimiser hyper-parameters), with
#                                      {"__tensor__": key} where a tensor sat in the nested state
#   ckpt-000001200/manifest.json       the SHA-256 of each of the two files above, written last
#   LATEST                             the name of the newest complete checkpoint (replaced atomically)
#   refused-ckpt-000001300/            a checkpoint the learner refused at load (kept for inspection, out of rotation)
# Leftovers of an interrupted write (TMP_PREFIX) are removed at the next start.
TENSORS_FILE = "state.safetensors"
META_FILE = "state.json"
MANIFEST_FILE = "manifest.json"
CHECKSUMMED = (TENSORS_FILE, META_FILE)
LATEST = "LATEST"
PREFIX = "ckpt-"
TMP_PREFIX = ".tmp-"
REFUSED_PREFIX = "refused-"
DEFAULT_KEEP = 3


class CheckpointError(RuntimeError):
    pass


class NonFiniteStateError(CheckpointError):
    """The state holds NaN or inf: not written (save) or not used (load)."""


class DanglingLatestError(CheckpointError):
    """LATEST names a checkpoint that is not on disk."""


@dataclass
class Loaded:
    """A checkpoint that loaded, and the newer ones passed over on the way to it."""

    step: int
    state: dict
    path: Path
    refused: list[tuple[str, str]] = field(default_factory=list)  # (checkpoint name, why)


def flatten_state(state: Any, prefix: str = "") -> tuple[dict[str, torch.Tensor], Any]:
    """Split a nested state (dicts, lists, tensors, plain values) into flat tensors and a JSON-able skeleton."""
    tensors: dict[str, torch.Tensor] = {}

    def walk(node: Any, path: str) -> Any:
        if isinstance(node, torch.Tensor):
            tensors[path] = node.detach().to("cpu").contiguous()
            return {"__tensor__": path}
        if isinstance(node, dict):
            if any(not isinstance(k, str | int) for k in node):
                raise CheckpointError(f"state key types at {path or '<root>'} must be str or int")
            return {"__dict__": [[k, walk(v, f"{path}.{k}" if path else str(k))] for k, v in node.items()]}
        if isinstance(node, list | tuple):
            return {"__list__": [walk(v, f"{path}.{i}" if path else str(i)) for i, v in enumerate(node)]}
        if node is None or isinstance(node, bool | int | float | str):
            return node
        raise CheckpointError(f"cannot store {type(node).__name__} at {path or '<root>'} without pickling it")

    return tensors, walk(state, prefix)


def unflatten_state(tensors: dict[str, torch.Tensor], skeleton: Any) -> Any:
    def build(node: Any) -> Any:
        if isinstance(node, dict):
            if "__tensor__" in node:
                key = node["__tensor__"]
                if key not in tensors:
                    raise CheckpointError(f"checkpoint is missing tensor {key!r}")
                return tensors[key]
            if "__dict__" in node:
                return {k: build(v) for k, v in node["__dict__"]}
            if "__list__" in node:
                return [build(v) for v in node["__list__"]]
        return node

    return build(skeleton)


def non_finite(tensors: dict[str, torch.Tensor], skeleton: Any = None) -> list[str]:
    """'key: N non-finite value(s)' for every floating tensor and every plain number that is NaN or inf."""
    found = []
    for key, tensor in tensors.items():
        if tensor.is_floating_point() or tensor.is_complex():
            bad = int((~torch.isfinite(tensor)).sum())
            if bad:
                found.append(f"{key}: {bad} non-finite value(s)")

    def walk(node: Any, path: str) -> None:
        if isinstance(node, float) and not math.isfinite(node):
            found.append(f"{path or '<root>'}: {node}")
        elif isinstance(node, dict):
            for k, v in node.get("__dict__", []) if "__dict__" in node else []:
                walk(v, f"{path}.{k}" if path else str(k))
            for i, v in enumerate(node.get("__list__", [])):
                walk(v, f"{path}.{i}" if path else str(i))

    walk(skeleton, "")
    return found


def _describe(problems: list[str], shown: int = 3) -> str:
    more = f" and {len(problems) - shown} more" if len(problems) > shown else ""
    return "; ".join(problems[:shown]) + more


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def save_checkpoint(directory: Path, step: int, state: dict, keep: int = DEFAULT_KEEP) -> Path:
    """Write ``state`` (nested dicts of tensors and plain values) as checkpoint ``step``; returns its directory.

    Raises NonFiniteStateError, writing nothing, when the state holds NaN or inf. Keeps the ``keep`` newest
    checkpoints (the one just written always among them)."""
    if keep < 1:
        raise ValueError(f"keep must be >= 1, got {keep}")
    directory = Path(directory)
    tensors, skeleton = flatten_state(state)
    if problems := non_finite(tensors, skeleton):
        raise NonFiniteStateError(f"not written: the state at step {step} is not finite ({_describe(problems)})")
    directory.mkdir(parents=True, exist_ok=True)
    tmp = directory / f"{TMP_PREFIX}{os.getpid()}-{step}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    save_file(tensors, str(tmp / TENSORS_FILE))
    (tmp / META_FILE).write_text(json.dumps({"step": step, "state": skeleton}))
    manifest = {"step": step, "sha256": {name: sha256_file(tmp / name) for name in CHECKSUMMED}}
    (tmp / MANIFEST_FILE).write_text(json.dumps(manifest, indent=1) + "\n")
    for name in (*CHECKSUMMED, MANIFEST_FILE):
        fsync_path(tmp / name)
    fsync_path(tmp)
    final = directory / f"{PREFIX}{step:09d}"
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    fsync_path(directory)
    atomic_write_text(directory / LATEST, final.name + "\n")
    # Prune by step among the others, never the one just written (a newer-named refused one must not push it out).
    others = sorted(p for p in directory.glob(f"{PREFIX}*") if p != final)
    for old in others[: max(len(others) - (keep - 1), 0)]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def verify_checkpoint(path: Path) -> None:
    """Raise CheckpointError unless every file matches the SHA-256 its manifest records."""
    try:
        manifest = json.loads((path / MANIFEST_FILE).read_text())
        expected = manifest["sha256"]
    except FileNotFoundError:
        raise CheckpointError(f"{path.name}: no {MANIFEST_FILE} (incomplete, or written before checksums)") from None
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise CheckpointError(f"{path.name}: unreadable {MANIFEST_FILE} ({err})") from None
    for name in CHECKSUMMED:
        try:
            actual = sha256_file(path / name)
        except OSError as err:
            raise CheckpointError(f"{path.name}: cannot read {name} ({err.strerror or err})") from None
        if actual != expected.get(name):
            raise CheckpointError(f"{path.name}: {name} does not match its SHA-256 in {MANIFEST_FILE} (corrupted)")


def load_checkpoint(path: Path) -> tuple[int, dict]:
    """One checkpoint directory as (step, state), after its checksums and finiteness are checked."""
    path = Path(path)
    verify_checkpoint(path)
    try:
        meta = json.loads((path / META_FILE).read_text())
        tensors = load_file(str(path / TENSORS_FILE))
        step, skeleton = int(meta["step"]), meta["state"]
    except Exception as err:  # OSError, JSON errors, and safetensors' own header errors alike
        raise CheckpointError(f"{path.name}: unreadable checkpoint ({err})") from err
    if problems := non_finite(tensors, skeleton):
        raise NonFiniteStateError(f"{path.name}: holds non-finite values ({_describe(problems)})")
    return step, unflatten_state(tensors, skeleton)


def step_of(name: str) -> int | None:
    """The update count a checkpoint's name carries (``ckpt-000001200`` -> 1200); None for another name."""
    digits = name.removeprefix(PREFIX)
    return int(digits) if name.startswith(PREFIX) and digits.isdigit() else None


def latest_name(directory: Path) -> str | None:
    """What LATEST names, or None when there is no LATEST."""
    latest = Path(directory) / LATEST
    if not latest.is_file():
        return None
    return latest.read_text().strip() or None


def load_newest_good(directory: Path, set_aside: bool = False) -> Loaded | None:
    """The newest checkpoint that passes every check (LATEST's first), or None when there is none at all.

    Each one passed over is in ``Loaded.refused`` with the reason. With ``set_aside`` (the learner), a refused one is
    renamed ``refused-ckpt-...`` (kept for inspection, out of rotation) and LATEST names the one loaded; when none
    is good nothing is renamed.
    Raises DanglingLatestError when LATEST names a checkpoint that is not there, and CheckpointError when
    checkpoints exist but none is good. Cleans interrupted writes."""
    directory = Path(directory)
    if not directory.is_dir():
        return None
    for leftover in directory.glob(f"{TMP_PREFIX}*"):
        shutil.rmtree(leftover, ignore_errors=True)
    candidates = sorted((p for p in directory.glob(f"{PREFIX}*") if p.is_dir()), reverse=True)
    named = latest_name(directory)
    if named is not None:
        if not (directory / named).is_dir():
            others = ", ".join(p.name for p in candidates) or "none"
            raise DanglingLatestError(
                f"{directory / LATEST} names {named}, which is not there (checkpoints present: {others}); restore "
                f"{named}, or write the name of one present into {LATEST}, or delete {LATEST} to resume from the "
                f"newest present (with none, the networks start afresh; the journal is replayed either way)"
            )
        if directory / named in candidates:  # LATEST first, then the older ones
            candidates.remove(directory / named)
            candidates.insert(0, directory / named)
    refused: list[tuple[str, str]] = []
    for path in candidates:
        try:
            step, state = load_checkpoint(path)
        except CheckpointError as err:
            refused.append((path.name, str(err)))
            continue
        if set_aside and refused:  # only once a good one is found: with none, everything stays as it was
            for name, _ in refused:
                shutil.rmtree(directory / f"{REFUSED_PREFIX}{name}", ignore_errors=True)  # an older refusal
                os.replace(directory / name, directory / f"{REFUSED_PREFIX}{name}")
            atomic_write_text(directory / LATEST, path.name + "\n")
        return Loaded(step, state, path, refused)
    if refused:
        raise CheckpointError(
            f"{directory}: no good checkpoint ({_describe([r for _, r in refused], 5)}); move the directory aside to "
            f"start the networks afresh (the journal is replayed)"
        )
    return None


def load_latest_checkpoint(directory: Path) -> tuple[int, dict] | None:
    """The newest good checkpoint as (step, state), or None when there is none (see load_newest_good)."""
    loaded = load_newest_good(directory)
    return None if loaded is None else (loaded.step, loaded.state)
