"""so101_contract.parameters on a real rclpy node (no graph needed): types, ranges, choices, read-only, the loose
integer readings, and one-line errors that name the parameter, the value and what is allowed."""

import pytest
import rclpy
from rcl_interfaces.msg import ParameterType
from rclpy.node import Node
from rclpy.parameter import Parameter

from so101_contract.parameters import ParameterError, check_given, declare, declare_all, expected

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


@pytest.fixture
def node_with_args(tmp_path):
    """make(name, *ros_args, namespace=""): a node in its own context initialised with ``ros_args`` (as the node
    process's command line), the TABLE declared; returns (node, argv)."""
    made = []

    def make(name: str, *ros_args: str, namespace: str = ""):
        argv = ["node", "--ros-args", *ros_args]
        context = rclpy.Context()
        rclpy.init(context=context, args=argv)
        node = Node(name, namespace=namespace, context=context)
        made.append((node, context))
        declare_all(node, TABLE)
        return node, argv

    yield make
    for node, context in made:
        node.destroy_node()
        context.try_shutdown()


def params_file(tmp_path, text: str) -> str:
    path = tmp_path / f"params{len(list(tmp_path.glob('params*')))}.yaml"
    path.write_text(text)
    return str(path)


def test_a_given_parameter_the_node_does_not_declare_is_refused_naming_the_closest(node_with_args, tmp_path):
    node, argv = node_with_args("actor", "-p", "rate_hz:=20.0", "-p", "stepz:=5")
    with pytest.raises(ParameterError) as refused:
        check_given(node, argv)
    assert (
        str(refused.value) == "parameter stepz (from -p stepz:=5) is not a parameter of node actor; did you mean steps?"
    )

    own = params_file(tmp_path, "/**/actor:\n  ros__parameters:\n    mode: ik\n    nested: {rate: 1.0}\n")
    node, argv = node_with_args("actor", "--params-file", own)
    with pytest.raises(
        ParameterError, match=rf"^parameter nested.rate \(from {own}\) is not a parameter of node actor"
    ):
        check_given(node, argv)
    node, argv = node_with_args("actor", "-p", "actor:colour:=red")  # -p with this node's name as prefix
    with pytest.raises(ParameterError, match=r"^parameter colour \(from -p actor:colour:=red\) .* node actor$"):
        check_given(node, argv)
    ns = params_file(tmp_path, "/robot1/actor:\n  ros__parameters:\n    steps: 5\n    modes: sim\n")
    node, argv = node_with_args("actor", "--params-file", ns, namespace="robot1")
    with pytest.raises(ParameterError, match="parameter modes .* node actor; did you mean mode"):
        check_given(node, argv)


def test_sections_for_every_node_other_nodes_sections_and_ros_parameters_are_not_refused(node_with_args, tmp_path):
    shared = params_file(
        tmp_path,
        "/**:\n  ros__parameters:\n    batch_size: 256\n    use_sim_time: false\n"  # every node: each takes its own
        "/**/learner:\n  ros__parameters:\n    utd_ratio: 1.0\n"  # another node's section
        "/**/actor:\n  ros__parameters:\n    steps: 5\n    qos_overrides./clock.subscription.depth: 1\n",
    )
    node, argv = node_with_args(
        "actor", "--params-file", shared, "-p", "start_type_description_service:=false", "-p", "learner:utd:=2.0"
    )
    check_given(node, argv)
    assert node.get_parameter("steps").value == 5
    node, argv = node_with_args("actor", "--params-file", shared, namespace="other")  # /**/actor: any namespace
    check_given(node, argv)
    node, argv = node_with_args(
        "actor", "--params-file", params_file(tmp_path, "/robot2/actor:\n  ros__parameters:\n    x: 1\n")
    )
    check_given(node, argv)  # a section for the actor of another namespace
