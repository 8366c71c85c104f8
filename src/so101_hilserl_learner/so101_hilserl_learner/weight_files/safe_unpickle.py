"""Loading a RoboBase snapshot (a torch.save pickle holding an OmegaConf config) without running code from it.

torch.load(weights_only=True) only rebuilds tensors and plain containers; every other class the pickle names must
be on our allowlist, and the allowlist maps each one (OmegaConf's DictConfig, ListConfig, nodes and metadata,
typing.Any, numpy scalars) to an inert stub that merely records what the pickle hands it. Any other global is
refused before unpickling starts (importing a snapshot must not execute code from the file: docs/architecture.md).
``plain`` turns the stubs back into plain Python; ``cfg_get`` reads the result by dotted path.
"""

from __future__ import annotations

import os
import pickle
import re
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from so101_hilserl_learner.weight_files.agent_file import CheckpointImportError

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
