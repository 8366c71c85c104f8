"""Each parameter's default is written once: in its config dataclass (so101_contract.settings). Nodes declare their
parameters only from their config; no two config classes give one name its own literal default; no code restates a
setting's default as a literal keyword or CLI default; the parameter files hold only values that differ from the
defaults; the READMEs point to the configs instead of copying defaults into tables."""

import ast
import re
from pathlib import Path

import pytest
import yaml

from so101_contract import settings

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
CONFIG_DIR = SRC / "so101_bringup" / "config"
READMES = [ROOT / "README.md", *sorted(SRC.glob("*/README.md")), *sorted((ROOT / "docs").glob("*.md"))]

# Settings that several components have, each its own (a name that means the same kind of thing in each), and why
# they may each carry a default. Everything else has one home.
PER_COMPONENT = {
    "seed": "each node seeds its own random stream",
    "torch_threads": "each process sizes its own torch thread pool",
    "run_dir": "the run's directory (launch, runner) and the learner's own directory inside it (RunDir.learner)",
    "reconnect_timeout_s": "each device (servo bus, camera) has its own reconnect window",
    "frame_id": "the camera's optical frame and the FK pose's reference frame are different frames",
    "publish_period_s": "the intervention flag's republish period and the learner's weights period",
    "stats_period_s": "the learner's statistics and the reward node's log have their own periods",
    "num_explore_steps": "pretraining in simulation takes DrQ-v2's simulated-task random phase; the robot's actor less",
    "warmup_transitions": "pretraining fills its buffer with that random phase before updating; the learner needs less",
}


def runtime_modules() -> list[Path]:
    return sorted(p for p in SRC.glob("*/so101_*/**/*.py"))


def graph_nodes():
    from so101_bringup.parameters import MODES
    from so101_bringup.parameters import graph_nodes as nodes_of

    return {name: spec for mode in MODES for name, spec in nodes_of(mode).items()}


def node_config(spec) -> type:
    from so101_bringup.parameters import node_config as config_of

    try:
        return config_of(spec.module, spec.name)
    except AttributeError:
        raise AssertionError(f"{spec.module} names no CONFIG (the config dataclass its node declares)") from None


def setting_calls() -> list[tuple[str, str, ast.expr, str]]:
    """(class, field, default expression, where) of every ``name: T = setting(default, ...)`` in the code."""
    found = []
    for path in runtime_modules():
        tree = ast.parse(path.read_text())
        for cls in (n for n in ast.walk(tree) if isinstance(n, ast.ClassDef)):
            for item in cls.body:
                call = getattr(item, "value", None)
                if isinstance(item, ast.AnnAssign) and isinstance(call, ast.Call) and call.args:
                    func = call.func.attr if isinstance(call.func, ast.Attribute) else getattr(call.func, "id", "")
                    if func == "setting":
                        where = f"{path.relative_to(SRC)}:{item.lineno}"
                        found.append((cls.name, item.target.id, call.args[0], where))
    return found


def literal(expr: ast.expr):
    try:
        return ast.literal_eval(expr)
    except ValueError:
        return None


def test_every_node_of_the_graph_declares_its_config():
    for name, spec in graph_nodes().items():
        config = node_config(spec)
        assert settings.table(config), f"node {name}: {config.__name__} has no settings"


def test_nodes_declare_parameters_only_through_their_config():
    """A node module declares nothing by hand (declare/declare_all/declare_parameter): its config is the list."""
    offenders = []
    for path in runtime_modules():
        tree = ast.parse(path.read_text())
        for call in (n for n in ast.walk(tree) if isinstance(n, ast.Call)):
            name = call.func.attr if isinstance(call.func, ast.Attribute) else getattr(call.func, "id", "")
            if name in ("declare", "declare_all", "declare_parameter", "declare_parameters"):
                if path.name != "parameters.py" or path.parent.name != "so101_contract":
                    offenders.append(f"{path.relative_to(SRC)}:{call.lineno} {name}(...)")
    assert not offenders, "declare parameters with declare_config(node, Config):\n" + "\n".join(offenders)


def test_no_name_has_two_literal_defaults():
    """A setting name with its default written as a literal in two config classes is one concept with two copies;
    the others must read the one (``setting(CommandLimits.max_joint_step, ...)``). "Off" defaults ('', 0, False:
    no file given, no limit) are not tuned values and may repeat."""
    by_name: dict[str, list[tuple[str, str, str]]] = {}
    for cls, name, default, where in setting_calls():
        value = literal(default)
        if value is not None and value not in ("", 0, False) and name not in PER_COMPONENT:
            by_name.setdefault(name, []).append((cls, ast.unparse(default), where))
    problems = [
        f"{name}: " + "; ".join(f"{c} = {d} ({w})" for c, d, w in homes)
        for name, homes in by_name.items()
        if len(homes) > 1
    ]
    assert not problems, "one setting, several literal defaults (read one from the other):\n" + "\n".join(problems)


