"""The actor's parameters, the settings of its one config (actor_config.ActorConfig and the configs nested in it):
declared read-only with type, range and description; a bad value is refused with one line naming the parameter, and
the node process exits 2."""

import pytest
import rclpy
from rclpy.context import Context
from rclpy.parameter import Parameter

from so101_contract import settings
from so101_contract.parameters import ParameterError, declare_config
from so101_hilserl_actor.actor_config import ActorConfig, clock_problem, network_config
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
    node = make_node(max_steps=40, max_joint_step=0.2, num_explore_steps=7, reset_max_iterations=30, seed=5)
    config = declare_config(node, ActorConfig)
    names = settings.table(ActorConfig)
    assert {"control_rate_hz", "max_steps", "max_frame_age_s", "max_joint_step", "num_explore_steps", "reset_mode",
            "reset_stuck_iterations", "wait_for_subscribers", "preprocessing"} <= set(names)  # fmt: skip
    for name in names:
        descriptor = node.describe_parameter(name)
        assert descriptor.read_only and descriptor.description, name
    assert node.describe_parameter("control_rate_hz").floating_point_range[0].to_value == 100.0
    assert node.describe_parameter("max_steps").integer_range[0].from_value == 1
    # Each given value lands in the nested config that uses it; the rest keep their one default.
    assert (config.control.episode.max_steps, config.control.action.max_joint_step) == (40, 0.2)
    assert (config.control.exploration.num_explore_steps, config.reset.reset_max_iterations) == (7, 30)
    assert (config.control.seed, config.control.period_s, config.control.episode.max_frame_age_s) == (5, 0.1, 0.25)
    assert config.reset.reset_stuck_iterations == 15


def test_the_defaults_are_the_graphs():
    defaults = settings.defaults(ActorConfig)
    assert (defaults["num_explore_steps"], defaults["max_frame_age_s"], defaults["max_joint_step"]) == (500, 0.25, 0.3)
    assert defaults["control_rate_hz"] == 10.0 and defaults["reset_mode"] == "sim"


def test_lockstep_needs_simulated_time_and_network_changes_the_policy_sizes():
    lockstep = settings.replace(ActorConfig(), lockstep=True)
    assert "use_sim_time" in clock_problem(lockstep, use_sim_time=False)
    assert clock_problem(lockstep, use_sim_time=True) == "" and clock_problem(ActorConfig(), False) == ""
    small = network_config(settings.replace(ActorConfig(), network='{"image_size": 64}'))
    assert small.image_size == 64 and network_config(ActorConfig()).image_size != 64


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
        declare_config(make_node(**override), ActorConfig)


def test_the_node_exits_2_with_one_line_naming_the_parameter(processes):
    actor = processes.start_module("so101_hilserl_actor.actor_node", "--ros-args", "-p", "swap_weights_at:=sometimes",
                                   name="actor")  # fmt: skip
    wait_until(lambda: not actor.alive(), 60, "the actor to refuse its parameters")
    assert actor.popen.returncode == 2
    output = actor.output()
    assert "parameter swap_weights_at='sometimes' is not allowed; expected one of episode, step" in output
    assert "Traceback" not in output
