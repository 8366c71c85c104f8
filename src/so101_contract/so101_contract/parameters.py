"""The one way a node declares its parameters: typed, described, ranged, read-only, validated at start.

A node's parameters are the settings of its config dataclass (so101_contract.settings, the one source of each
default, description and bounds); the node declares them all and gets the config back:

    config = declare_config(node, ActorConfig)

(``declare_all(node, table)`` takes a {name: (default, description, bounds)} table, ``declare`` one parameter.)
The default's type is the parameter's type (``ros2 param describe`` shows it); bounds are a (min, max) pair of the
default's type (an rcl_interfaces FloatingPointRange or IntegerRange, so ROS itself refuses values outside) or, for
a string, a tuple of the allowed values. A value ROS refuses, or a string outside its choices, raises ParameterError,
whose message is one line naming the parameter, the value given and what is allowed; node_main turns it into exit
code 2.

A parameter given to a node that it does not declare (a typo, or another node's parameter) would be ignored by ROS;
``check_given(node, argv)``, which node_main runs once the node is built, refuses it with ParameterError naming the
node, the parameter and the closest declared name. Which given names it checks:
- ``-p name:=value`` (and ``-p node:name:=value`` for this node): the process runs this one node, so always checked.
- params-file sections whose key names this node by its own name (``actor``, ``/actor``, ``/**/actor``, ``/ns/actor``,
  as launch_ros writes a Node's ``parameters`` dict): checked.
- sections for every node (``/**``, ``/**/*``): not checked; they carry settings for many nodes and each takes what it
  declares, so a name there that this node lacks is not an error.
ROS's own parameters are declared by rclpy itself (use_sim_time, start_type_description_service) or accepted by
prefix (``qos_overrides.``, declared only for publishers that allow overrides); a node that declares more after its
constructor lists their prefixes in ``parameters_declared_later``.

Two loose readings, because launch files and command lines cannot mark a type: an integer given for a float
parameter (``fps:=30``) is that float, and an integer given for a string parameter (``source:=0``) is its text.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, ParameterType
from rclpy.exceptions import InvalidParameterTypeException, ParameterException
from rclpy.node import Node

from so101_contract import settings
from so101_contract.cli import did_you_mean
from so101_contract.settings import ParameterError

_TYPES = {
    bool: ParameterType.PARAMETER_BOOL,
    int: ParameterType.PARAMETER_INTEGER,
    float: ParameterType.PARAMETER_DOUBLE,
    str: ParameterType.PARAMETER_STRING,
}
_KINDS = {bool: "boolean", int: "integer", float: "float", str: "string"}


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


def declare_config(node: Node, config: type, **fixed):
    """Declare every setting of a config dataclass (so101_contract.settings) as a read-only ROS parameter and return
    the config built from the values given; ``fixed`` settings are not parameters of this node (another parameter
    or the node decides them). Raises ParameterError naming a bad value."""
    table = {name: spec for name, spec in settings.table(config).items() if name not in fixed}
    return settings.build(config, {**declare_all(node, table), **fixed})


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


ROS_PARAMETER_PREFIXES = ("qos_overrides.",)  # declared by rclpy only for publishers/subscriptions that allow them


def check_given(node: Node, argv: Sequence[str]) -> None:
    """ParameterError for the first parameter given to this node (``-p``, its own params-file section) that it does
    not declare; see the module docstring for which given names are checked."""
    accepted = (*ROS_PARAMETER_PREFIXES, *getattr(node, "parameters_declared_later", ()))
    declared = [name for name in node.list_parameters([], 0).names if not name.startswith(accepted)]
    for name, source in given_parameters(argv, node.get_fully_qualified_name()).items():
        if node.has_parameter(name) or name.startswith(accepted):
            continue
        raise ParameterError(
            f"parameter {name} (from {source}) is not a parameter of node {node.get_name()}"
            f"{did_you_mean(name, declared)}"
        )


def given_parameters(argv: Sequence[str], node_fqn: str) -> dict[str, str]:
    """{name: where it was given} of the parameters ``argv``'s --ros-args give this node by name or with -p."""
    given: dict[str, str] = {}
    for flag, value in _ros_arguments(argv):
        if flag in ("-p", "--param"):
            rule = value.split(":=", 1)[0]
            target, _, name = rule.rpartition(":")
            if not target or _names_node(target, node_fqn):
                given.setdefault(name, f"-p {value}")
        elif flag == "--params-file":
            for name in _file_parameters(Path(value), node_fqn):
                given.setdefault(name, value)
    return given


def _ros_arguments(argv: Sequence[str]) -> Iterable[tuple[str, str]]:
    """(flag, value) of every -p/--param/--params-file inside the --ros-args ... [--] blocks."""
    inside = False
    args = list(argv)
    for i, arg in enumerate(args):
        if arg == "--ros-args":
            inside = True
        elif arg == "--":
            inside = False
        elif inside and arg in ("-p", "--param", "--params-file") and i + 1 < len(args):
            yield arg, args[i + 1]


def _file_parameters(path: Path, node_fqn: str) -> list[str]:
    """The parameter names of the sections of a params file that name this node (not the all-node sections)."""
    import yaml

    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError):
        return []  # rcl already refused a file it cannot read
    names: list[str] = []
    for key, section in data.items() if isinstance(data, dict) else ():
        if isinstance(section, dict) and _names_node(str(key), node_fqn):
            names.extend(_flatten(section.get("ros__parameters") or {}))
    return names


def _names_node(key: str, node_fqn: str) -> bool:
    """A section key (or -p node prefix) that matches this node and ends in its own name, not a wildcard."""
    key = key if key.startswith("/") else "/" + key
    if key.rsplit("/", 1)[-1] in ("*", "**"):
        return False
    pattern = re.escape(key).replace(r"/\*\*", r"(/[^/]+)*").replace(r"/\*", r"/[^/]+")
    return re.fullmatch(pattern, node_fqn) is not None


def _flatten(parameters: dict, prefix: str = "") -> list[str]:
    """Nested YAML maps as ROS names them: ``a: {b: 1}`` is parameter ``a.b``."""
    names = []
    for key, value in parameters.items():
        name = f"{prefix}{key}"
        names.extend(_flatten(value, name + ".") if isinstance(value, dict) else [name])
    return names
