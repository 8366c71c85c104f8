"""The code keeps the shape docs/architecture.md describes: node modules stay thin, module docstrings cite only files
in the repository, and the architecture document's diagram names the packages and topics the code has."""

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
ARCHITECTURE = ROOT / "docs" / "architecture.md"
MAX_NODE_LINES = 250


def project_modules(include_tests: bool = True) -> list[Path]:
    found = [p for p in SRC.glob("*/so101_*/**/*.py")]
    found += list(SRC.glob("*/launch/*.py")) + list((ROOT / "scripts").glob("**/*.py"))
    if include_tests:
        found += list(SRC.glob("*/test/**/*.py")) + list((ROOT / "tests").glob("*.py"))
    return sorted(p for p in found if "/build/" not in str(p))


def defines_a_node(tree: ast.Module) -> bool:
    """A module whose class derives from rclpy's Node (the node itself, not a helper that drives one)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            for base in node.bases:
                name = base.attr if isinstance(base, ast.Attribute) else getattr(base, "id", "")
                if name == "Node":
                    return True
    return False


def node_modules() -> list[Path]:
    return [p for p in project_modules(include_tests=False) if defines_a_node(ast.parse(p.read_text()))]


def test_node_modules_are_thin():
    """A node is ROS wiring around plain logic that tests call without a graph (ControlStep behind actor_node)."""
    nodes = node_modules()
    assert len(nodes) >= 8, [str(p) for p in nodes]  # the scan finds the nodes (sim, arm, camera, actor, ...)
    long = {str(p.relative_to(SRC)): n for p in nodes if (n := len(p.read_text().splitlines())) > MAX_NODE_LINES}
    assert not long, f"node modules over {MAX_NODE_LINES} lines (move their logic into a plain module): {long}"


# A docstring names a repository file by its path or module file name; run outputs (episodes.csv, model.json,
# metadata.yaml of a bag, RUN_DIR/...) are not repository files and are not checked.
CITED = re.compile(r"(?<![\w/.-])([\w./-]*[\w-]\.(?:md|py|msg|srv|urdf|rviz|xml|yaml))(?![\w])")
NOT_IN_REPOSITORY = re.compile(r"\b(devlog|DESIGN\.md|seed-system|reference/)", re.I)


def repository_has(cited: str, files: set[str], names: set[str]) -> bool:
    if "/" not in cited:
        return cited in names
    return any(f == cited or f.endswith("/" + cited) for f in files)


def test_module_docstrings_cite_only_files_in_the_repository():
    files = {str(p.relative_to(ROOT)) for p in ROOT.glob("**/*") if p.is_file() and ".git" not in p.parts}
    files = {f for f in files if not f.startswith((".venv/", ".venv-lerobot/", "build/", "install/", "log/"))}
    names = {Path(f).name for f in files}
    problems = []
    for path in project_modules():
        doc = ast.get_docstring(ast.parse(path.read_text())) or ""
        where = str(path.relative_to(ROOT))
        problems += [f"{where}: {m.group(0)!r}" for m in NOT_IN_REPOSITORY.finditer(doc)]
        for m in CITED.finditer(doc):
            cited = m.group(1)
            if cited.endswith((".yaml", ".xml")) and "/" not in cited:
                continue  # a run's or a bag's file (metadata.yaml), named by its file name
            if not repository_has(cited, files, names):
                problems.append(f"{where}: {cited!r}")
    assert not problems, "module docstrings cite files that are not in the repository:\n" + "\n".join(problems)


def diagram(title: str) -> str:
    """The mermaid block of docs/architecture.md that follows the heading ``title``."""
    text = ARCHITECTURE.read_text()
    match = re.search(rf"^#+ {re.escape(title)}\s*$.*?```mermaid\n(.*?)```", text, re.S | re.M)
    assert match, f"docs/architecture.md has no mermaid diagram under a heading {title!r}"
    return match.group(1)


def test_the_package_diagram_matches_the_workspace():
    packages = {p.parent.name for p in SRC.glob("*/package.xml")}
    drawn = set(re.findall(r"\b(so101_\w+)\b", diagram("Packages")))
    assert drawn == packages, f"missing from the diagram: {packages - drawn}; not a package: {drawn - packages}"


def test_the_package_diagram_draws_the_dependencies_the_code_has():
    """Every arrow A --> B of the package diagram is an import of B by A's modules, and every such import is drawn."""
    edges = set(re.findall(r"(so101_\w+)\s*-->\s*(so101_\w+)", diagram("Packages")))
    packages = {p.parent.name for p in SRC.glob("*/package.xml")}
    imported = set()
    for package in packages:
        for path in (SRC / package / package).glob("**/*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
                if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    names = [node.module]
                imported |= {(package, n.split(".")[0]) for n in names if n.split(".")[0] in packages - {package}}
    imported -= {(p, "so101_contract") for p in packages}  # everyone imports the contract: drawn once, in words
    imported -= {(p, "so101_hilserl_interfaces") for p in packages}  # messages: likewise
    edges -= {(p, "so101_contract") for p in packages} | {(p, "so101_hilserl_interfaces") for p in packages}
    assert edges == imported, f"drawn, not imported: {edges - imported}; imported, not drawn: {imported - edges}"


def test_the_graph_diagram_names_every_topic_and_node():
    from so101_bringup.graph import PROJECT_TOPICS

    drawn = diagram("The graph")
    topics = set(re.findall(r'"(/?[a-z_]+(?:/[a-z_]+)*)"', drawn))
    assert topics == set(PROJECT_TOPICS), (
        f"topics missing from the diagram: {set(PROJECT_TOPICS) - topics}; not topics: {topics - set(PROJECT_TOPICS)}"
    )
    from so101_bringup.parameters import MODES, graph_nodes

    nodes = {name for mode in MODES for name in graph_nodes(mode)}
    drawn_nodes = set(re.findall(r"^\s*(\w+)\[\[", drawn, re.M))
    assert drawn_nodes == nodes, f"nodes missing: {nodes - drawn_nodes}; not nodes: {drawn_nodes - nodes}"


@pytest.mark.parametrize("title", ["Packages", "The graph"])
def test_diagrams_are_mermaid_flowcharts(title):
    assert diagram(title).lstrip().startswith(("flowchart", "graph"))


# The plain cores behind the nodes: tests build them without a node or a graph.
CORES = (
    "so101_hilserl_learner.learner",  # Learner behind learner_node
    "so101_driver.sim.simulation",  # Simulation behind sim_node
    "so101_hilserl_actor.control_step",  # ControlStep behind actor_node
    "so101_hilserl_actor.intervention_control",  # InterventionControl behind intervention_node
    "so101_driver.hardware.arm",  # Arm behind arm_node
)


@pytest.mark.parametrize("module", CORES)
def test_the_cores_behind_the_nodes_import_no_node_code(module):
    import subprocess
    import sys

    code = f"import sys, {module}; print(sorted(m for m in sys.modules if m in ('rclpy.node', 'rclpy.executors')))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]", f"{module} imports rclpy's node machinery: {result.stdout}"
