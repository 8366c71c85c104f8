"""so101_driver's rooms stay apart (docs/architecture.md): imports between hardware/, model/, sim/ and vision/ point
one way, only bringup touches the hardware room from outside, and every module stays readable (under 500 lines)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "so101_driver"
SRC = PACKAGE.parents[1]
ROOMS = ("hardware", "model", "sim", "vision")
# room -> the rooms it may import: the model and the image code are leaves; the simulation stands in for the
# hardware, so neither of the two imports the other.
ALLOWED = {
    "vision": {"vision"},
    "model": {"model"},
    "sim": {"sim", "model", "vision"},
    "hardware": {"hardware", "model", "vision"},
}
# Packages above the driver that must not reach into its hardware room (bringup starts the drivers and reads their
# calibration-file rule; the benchmarks drive the emulator).
HARDWARE_FREE = ("so101_reward", "so101_hilserl_actor", "so101_hilserl_learner")
MAX_LINES = 500


def imported_modules(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def room_of(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] == "so101_driver" and len(parts) > 1 and parts[1] in ROOMS:
        return parts[1]
    return None


def driver_modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_every_driver_module_lives_in_a_room():
    loose = [p.relative_to(PACKAGE) for p in driver_modules() if p.parent == PACKAGE and p.name != "__init__.py"]
    assert loose == [], f"modules outside hardware/, model/, sim/, vision/: {loose}"
    assert {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").is_file()} == set(ROOMS)


def test_rooms_import_one_way():
    wrong = []
    for path in driver_modules():
        room = path.relative_to(PACKAGE).parts[0]
        if room not in ROOMS:
            continue
        for module in imported_modules(path):
            target = room_of(module)
            if target is not None and target not in ALLOWED[room]:
                wrong.append(f"{path.relative_to(PACKAGE)} imports {module}")
    assert wrong == [], "\n".join(wrong)


def test_learning_packages_do_not_touch_the_hardware_room():
    wrong = []
    for package in HARDWARE_FREE:
        for path in sorted((SRC / package / package).rglob("*.py")):
            wrong += [
                f"{path.relative_to(SRC)} imports {m}" for m in imported_modules(path) if room_of(m) == "hardware"
            ]
    assert wrong == [], "\n".join(wrong)


def test_modules_stay_under_500_lines():
    long = {
        str(p.relative_to(PACKAGE)): n for p in driver_modules() if (n := len(p.read_text().splitlines())) >= MAX_LINES
    }
    assert long == {}, f"split these modules (a room per concern, as hardware/camera/): {long}"
