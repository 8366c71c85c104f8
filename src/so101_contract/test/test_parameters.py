"""so101_contract.parameters on a real rclpy node (no graph needed): types, ranges, choices, read-only, the loose
integer readings, and one-line errors that name the parameter, the value and what is allowed."""

import pytest
import rclpy
from rcl_interfaces.msg import ParameterType
from rclpy.node import Node
from rclpy.parameter import Parameter

from so101_contract.parameters import ParameterError, declare, declare_all, expected

TABLE = {
    "rate_hz": (10.0, "control rate (Hz)", (1.0, 100.0)),
    "steps": (100, "steps per episode", (1, 1000)),
    "mode": ("sim", "sim or ik", ("sim", "ik")),
    "source": ("0", "camera index or path", None),
    "enabled": (True, "on or off", None),
}


@pytest.fixture
def make_node():
    context = rclpy.Context()
    rclpy.init(context=context, args=[])
    nodes = []

    def make(**overrides):
        params = [Parameter(name, value=value) for name, value in overrides.items()]
        node = Node(f"param_test_{len(nodes)}", context=context, parameter_overrides=params)
        nodes.append(node)
        return node

    yield make
    for node in nodes:
        node.destroy_node()
    context.try_shutdown()


def test_defaults_are_declared_typed_described_and_read_only(make_node):
    node = make_node()
    assert declare_all(node, TABLE) == {"rate_hz": 10.0, "steps": 100, "mode": "sim", "source": "0", "enabled": True}
    rate = node.describe_parameter("rate_hz")
    assert rate.type == ParameterType.PARAMETER_DOUBLE and rate.read_only and rate.description == "control rate (Hz)"
    assert (rate.floating_point_range[0].from_value, rate.floating_point_range[0].to_value) == (1.0, 100.0)
    assert node.describe_parameter("steps").integer_range[0].to_value == 1000
    assert "one of sim, ik" in node.describe_parameter("mode").additional_constraints
    assert not node.set_parameters([Parameter("rate_hz", value=20.0)])[0].successful  # read-only


def test_overrides_within_bounds_are_taken(make_node):
    node = make_node(rate_hz=20.0, steps=5, mode="ik")
    values = declare_all(node, TABLE)
    assert (values["rate_hz"], values["steps"], values["mode"]) == (20.0, 5, "ik")


def test_an_integer_is_taken_for_a_float_or_a_string(make_node):
    node = make_node(rate_hz=30, source=2)
    assert declare(node, "rate_hz", *TABLE["rate_hz"]) == 30.0
    assert isinstance(declare(node, "source", *TABLE["source"]), str)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"rate_hz": 0.5}, "parameter rate_hz=0.5 is out of range; expected float in [1.0, 100.0]"),
        ({"rate_hz": 500}, "parameter rate_hz=500 is out of range; expected float in [1.0, 100.0]"),
        ({"steps": 0}, "parameter steps=0 is out of range; expected integer in [1, 1000]"),
        ({"steps": 2.5}, "parameter steps=2.5 has the wrong type; expected integer in [1, 1000]"),
        ({"mode": "fast"}, "parameter mode='fast' is not allowed; expected one of sim, ik"),
        ({"enabled": 1}, "parameter enabled=1 has the wrong type; expected boolean"),
        ({"rate_hz": "fast"}, "parameter rate_hz='fast' has the wrong type; expected float in [1.0, 100.0]"),
    ],
)
def test_a_refused_value_names_the_parameter_the_value_and_what_is_allowed(make_node, overrides, message):
    node = make_node(**overrides)
    with pytest.raises(ParameterError) as refused:
        declare_all(node, TABLE)
    assert str(refused.value) == message
    assert "\n" not in str(refused.value)


def test_a_bad_table_is_a_programming_error_at_declaration(make_node):
    node = make_node()
    with pytest.raises(ValueError, match="outside its range"):
        declare(node, "rate", 0.0, "rate", (1.0, 2.0))
    with pytest.raises(ValueError, match="not one of its choices"):
        declare(node, "mode2", "x", "mode", ("sim", "ik"))


def test_expected_in_words():
    assert expected(1.0, (0.0, 2.0)) == "float in [0.0, 2.0]"
    assert expected("a", ("a", "b")) == "one of a, b"
    assert expected(True) == "boolean"
