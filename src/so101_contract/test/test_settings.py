"""Config dataclasses as the one source of parameters: tables flatten nested configs, build rebuilds them, a
name declared twice is refused, and declare_config turns them into typed, ranged ROS parameters."""

from dataclasses import dataclass, field

import pytest
import rclpy
from rclpy.parameter import Parameter

from so101_contract import settings
from so101_contract.parameters import ParameterError, declare_config


@dataclass(frozen=True)
class Inner:
    steps: int = settings.setting(100, "steps per episode", (1, 1000))
    derived: float = 0.5  # not a setting


@dataclass(frozen=True)
class Outer:
    rate_hz: float = settings.setting(10.0, "rate (Hz)", (1.0, 100.0))
    mode: str = settings.setting("sim", "where", ("sim", "real"))
    inner: Inner = field(default_factory=Inner)


@dataclass(frozen=True)
class Tuned:
    inner: Inner = field(default_factory=lambda: Inner(derived=2.0))  # a factory with its own plain values


@dataclass(frozen=True)
class Clash:
    steps: int = settings.setting(5, "another steps", None)
    inner: Inner = field(default_factory=Inner)


def test_table_flattens_nested_configs_and_skips_plain_fields():
    assert settings.table(Outer) == {
        "rate_hz": (10.0, "rate (Hz)", (1.0, 100.0)),
        "mode": ("sim", "where", ("sim", "real")),
        "steps": (100, "steps per episode", (1, 1000)),
    }
    assert settings.defaults(Outer)["steps"] == 100


def test_build_and_replace_rebuild_nested_configs():
    built = settings.build(Outer, {"steps": 7, "mode": "real"})
    assert built == Outer(mode="real", inner=Inner(steps=7))
    assert settings.replace(built, rate_hz=20.0) == Outer(rate_hz=20.0, mode="real", inner=Inner(steps=7))
    assert settings.table(built)["steps"][0] == 7  # an instance gives its own values
    with pytest.raises(KeyError, match="no setting stepz"):
        settings.build(Outer, {"stepz": 1})


def test_build_keeps_what_a_nested_factory_set():
    assert settings.build(Tuned, {"steps": 3}).inner == Inner(steps=3, derived=2.0)


def test_a_name_declared_twice_is_refused():
    with pytest.raises(ValueError, match="'steps' is declared twice"):
        settings.table(Clash)


@pytest.fixture
def node():
    rclpy.init()
    made = []

    def make(**overrides):
        n = rclpy.create_node(
            "settings_probe", parameter_overrides=[Parameter(k, value=v) for k, v in overrides.items()]
        )
        made.append(n)
        return n

    yield make
    for n in made:
        n.destroy_node()
    rclpy.shutdown()


def test_declare_config_gives_the_config_and_describes_each_parameter(node):
    n = node(steps=42)
    config = declare_config(n, Outer)
    assert config == Outer(inner=Inner(steps=42))
    described = n.describe_parameter("rate_hz")
    assert described.description == "rate (Hz)" and described.read_only
    assert described.floating_point_range[0].to_value == 100.0


def test_declare_config_refuses_a_value_out_of_range_in_one_line(node):
    with pytest.raises(ParameterError, match=r"parameter steps=5000 is out of range; expected integer in \[1, 1000\]"):
        declare_config(node(steps=5000), Outer)


def test_fixed_settings_are_not_parameters(node):
    n = node()
    config = declare_config(n, Outer, mode="real")
    assert config.mode == "real" and not n.has_parameter("mode")
