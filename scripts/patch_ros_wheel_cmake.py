#!/usr/bin/env python3
"""Fix the include paths that ROS 2 PyPI wheels hard-code into their exported CMake files.

The wheels were built in a manylinux image whose interpreter lived at /opt/python/cpXY-cpXY; about a dozen
share/*/cmake/*.cmake files still name that interpreter's include dir and numpy's include dir, and CMake stops with
"includes non-existent path". This rewrites them to this interpreter's. Idempotent; prints what it changed.

    python scripts/patch_ros_wheel_cmake.py PREFIX
"""

from __future__ import annotations

import re
import sys
import sysconfig
from pathlib import Path

BUILDER_PYTHON_INCLUDE = re.compile(r"/opt/python/cp3\d+-cp3\d+/include/python3\.\d+")
BUILDER_NUMPY_INCLUDE = re.compile(r"/opt/python/cp3\d+-cp3\d+/lib/python3\.\d+/site-packages/numpy/_core/include")


def patch_text(text: str, python_include: str, numpy_include: str) -> str:
    text = BUILDER_NUMPY_INCLUDE.sub(numpy_include, text)
    return BUILDER_PYTHON_INCLUDE.sub(python_include, text)


def patch_prefix(prefix: Path, python_include: str, numpy_include: str) -> list[Path]:
    changed = []
    for path in sorted(prefix.glob("share/*/cmake/*.cmake")):
        text = path.read_text()
        new = patch_text(text, python_include, numpy_include)
        if new != text:
            path.write_text(new)
            changed.append(path)
    return changed


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    import numpy

    prefix = Path(argv[1])
    changed = patch_prefix(prefix, sysconfig.get_paths()["include"], numpy.get_include())
    print(f"patched {len(changed)} CMake file(s) under {prefix}/share")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
