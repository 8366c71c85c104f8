"""Crash-safe learner checkpoints: safetensors + JSON, written atomically, never pickled.

Layout under ``<run_dir>/checkpoints``:

    ckpt-000001200/state.safetensors   every tensor (networks, optimiser moments) under a flat key
    ckpt-000001200/state.json          everything else (counters, config, optimiser hyper-parameters), with
                                       {"__tensor__": key} where a tensor sat in the nested state
    LATEST                             the name of the newest complete checkpoint

A checkpoint is written into a temporary directory, fsync'ed, renamed into place (atomic on POSIX), and only then
named in LATEST (itself replaced atomically). A kill at any moment leaves either the previous checkpoint or the new
one, never a half-written file that loads; leftovers of an interrupted write are removed at the next start.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from so101_contract.files import atomic_write_text, fsync_path

TENSORS_FILE = "state.safetensors"
META_FILE = "state.json"
LATEST = "LATEST"
PREFIX = "ckpt-"
TMP_PREFIX = ".tmp-"


class CheckpointError(RuntimeError):
    pass


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


def save_checkpoint(directory: Path, step: int, state: dict, keep: int = 3) -> Path:
    """Write ``state`` (nested dicts of tensors and plain values) as checkpoint ``step``; returns its directory."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tensors, skeleton = flatten_state(state)
    tmp = directory / f"{TMP_PREFIX}{os.getpid()}-{step}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    save_file(tensors, str(tmp / TENSORS_FILE))
    (tmp / META_FILE).write_text(json.dumps({"step": step, "state": skeleton}))
    for name in (TENSORS_FILE, META_FILE):
        fsync_path(tmp / name)
    fsync_path(tmp)
    final = directory / f"{PREFIX}{step:09d}"
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    fsync_path(directory)
    atomic_write_text(directory / LATEST, final.name + "\n")
    for old in sorted(directory.glob(f"{PREFIX}*"))[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def _load_dir(path: Path) -> tuple[int, dict]:
    try:
        meta = json.loads((path / META_FILE).read_text())
        tensors = load_file(str(path / TENSORS_FILE))
    except Exception as err:  # OSError, JSON errors, and safetensors' own header errors alike
        raise CheckpointError(f"{path}: unreadable checkpoint ({err})") from err
    return int(meta["step"]), unflatten_state(tensors, meta["state"])


def load_latest_checkpoint(directory: Path) -> tuple[int, dict] | None:
    """The newest complete checkpoint as (step, state), or None when there is none. Cleans interrupted writes."""
    directory = Path(directory)
    if not directory.is_dir():
        return None
    for leftover in directory.glob(f"{TMP_PREFIX}*"):
        shutil.rmtree(leftover, ignore_errors=True)
    candidates = sorted(directory.glob(f"{PREFIX}*"), reverse=True)
    latest = directory / LATEST
    if latest.is_file():
        named = directory / latest.read_text().strip()
        if named in candidates:  # try LATEST first, then older complete ones
            candidates.remove(named)
            candidates.insert(0, named)
    errors = []
    for path in candidates:
        try:
            return _load_dir(path)
        except CheckpointError as err:
            errors.append(str(err))
    if errors:
        raise CheckpointError("no readable checkpoint: " + "; ".join(errors))
    return None
