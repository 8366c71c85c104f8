"""Every import of a project package is declared in package.xml, and dependencies point one way (docs/architecture.md):
the contract (so101_contract) imports nothing from the project and every package imports it; driver <- core <-
actor, learner, reward; everything <- bringup; the benchmarks (so101_bench) sit beside bringup and may import the
test helpers, which no runtime package imports outside its tests. The actor package is imported by bringup and by
the benchmark that measures it, by nothing else (not the learner, the reward tools, the env or the other benches)."""

import ast
import xml.etree.ElementTree as ET
from pathlib import Path

SRC = Path(__file__).resolve().parents[2]
PYTHON_PACKAGES = [
    "so101_contract",
    "so101_driver",
    "so101_reward",
    "so101_hilserl_core",
    "so101_hilserl_actor",
    "so101_hilserl_learner",
    "so101_bringup",
    "so101_bench",
]
PROJECT = {*PYTHON_PACKAGES, "so101_hilserl_interfaces", "so101_testing"}
# What each package may import from the project. Test code may also import so101_testing (a test_depend); of the
# packages' own modules only the benchmarks may (they start nodes as processes and must reap them like tests do).
ALLOWED = {
    "so101_contract": set(),
    "so101_driver": {"so101_contract", "so101_hilserl_interfaces"},
    "so101_reward": {"so101_contract", "so101_driver", "so101_hilserl_core", "so101_hilserl_interfaces"},
    "so101_hilserl_core": {"so101_contract", "so101_driver", "so101_hilserl_interfaces"},
    "so101_hilserl_actor": {"so101_contract", "so101_driver", "so101_hilserl_core", "so101_hilserl_interfaces"},
    "so101_hilserl_learner": {"so101_contract", "so101_driver", "so101_hilserl_core", "so101_hilserl_interfaces"},
    "so101_bringup": PROJECT - {"so101_bringup", "so101_testing", "so101_bench"},
    "so101_bench": PROJECT - {"so101_bench"},
}


def imported_project_packages(root: Path) -> dict[str, set[Path]]:
    found: dict[str, set[Path]] = {}
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            for name in names:
                top = name.split(".")[0]
                if top in PROJECT:
                    found.setdefault(top, set()).add(path)
    return found


def declared_dependencies(package: str) -> set[str]:
    root = ET.parse(SRC / package / "package.xml").getroot()
    tags = ("depend", "exec_depend", "build_depend", "test_depend")
    return {element.text.strip() for tag in tags for element in root.findall(tag)}


def test_every_package_is_in_the_workspace():
    assert all((SRC / p / "package.xml").is_file() for p in PROJECT)


def test_imports_are_declared_and_point_one_way():
    problems = []
    for package in PYTHON_PACKAGES:
        declared = declared_dependencies(package)
        code = imported_project_packages(SRC / package / package)
        for dep, files in code.items():
            if dep == package:
                continue
            where = ", ".join(sorted(str(f.relative_to(SRC)) for f in files))
            if dep not in ALLOWED[package]:
                problems.append(f"{package} must not import {dep} (in {where})")
            elif dep not in declared:
                problems.append(f"{package} imports {dep} without declaring it in package.xml (in {where})")
        for dep in imported_project_packages(SRC / package / "test"):
            if dep != package and dep not in declared:
                problems.append(f"{package}'s tests import {dep} without a test_depend")
    assert not problems, "\n".join(problems)


def test_every_package_depends_on_the_contract():
    """The contract is what every package shares: each declares it (an exec_depend), so a package installed alone
    finds the joint names, QoS profiles and node main it runs with."""
    missing = [p for p in PYTHON_PACKAGES if p != "so101_contract" and "so101_contract" not in declared_dependencies(p)]
    assert not missing, f"these packages do not exec_depend on so101_contract: {missing}"


def test_only_the_benchmarks_ship_the_test_helpers():
    """A runtime package declares so101_testing as a test_depend only; so101_bench runs it, so exec_depends on it."""
    shipped = []
    for package in PYTHON_PACKAGES:
        root = ET.parse(SRC / package / "package.xml").getroot()
        runtime = {e.text.strip() for tag in ("depend", "exec_depend") for e in root.findall(tag)}
        if "so101_testing" in runtime:
            shipped.append(package)
    assert shipped == ["so101_bench"], f"only so101_bench may exec_depend on so101_testing, not {shipped}"


# The one module outside bringup that may import the actor package, and why.
ACTOR_IMPORT_ALLOWED = {"so101_bench/so101_bench/actor.py": "make bench-actor measures the actor's step and node"}


def test_only_bringup_and_the_actor_benchmark_import_the_actor():
    """The learner, the reward tools, the Gymnasium env, the other benches and every test outside the actor take
    what they share with the actor from so101_hilserl_core; only bringup (which launches it) imports the actor."""
    offenders = []
    for package in {*PYTHON_PACKAGES, "so101_testing"} - {"so101_hilserl_actor", "so101_bringup"}:
        for kind in (package, "test"):
            for path in imported_project_packages(SRC / package / kind).get("so101_hilserl_actor", ()):
                where = str(path.relative_to(SRC))
                if where not in ACTOR_IMPORT_ALLOWED:
                    offenders.append(where)
    assert not offenders, "import so101_hilserl_core instead of the actor package in: " + ", ".join(sorted(offenders))