def literal_defaults() -> dict[str, list]:
    """{setting name: [literal default, ...]} of every setting whose default is written as a literal."""
    out: dict[str, list] = {}
    for _, name, default, _ in setting_calls():
        value = literal(default)
        if value is not None and not isinstance(value, bool) and value not in ("", 0):
            out.setdefault(name, []).append(value)
    return out


def test_no_code_restates_a_default():
    """``name=<the default>`` as a keyword argument or ``--name ... default=<the default>`` in an argparse call,
    outside the config classes: a second copy that drifts (it did: max_frame_age_s was 0.2 in one place, 0.25 in
    another). Values that differ from the default are choices, not copies, and are fine."""
    defaults = literal_defaults()
    problems = []
    for path in runtime_modules():
        for call in (n for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.Call)):
            func = call.func.attr if isinstance(call.func, ast.Attribute) else getattr(call.func, "id", "")
            if func == "setting":
                continue
            pairs = [(k.arg, k.value) for k in call.keywords if k.arg]
            if func == "add_argument" and call.args and isinstance(call.args[0], ast.Constant):
                flag = str(call.args[0].value).lstrip("-").replace("-", "_")
                pairs = [(flag, k.value) for k in call.keywords if k.arg == "default"]
            for name, value in pairs:
                given = literal(value)
                if name in defaults and given is not None and not isinstance(given, bool) and given in defaults[name]:
                    problems.append(f"{path.relative_to(SRC)}:{call.lineno} {name}={given!r}")
    assert not problems, "defaults restated outside their config (read the config's default):\n" + "\n".join(problems)


def mode_files() -> list[Path]:
    from so101_bringup.graph import PARAMETER_FILES

    return [CONFIG_DIR / name for name in sorted(PARAMETER_FILES.values())]


@pytest.mark.parametrize("path", mode_files(), ids=lambda p: p.name)
def test_parameter_files_hold_only_what_differs_from_the_defaults(path):
    data = yaml.safe_load(path.read_text()) or {}
    nodes = graph_nodes()
    problems = []
    for key, section in data.items():
        name = str(key).rsplit("/", 1)[-1]
        assert name in nodes, f"{path.name}: section {key} names no node of the graph"
        table = settings.table(node_config(nodes[name]))
        for parameter, value in (section.get("ros__parameters") or {}).items():
            if parameter in table and table[parameter][0] == value and type(table[parameter][0]) is type(value):
                problems.append(f"{key}: {parameter}: {value!r} is the default")
    assert not problems, f"{path.name} restates defaults (delete these lines):\n" + "\n".join(problems)


def all_defaults() -> dict[str, list]:
    """{setting name: [its default in each config class that has it]}."""
    out: dict[str, list] = {}
    for _, name, default, _ in setting_calls():
        value = literal(default)
        out.setdefault(name, []).append(value)
    return out


def shown(value) -> set[str]:
    """How a README writes a default: 0.5, true, "" ..."""
    if isinstance(value, bool):
        return {str(value).lower(), str(value)}
    if value == "":
        return {'""', "''"}
    return {str(value), repr(value)}


def test_readmes_do_not_copy_defaults():
    """A README table row that names a setting and shows a default in another cell (a parameter table with a
    default column), or prose '`name` (default X)': the configs, ``python -m so101_bringup.parameters`` and
    ``ros2 param describe`` are where defaults are read."""
    defaults = all_defaults()
    problems = []
    for readme in READMES:
        for number, line in enumerate(readme.read_text().splitlines(), 1):
            names = [n for n in re.findall(r"`([a-z_0-9]+)`", line) if n in defaults]
            if not names:
                continue
            if line.startswith("|"):
                cells = [c.strip() for c in line.strip().strip("|").split("|")]
                values = {text for n in names for v in defaults[n] if v is not None for text in shown(v)}
                keyed = [n for n in names if any(f"`{n}`" in c for c in cells[:2])]  # the row is about the setting
                values = {text for n in keyed for v in defaults[n] if v is not None for text in shown(v)}
                short = [c for c in cells[:-1] if len(c) < 40 and not any(f"`{n}`" in c for n in names)]
                tokens = {tok.strip("`") for c in short for tok in re.split(r"[\s,/()]+", c) if tok}
                if tokens & values:
                    problems.append(f"{readme.relative_to(ROOT)}:{number}: {line[:90]}")
            elif re.search(r"`(" + "|".join(names) + r")`[^.;]{0,30}\(default", line):
                problems.append(f"{readme.relative_to(ROOT)}:{number}: {line[:90]}")
    assert not problems, "READMEs copy defaults (point to the config instead):\n" + "\n".join(problems)
