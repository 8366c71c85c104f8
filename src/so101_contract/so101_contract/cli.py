"""Numeric command-line flags checked where they are parsed: argparse ``type=`` callables with the allowed range.

    parser.add_argument("--epochs", type=positive_int, default=60)
    parser.add_argument("--val-fraction", type=open_fraction, default=0.2)
    parser.add_argument("--domain-id", type=int_in(0, 232))

A value outside the range ends the CLI through argparse: exit code 2 and one error line naming the flag, the value
and what is allowed (``argument --epochs: -5 is not allowed: expected an integer >= 1``), instead of a traceback
deep in the run or a run that silently does nothing. nan and inf are refused by every float type.

``add_config_arguments(parser, Config)`` derives a CLI's flags from a config dataclass (so101_contract.settings):
``--name-with-dashes`` per setting, its type, bounds or choices, its description as help and its default; the CLI
then builds the config with ``config_from_arguments``. A CLI lists no field its config already has.

``did_you_mean(name, known)`` is the one suggestion for a misspelled name (a make variable, a launch argument, a
node parameter): ``"; did you mean EPISODES?"``, or ``""`` when no known name is close.
"""

from __future__ import annotations

import argparse
import difflib
import math
from collections.abc import Callable, Iterable

from so101_contract import settings


def _number(text: str, kind: type) -> int | float:
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not {'an integer' if kind is int else 'a number'}") from None
    if kind is float and not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not allowed: expected a finite number")
    return value


def _checked(kind: type, ok: Callable[[int | float], bool], expected: str, name: str) -> Callable[[str], int | float]:
    def parse(text: str) -> int | float:
        value = _number(text, kind)
        if not ok(value):
            raise argparse.ArgumentTypeError(f"{text} is not allowed: expected {expected}")
        return value

    parse.__name__ = name  # argparse names the type in some messages
    return parse


positive_int = _checked(int, lambda v: v >= 1, "an integer >= 1", "positive_int")
nonnegative_int = _checked(int, lambda v: v >= 0, "an integer >= 0", "nonnegative_int")
positive_float = _checked(float, lambda v: v > 0, "a number > 0", "positive_float")
nonnegative_float = _checked(float, lambda v: v >= 0, "a number >= 0", "nonnegative_float")
open_fraction = _checked(float, lambda v: 0 < v < 1, "a number in (0, 1), exclusive", "open_fraction")
probability = _checked(float, lambda v: 0 <= v <= 1, "a probability in [0, 1]", "probability")


def positive_ints(text: str) -> tuple[int, ...]:
    """Positive integers separated by commas or x: ``256,256`` (layer widths), ``640x480`` (an image size)."""
    try:
        values = tuple(int(v) for v in text.lower().replace("x", ",").split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not integers separated by , or x (256,256; 640x480)") from None
    if not values or min(values) <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not allowed: expected integers >= 1")
    return values


def int_in(low: int, high: int) -> Callable[[str], int]:
    """An integer in [low, high]."""
    return _checked(int, lambda v: low <= v <= high, f"an integer in [{low}, {high}]", "int_in")


def one_of_ints(values: tuple[int, ...]) -> Callable[[str], int]:
    """One of the listed integers (e.g. the baud rates a bus can be set to)."""
    listed = ", ".join(str(v) for v in values)
    return _checked(int, lambda v: v in values, f"one of {listed}", "one_of_ints")


def closest_name(name: str, known: Iterable[str]) -> str | None:
    """The known name closest to a misspelled one (difflib's ratio >= 0.6), or None."""
    matches = difflib.get_close_matches(name, list(known), n=1)
    return matches[0] if matches else None


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """``"; did you mean X?"`` for the known name closest to ``name``, ``""`` when none is close."""
    match = closest_name(name, known)
    return f"; did you mean {match}?" if match else ""


def flag(name: str) -> str:
    """A setting's command-line flag: ``max_episodes`` -> ``--max-episodes``."""
    return "--" + name.replace("_", "-")


def add_config_arguments(parser: argparse.ArgumentParser, config: type, skip: Iterable[str] = ()) -> list[str]:
    """One flag per setting of ``config`` (not those in ``skip``): booleans as --x/--no-x, strings with choices as
    choices, numbers checked against their bounds; help is the description. The names added, in order."""
    added = []
    for name, (default, description, bounds) in settings.table(config).items():
        if name in skip:
            continue
        kwargs: dict = {"default": default, "help": description, "dest": name}
        if isinstance(default, bool):
            kwargs["action"] = argparse.BooleanOptionalAction
        elif isinstance(default, tuple):
            kwargs["type"], kwargs["metavar"] = positive_ints, "x".join(str(v) for v in default)
        elif isinstance(default, str):
            kwargs["choices"] = bounds if bounds else None
        elif isinstance(default, (int, float)):
            kind = type(default)
            low, high = bounds if bounds else (-math.inf, math.inf)
            expected = f"{'an integer' if kind is int else 'a number'} in [{low}, {high}]"
            kwargs["type"] = _checked(kind, lambda v, low=low, high=high: low <= v <= high, expected, kind.__name__)
        parser.add_argument(flag(name), **kwargs)
        added.append(name)
    return added


def config_from_arguments(config: type, args: argparse.Namespace, **fixed):
    """The config built from parsed flags (those ``add_config_arguments`` added) and ``fixed`` values."""
    names = settings.table(config)
    given = {name: getattr(args, name) for name in names if hasattr(args, name)}
    return settings.build(config, {**given, **fixed})
