"""The run's one exploration schedule: the std of DrQ-v2's Gaussian noise as a function of environment steps.

As in DrQ-v2, acting (the actor's noise) and learning (the target policy's and the actor loss's noise) read one
schedule at the same step: the number of committed training transitions the learner has received (evaluation
episodes excluded), which it sends with the schedule string in every PolicyWeights message (``environment_steps``,
``stddev_schedule``). ``stddev(schedule, step)`` is that one reading. Schedule strings are RoboBase's/DrQ-v2's: a
constant ``"0.2"`` or ``"linear(start,end,duration)"``; the defaults per start are DEFAULT_*_SCHEDULE.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass

import torch

from so101_contract.settings import setting

# The defaults per start (the learner's ``stddev_schedule`` parameter overrides both). From scratch: RoboBase's and
# drqv2's easy-task value, stepped by environment steps (their harder tasks' 500000+ steps are far beyond a
# real-robot run at 10 Hz). From a pretrained checkpoint: a low start, since at std 1.0 the noise hides the
# pretrained behaviour.
DEFAULT_SCRATCH_SCHEDULE = "linear(1.0,0.1,100000)"
DEFAULT_PRETRAINED_SCHEDULE = "linear(0.2,0.1,10000)"


@dataclass(frozen=True)
class ExplorationConfig:
    """Uniform random actions before the policy's (DrQ-v2's num_expl_steps): the actor's parameter, and the default
    of every agent that acts (a trainer in another setting states its own value and why)."""

    num_explore_steps: int = setting(
        500, "uniform random actions below this exploration step, when started without weights", (0, 10**9)
    )

    def __post_init__(self) -> None:
        if self.num_explore_steps < 0:
            raise ValueError(f"num_explore_steps must be >= 0, got {self.num_explore_steps}")


# Key of the safetensors metadata entry of an agent file that carries a schedule to continue with (written by
# `checkpoint_tool export` for the project's own policies): JSON {"stddev_schedule": str, "environment_steps": int}.
# A RoboBase/LeRobot import's "training" record is where that policy came from (pick-101 trained at std 1.0),
# not a schedule to fine-tune with, so it is never read as one.
METADATA_KEY = "exploration"

_NUMBER = r"\s*([-+0-9.eE]+)\s*"
_LINEAR = re.compile(rf"linear\({_NUMBER},{_NUMBER},{_NUMBER}\)")


@dataclass(frozen=True)
class Schedule:
    start: float
    end: float
    duration: float  # environment steps from start to end; 0 for a constant

    def __call__(self, environment_steps: int) -> float:
        if self.duration <= 0:
            return self.end
        mix = min(max(environment_steps / self.duration, 0.0), 1.0)
        return (1.0 - mix) * self.start + mix * self.end


def parse_schedule(spec: str, name: str = "stddev_schedule") -> Schedule:
    """A validated Schedule; ValueError with a one-line message naming ``name`` and the accepted forms."""
    text = str(spec).strip()
    expected = "expected a number >= 0 or linear(start,end,duration) with start, end >= 0 and duration > 0"
    try:
        value = float(text)
    except ValueError:
        value = None
    if value is not None:
        if not (math.isfinite(value) and value >= 0):
            raise ValueError(f"{name}={spec!r}: {expected}")
        return Schedule(value, value, 0.0)
    match = _LINEAR.fullmatch(text)
    if match is None:
        raise ValueError(f"{name}={spec!r}: {expected}")
    try:
        start, end, duration = (float(v) for v in match.groups())
    except ValueError:
        raise ValueError(f"{name}={spec!r}: {expected}") from None
    if not all(math.isfinite(v) for v in (start, end, duration)) or start < 0 or end < 0 or duration <= 0:
        raise ValueError(f"{name}={spec!r}: {expected}")
    return Schedule(start, end, duration)


def validate_schedule(spec: str, name: str = "stddev_schedule") -> str:
    """``spec`` stripped, after checking it parses (raises ValueError naming ``name`` otherwise)."""
    parse_schedule(spec, name)
    return str(spec).strip()


def stddev(schedule: str, environment_steps: int) -> float:
    """The exploration std of ``schedule`` at ``environment_steps``: the one reading actor and learner share."""
    return parse_schedule(schedule)(environment_steps)


def linear_schedule(spec: str, step: int) -> float:
    """RoboBase/DrQ-v2 schedule strings: a number, or 'linear(start,end,duration)' (same as ``stddev``)."""
    return stddev(spec, step)


def default_schedule(pretrained: bool) -> str:
    return DEFAULT_PRETRAINED_SCHEDULE if pretrained else DEFAULT_SCRATCH_SCHEDULE


def resolve_schedule(parameter: str, carried: str | None, pretrained: bool) -> str:
    """The schedule a learner runs with: the ``stddev_schedule`` parameter when set, else the one ``carried`` by
    its checkpoint or initial agent file, else the default for the start."""
    if parameter.strip():
        return validate_schedule(parameter, "parameter stddev_schedule")
    if carried:
        return validate_schedule(carried, f"{METADATA_KEY}.stddev_schedule")
    return default_schedule(pretrained)


def to_metadata(schedule: str, environment_steps: int) -> dict[str, str]:
    """The agent-file metadata entry carrying a schedule and the step it had reached."""
    return {
        METADATA_KEY: json.dumps(
            {"stddev_schedule": validate_schedule(schedule), "environment_steps": int(environment_steps)},
            sort_keys=True,
        )
    }


def from_metadata(metadata: dict[str, str], where: str = "agent file") -> tuple[str | None, int]:
    """(schedule or None, environment steps) carried by agent-file metadata; ValueError naming the entry if bad."""
    if METADATA_KEY not in metadata:
        return None, 0
    field = f"{where}: metadata {METADATA_KEY}"
    try:
        entry = json.loads(metadata[METADATA_KEY])
    except ValueError as err:
        raise ValueError(f"{field} is not JSON ({err})") from None
    if not isinstance(entry, dict) or not isinstance(entry.get("stddev_schedule"), str):
        raise ValueError(f"{field} must be a JSON object with a stddev_schedule string")
    schedule = validate_schedule(entry["stddev_schedule"], f"{field}.stddev_schedule")
    steps = entry.get("environment_steps", 0)
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 0:
        raise ValueError(f"{field}.environment_steps must be an integer >= 0, got {steps!r}")
    return schedule, steps


def sample_exploration(mean: torch.Tensor, std: float, clip: float | None, generator=None) -> torch.Tensor:
    """DrQ-v2's exploration: mean + (optionally clipped) Gaussian noise, then into [-1, 1]."""
    noise = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype) * std
    if clip is not None:
        noise = noise.clamp(-clip, clip)
    return (mean + noise).clamp(-1.0, 1.0)


def act(
    policy_mean: Callable[[], torch.Tensor],
    batch_shape: tuple[int, int],
    schedule: str,
    step: int,
    num_explore_steps: int,
    evaluation: bool,
    generator: torch.Generator,
) -> torch.Tensor:
    """The one acting rule, DrQ-v2's ``act``, for the actor's control step and the learner's agent alike.

    ``evaluation``: the policy's mean. Otherwise uniform random actions in [-1, 1] (``batch_shape``: (B, action
    dim)) while ``step`` < ``num_explore_steps`` (drqv2's num_expl_steps; the mean is then not computed), else the
    mean plus Gaussian noise of ``schedule``'s std at ``step``, unclipped noise as RoboBase samples when acting,
    clamped into [-1, 1]. ``policy_mean()`` returns the (B, action dim) mean; the noise comes from ``generator``."""
    if not evaluation and step < num_explore_steps:
        return torch.rand(batch_shape, generator=generator, device=generator.device) * 2.0 - 1.0
    mean = policy_mean()
    if evaluation:
        return mean
    return sample_exploration(mean, stddev(schedule, step), None, generator)
