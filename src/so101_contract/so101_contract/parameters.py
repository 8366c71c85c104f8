"""The one way a node declares its parameters: typed, described, ranged, read-only, validated at start.

A node lists its parameters once (name, default, description, bounds) and reads them in its constructor:

    PARAMETERS = {"rate_hz": (10.0, "control rate (Hz)", (1.0, 100.0)), "mode": ("sim", "sim or ik", ("sim", "ik"))}
    values = declare_all(node, PARAMETERS)

or one at a time: ``declare(node, "rate_hz", 10.0, "control rate (Hz)", (1.0, 100.0))``. The default's type is
the parameter's type (``ros2 param describe`` shows it); bounds are a (min, max) pair of the default's type (an
rcl_interfaces FloatingPointRange or IntegerRange, so ROS itself refuses values outside) or, for a string, a tuple
of the allowed values. A value ROS refuses, or a string outside its choices, raises ParameterError, whose message
is one line naming the parameter, the value given and what is allowed; node_main turns it into exit code 2.

Two loose readings, because launch files and command lines cannot mark a type: an integer given for a float
parameter (``fps:=30``) is that float, and an integer given for a string parameter (``source:=0``) is its text.
"""

from __future__ import annotations

from collections.abc import Mapping

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, ParameterType
from rclpy.exceptions import InvalidParameterTypeException, ParameterException
from rclpy.node import Node

_TYPES = {
    bool: ParameterType.PARAMETER_BOOL,
    int: ParameterType.PARAMETER_INTEGER,
    float: ParameterType.PARAMETER_DOUBLE,
    str: ParameterType.PARAMETER_STRING,
}
_KINDS = {bool: "boolean", int: "integer", float: "float", str: "string"}


class ParameterError(ValueError):
    """A parameter value the node cannot run with; the message names the parameter, the value and what is allowed."""


def descriptor(default, description: str, bounds=None, read_only: bool = True) -> ParameterDescriptor:
    """The ROS descriptor of a parameter: its type (the default's), description, range or choices, read-only."""
    d = ParameterDescriptor(description=description, read_only=read_only)
    if type(default) in _TYPES:
        d.type = _TYPES[type(default)]
    if _is_choices(bounds):
        d.additional_constraints = f"one of {', '.join(bounds)}"
    elif isinstance(default, float) and bounds is not None:
        d.floating_point_range = [FloatingPointRange(from_value=float(bounds[0]), to_value=float(bounds[1]))]
    elif isinstance(default, int) and not isinstance(default, bool) and bounds is not None:
        d.integer_range = [IntegerRange(from_value=int(bounds[0]), to_value=int(bounds[1]), step=1)]
    return d


def declare(node: Node, name: str, default, description: str, bounds=None, *, read_only: bool = True):
    """Declare one parameter on ``node`` and return its value. Raises ParameterError."""
    _check_bounds(name, default, bounds)
    try:
        value = node.declare_parameter(name, default, descriptor(default, description, bounds, read_only)).value
    except InvalidParameterTypeException:
        value = _declare_loosely(node, name, default, description, bounds, read_only)
    except ParameterException:  # out of range
        raise ParameterError(f"parameter {name}{_given(node, name)} is out of range; expected "
                             f"{expected(default, bounds)}") from None  # fmt: skip
    if _is_choices(bounds) and value not in bounds:
        raise ParameterError(f"parameter {name}={value!r} is not allowed; expected {expected(default, bounds)}")
    return value


def declare_all(node: Node, table: Mapping[str, tuple]) -> dict:
    """Declare every parameter of a table {name: (default, description, bounds or None)}; {name: value}."""
    return {name: declare(node, name, *spec) for name, spec in table.items()}


def expected(default, bounds=None) -> str:
    """What a parameter accepts, in words ("float in [1.0, 100.0]", "one of sim, ik")."""
    if _is_choices(bounds):
        return f"one of {', '.join(bounds)}"
    kind = _KINDS.get(type(default), type(default).__name__)
    return f"{kind} in [{bounds[0]}, {bounds[1]}]" if bounds is not None else kind


def _declare_loosely(node: Node, name: str, default, description: str, bounds, read_only: bool):
    """The override has another type than the default: take an integer as a float or as a string, refuse the rest."""
    override = getattr(node, "_parameter_overrides", {}).get(name)
    given = None if override is None else override.value
    loose = isinstance(given, int) and not isinstance(given, bool) and isinstance(default, (float, str))
    if not loose or isinstance(default, bool):
        raise ParameterError(
            f"parameter {name}={given!r} has the wrong type; expected {expected(default, bounds)}"
        ) from None
    value = float(given) if isinstance(default, float) else str(given)
    if isinstance(default, float) and bounds is not None and not bounds[0] <= value <= bounds[1]:
        raise ParameterError(f"parameter {name}={given!r} is out of range; expected {expected(default, bounds)}")
    d = ParameterDescriptor(description=description, read_only=read_only, dynamic_typing=True)
    node.declare_parameter(name, default, d)
    return value


def _given(node: Node, name: str) -> str:
    override = getattr(node, "_parameter_overrides", {}).get(name)
    return f"={override.value!r}" if override is not None else ""


def _is_choices(bounds) -> bool:
    return isinstance(bounds, tuple) and len(bounds) > 0 and all(isinstance(b, str) for b in bounds)


def _check_bounds(name: str, default, bounds) -> None:
    """A programming error in the node's table, caught at declaration rather than by a confusing ROS message."""
    if bounds is None or _is_choices(bounds):
        if _is_choices(bounds) and default not in bounds:
            raise ValueError(f"parameter {name}: default {default!r} is not one of its choices {bounds}")
        return
    if not (isinstance(bounds, tuple) and len(bounds) == 2 and isinstance(default, (int, float))):
        raise ValueError(f"parameter {name}: bounds must be (min, max) of a number, or string choices; got {bounds!r}")
    if not bounds[0] <= default <= bounds[1]:
        raise ValueError(f"parameter {name}: default {default!r} is outside its range {bounds}")
