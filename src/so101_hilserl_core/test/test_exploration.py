"""The run's one exploration schedule: parsing, validation, defaults per start, metadata, and the noise it drives."""

import json

import pytest
import torch

from so101_hilserl_core import exploration
from so101_hilserl_core.exploration import (
    DEFAULT_PRETRAINED_SCHEDULE,
    DEFAULT_SCRATCH_SCHEDULE,
    default_schedule,
    from_metadata,
    parse_schedule,
    resolve_schedule,
    sample_exploration,
    stddev,
    to_metadata,
)


def test_linear_schedule_over_environment_steps():
    assert stddev("linear(1.0,0.1,100000)", 0) == pytest.approx(1.0)
    assert stddev("linear(1.0,0.1,100000)", 50_000) == pytest.approx(0.55)
    assert stddev("linear(1.0,0.1,100000)", 100_000) == pytest.approx(0.1)
    assert stddev("linear(1.0,0.1,100000)", 10**9) == pytest.approx(0.1)  # held at the end
    assert stddev(" linear( 0.2 , 0.1 , 10000 ) ", 5_000) == pytest.approx(0.15)
    assert stddev("0.3", 123) == pytest.approx(0.3)


def test_defaults_per_start_are_the_references():
    # RoboBase rlbench/easy.yaml and drqv2 task/easy.yaml; the seed's fix for a pretrained start (facts 3b)
    assert DEFAULT_SCRATCH_SCHEDULE == "linear(1.0,0.1,100000)"
    assert DEFAULT_PRETRAINED_SCHEDULE == "linear(0.2,0.1,10000)"
    assert default_schedule(pretrained=False) == DEFAULT_SCRATCH_SCHEDULE
    assert default_schedule(pretrained=True) == DEFAULT_PRETRAINED_SCHEDULE


@pytest.mark.parametrize(
    "bad", ["", "fast", "linear(1.0,0.1)", "linear(1,0.1,0)", "linear(-1,0.1,10)", "linear(1,0.1,nan)", "-0.1", "inf"]
)
def test_bad_schedule_is_a_one_line_error_naming_the_parameter(bad):
    with pytest.raises(ValueError) as err:
        parse_schedule(bad, "parameter stddev_schedule")
    text = str(err.value)
    assert text.startswith("parameter stddev_schedule=") and "linear(start,end,duration)" in text and "\n" not in text


def test_resolve_schedule_parameter_then_carried_then_default():
    assert resolve_schedule("0.5", "linear(0.3,0.1,10)", pretrained=True) == "0.5"
    assert resolve_schedule("", "linear(0.3,0.1,10)", pretrained=False) == "linear(0.3,0.1,10)"
    assert resolve_schedule("", None, pretrained=True) == DEFAULT_PRETRAINED_SCHEDULE
    assert resolve_schedule("  ", None, pretrained=False) == DEFAULT_SCRATCH_SCHEDULE
    with pytest.raises(ValueError, match="parameter stddev_schedule="):
        resolve_schedule("linear(1,2)", None, pretrained=False)


def test_metadata_round_trip_and_bad_entries():
    metadata = to_metadata("linear(0.2,0.1,10000)", 1234)
    assert from_metadata(metadata) == ("linear(0.2,0.1,10000)", 1234)
    assert from_metadata({"format": "x"}) == (None, 0)
    bad_entries = [
        "not json",
        json.dumps({"environment_steps": 3}),
        json.dumps({"stddev_schedule": "linear(1,2)"}),
        json.dumps({"stddev_schedule": "0.1", "environment_steps": -1}),
    ]
    for bad in bad_entries:
        with pytest.raises(ValueError, match="agent.safetensors: metadata exploration"):
            from_metadata({exploration.METADATA_KEY: bad}, "agent.safetensors")


def test_sample_exploration_noise_has_the_scheduled_std():
    generator = torch.Generator().manual_seed(0)
    mean = torch.zeros(200_000, 4)
    std = stddev(DEFAULT_PRETRAINED_SCHEDULE, 5_000)  # 0.15
    noisy = sample_exploration(mean, std, None, generator)
    assert noisy.std().item() == pytest.approx(std, rel=0.02)
    clipped = sample_exploration(mean, 1.0, 0.3, generator)
    assert clipped.abs().max().item() <= 0.3 + 1e-6
    assert sample_exploration(torch.full((1000, 4), 0.99), 1.0, None, generator).max().item() <= 1.0
