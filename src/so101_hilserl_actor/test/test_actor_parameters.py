"""The actor's parameters: declared read-only with type, range and description; a bad value is refused with one line
naming the parameter, and the node process exits 2."""

import pytest
import rclpy
from rclpy.context import Context
from rclpy.parameter import Parameter

from so101_contract.parameters import ParameterError
from so101_hilserl_actor.actor_parameters import PARAMETERS, control_config, declare, reset_config
from so101_testing.graph import wait_until


@pytest.fixture
def make_node():
    context = Context()
    rclpy.init(context=context)
    nodes = []

    def make(**overrides):
        params = [Parameter(name, value=value) for name, value in overrides.items()]
        node = rclpy.create_node("actor", context=context, parameter_overrides=params)
        nodes.append(node)
        return node

    yield make
    for node in nodes:
        node.destroy_node()
    rclpy.try_shutdown(context=context)


def test_every_parameter_is_declared_read_only_with_a_description_and_its_range(make_node):
    node = make_node()
    values = declare(node)
    assert set(values) == set(PARAMETERS)
    for name in PARAMETERS:
        descriptor = node.describe_parameter(name)
        assert descriptor.read_only and descriptor.description, name
    assert node.describe_parameter("control_rate_hz").floating_point_range[0].to_value == 100.0
    assert node.describe_parameter("max_steps").integer_range[0].from_value == 1
    config = control_config(values)
    assert (config.period_s, config.episode.max_steps, config.episode.failure_penalty) == (0.1, 100, 0.0)
    assert reset_config(values).max_iterations == 100


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ({"control_rate_hz": 500.0}, "control_rate_hz"),  # out of range
        ({"max_steps": 0}, "max_steps"),
        ({"failure_penalty": -1.0}, "failure_penalty"),
        ({"reset_mode": "teleport"}, "reset_mode"),  # not one of the choices
        ({"max_episodes": 2.5}, "max_episodes"),  # wrong type
    ],
)
def test_bad_values_are_refused_naming_the_parameter(make_node, override, named):
    with pytest.raises(ParameterError, match=f"^parameter {named}"):
        declare(make_node(**override))


def test_the_node_exits_2_with_one_line_naming_the_parameter(processes):
    actor = processes.start_module("so101_hilserl_actor.actor_node", "--ros-args", "-p", "swap_weights_at:=sometimes",
                                   name="actor")  # fmt: skip
    wait_until(lambda: not actor.alive(), 60, "the actor to refuse its parameters")
    assert actor.popen.returncode == 2
    output = actor.output()
    assert "parameter swap_weights_at='sometimes' is not allowed; expected one of episode, step" in output
    assert "Traceback" not in output
