#!/usr/bin/env python3
"""Count test results (JUnit XML from colcon test and the workspace tests) and print the closing line.

    python scripts/test_summary.py --build-base build --expect PKG [PKG ...] [--check NAME=RC ...]

Prints a table per result file, then one line `N passed, N failed, N skipped` and exits 1 if anything failed.
A package listed with --expect that produced no result, or no passing test, counts as one failure: a test run
that silently ran nothing must not look green. Each --check (e.g. ruff=0) counts as one test.
"""

from __future__ import annotations

import argparse
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Counts:
    passed: int = 0
    failed: int = 0
    skipped: int = 0
    failures: list[str] = field(default_factory=list)

    def add(self, other: Counts) -> None:
        self.passed += other.passed
        self.failed += other.failed
        self.skipped += other.skipped
        self.failures.extend(other.failures)

    def line(self) -> str:
        return f"{self.passed} passed, {self.failed} failed, {self.skipped} skipped"


def count_junit(path: Path) -> Counts:
    counts = Counts()
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as err:
        counts.failed += 1
        counts.failures.append(f"{path}: unreadable result file ({err})")
        return counts
    for case in root.iter("testcase"):
        name = f"{case.get('classname', '')}::{case.get('name', '')}"
        if case.find("failure") is not None or case.find("error") is not None:
            counts.failed += 1
            counts.failures.append(name)
        elif case.find("skipped") is not None:
            counts.skipped += 1
        else:
            counts.passed += 1
    return counts


def result_files(build_base: Path, package: str) -> list[Path]:
    """ament_python writes build/PKG/pytest.xml; ament_cmake tests write build/PKG/test_results/PKG/*.xml."""
    pkg_dir = build_base / package
    files = [pkg_dir / "pytest.xml"] if (pkg_dir / "pytest.xml").is_file() else []
    files += sorted((pkg_dir / "test_results").glob("**/*.xml"))
    return files


def summarize(build_base: Path, expected: list[str], extra: list[Path], checks: dict[str, int]) -> Counts:
    total = Counts()
    for package in expected:
        files = result_files(build_base, package)
        counts = Counts()
        for path in files:
            counts.add(count_junit(path))
        if not files:
            counts.failed += 1
            counts.failures.append(f"{package}: no test results (did its tests run?)")
        elif counts.passed == 0:
            counts.failed += 1
            counts.failures.append(f"{package}: no passing test")
        print(f"  {package:28s} {counts.line()}")
        total.add(counts)
    for path in extra:
        counts = count_junit(path) if path.is_file() else Counts(failed=1, failures=[f"{path}: missing"])
        print(f"  {path.name:28s} {counts.line()}")
        total.add(counts)
    for name, rc in checks.items():
        ok = rc == 0
        print(f"  {name:28s} {'ok' if ok else f'failed (exit {rc})'}")
        total.add(Counts(passed=int(ok), failed=int(not ok), failures=[] if ok else [f"{name} exited {rc}"]))
    return total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build-base", type=Path, default=Path("build"))
    parser.add_argument("--expect", nargs="*", default=[], help="packages that must have passing tests")
    parser.add_argument("--junit", nargs="*", type=Path, default=[], help="further JUnit XML files to count")
    parser.add_argument("--check", action="append", default=[], help="NAME=RC of a check counted as one test")
    args = parser.parse_args(argv)

    checks = {}
    for item in args.check:
        name, _, rc = item.partition("=")
        checks[name] = int(rc)
    total = summarize(args.build_base, args.expect, args.junit, checks)
    if total.failures:
        print("failures:")
        for failure in total.failures:
            print(f"  - {failure}")
    print(total.line())
    return 1 if total.failed else 0


if __name__ == "__main__":
    sys.exit(main())
