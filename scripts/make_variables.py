"""The Makefile's refusal of an unknown command-line variable, as one line: the name, the closest known one.

    python3 scripts/make_variables.py --goals "sim" --known "EPISODES RUN_DIR" --common "COLCON_BUILD_ARGS" EPISODE

The Makefile finds the unknown names itself (so this runs only when there is one) and stops with this line before
anything is set up or built. Plain Python 3: it runs before the project's environment exists.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src" / "so101_contract"))
from so101_contract.cli import did_you_mean  # the source tree's: nothing is built yet


def refusal(goals: list[str], known: list[str], common: list[str], unknown: list[str]) -> str:
    """``unknown variable EPISODE; did you mean EPISODES? (make sim reads EPISODES, RUN_DIR, COLCON_BUILD_ARGS)``."""
    names = [*known, *common]
    unknown = sorted(unknown)
    if len(unknown) == 1:
        problem = f"unknown variable {unknown[0]}{did_you_mean(unknown[0], names)}"
    else:
        problem = "unknown variables " + ", ".join(
            f"{name} ({did_you_mean(name, names).removeprefix('; ')})" if did_you_mean(name, names) else name
            for name in unknown
        )
    reads = [*known, *common[:1]]  # the goal's own and the build's; the environment-like rest is not listed
    return f"{problem} (make {' '.join(goals)} reads {', '.join(reads)})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--goals", default="")
    parser.add_argument("--known", default="")
    parser.add_argument("--common", default="")
    parser.add_argument("unknown", nargs="+")
    args = parser.parse_args(argv)
    print(refusal(args.goals.split(), args.known.split(), args.common.split(), args.unknown))
    return 0


if __name__ == "__main__":
    sys.exit(main())
