"""One frozen dataclass per component is the one source of its parameters: each field's default, description and
bounds are written once, as ``setting(...)`` field metadata, and everything else is derived from the class: the
ROS parameters a node declares (``so101_contract.parameters.declare_config``), the launch arguments and CLIs, the
documentation. No ROS import here, so the core's and the learner's configs stay plain Python.

    @dataclass(frozen=True)
    class EpisodeConfig:
        max_steps: int = setting(100, "steps per episode", (1, 100_000))

A field whose default is another config dataclass (``field(default_factory=EpisodeConfig)``) nests it: its settings
are the parent's too, under their own names (one flat namespace per node, so a name means one thing). A field
without ``setting`` metadata is not a parameter (derived or internal). Bounds: (min, max) of a number, or a tuple of
the allowed strings.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

_META = "so101_setting"


class ParameterError(ValueError):
    """A parameter value the node cannot run with; the message names the parameter, the value and what is allowed.
    Defined here, without ROS, so plain-Python cores (the learner's, the sim's) raise it too."""


def setting(default: Any, description: str, bounds: tuple | None = None) -> Any:
    """A parameter field: its default, its one-line description and its bounds, written once."""
    return dataclasses.field(default=default, metadata={_META: (description, bounds)})


def is_config(value_or_type: Any) -> bool:
    return dataclasses.is_dataclass(value_or_type)


def table(config: Any) -> dict[str, tuple]:
    """{name: (default, description, bounds)} of every setting of a config class or instance, nested configs
    flattened; an instance gives its own values as the defaults. ValueError when two settings share a name."""
    out: dict[str, tuple] = {}
    instance = config if not isinstance(config, type) else None
    for f in dataclasses.fields(config):
        value = getattr(instance, f.name) if instance is not None else _default(f)
        if _META in f.metadata:
            description, bounds = f.metadata[_META]
            _add(out, f.name, (value, description, bounds), config)
        elif is_config(value):
            for name, spec in table(value).items():
                _add(out, name, spec, config)
    return out


def defaults(config: type) -> dict[str, Any]:
    """{name: default} of a config class's settings."""
    return {name: spec[0] for name, spec in table(config).items()}


def build(config: type, values: Mapping[str, Any]):
    """An instance of ``config`` from flat {name: value}; settings not given keep their defaults. KeyError for a
    name that is not a setting of the class."""
    unknown = set(values) - set(table(config))
    if unknown:
        raise KeyError(f"{config.__name__} has no setting {', '.join(sorted(unknown))}")
    return _build(config, dict(values))


def replace(config: Any, **values: Any):
    """A copy of a config instance with flat settings changed (nested ones found by name)."""
    current = {name: spec[0] for name, spec in table(config).items()}
    return build(type(config), {**current, **values})


def _build(config: type, values: dict[str, Any], base: Any = None):
    """``config`` from ``values``; a nested config starts from its field's default instance (a factory that sets
    other values than its class's defaults keeps them), ``base`` for the nested ones."""
    kwargs = {}
    for f in dataclasses.fields(config):
        if not f.init:
            continue
        if _META in f.metadata:
            if f.name in values:
                kwargs[f.name] = values[f.name]
        else:
            default = getattr(base, f.name) if base is not None else _default(f)
            if is_config(default):
                kwargs[f.name] = _build(type(default), values, default)
    return dataclasses.replace(base, **kwargs) if base is not None else config(**kwargs)


def _default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return None


def _add(out: dict, name: str, spec: tuple, config: Any) -> None:
    if name in out:
        owner = config if isinstance(config, type) else type(config)
        raise ValueError(f"{owner.__name__}: setting {name!r} is declared twice in its nested configs")
    out[name] = spec
