"""One definition of each shared thing (docs/architecture.md, "Packages"): an AST scan of every package's own modules
(src/*/so101_*/, tests excluded) fails when a copy of something so101_contract owns comes back elsewhere.

What counts as a copy: a module-level assignment to a contract constant (joint names and indices, the state layout,
the action size, the control period, the QoS profiles, the refusal exit code); the gripper index or a joint count
computed again from JOINT_NAMES; a tuple or list literal of the joint names; a function or method named like a
contract helper (stamp conversion, atomic writes, fsync, a ``_param``/``p`` parameter helper, the node main, the
allocator setting, the diagnostics builder); stamp arithmetic (``stamp.sec * 1_000_000_000``); a ``QoSProfile(...)``
built by hand; a file written then renamed with ``os.replace`` in one function (the atomic-write pattern; renaming
a directory or a symlink into place is fine); ``rclpy.init(...)`` outside node_main. The few legitimate
exceptions are listed below with their reason, by package or by the function that holds them (not by file path,
so files may move between rooms).
"""

from __future__ import annotations

import ast
import textwrap
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2]
CONTRACT = "so101_contract"

CONSTANTS = {
    # joints.py
    "JOINT_NAMES", "ARM_JOINT_NAMES", "NUM_JOINTS", "NUM_ARM_JOINTS", "GRIPPER", "GRIPPER_INDEX",
    # state.py
    "STATE_DIM", "JOINT_POSITIONS", "JOINT_VELOCITIES", "EE_POSITION", "EE_ORIENTATION",
    # control.py
    "ACTION_DIM", "CONTROL_RATE_HZ", "CONTROL_PERIOD_S", "CONTROL_PERIOD_NS", "JOINT_STATE_RATE_HZ",
    # qos.py
    "SENSOR_DATA", "COMMAND", "LATCHED", "TRANSITIONS", "EVENTS", "CLOCK",
    # node_main.py
    "EXIT_REFUSED",
    # sim_time.py
    "CLOCK_MODES", "CLOCK_TOPIC", "ADVANCE_TOPIC", "PROGRESS_TOPIC",
}  # fmt: skip
FUNCTIONS = {
    "stamp_to_ns", "ns_to_stamp", "ns_to_time", "time_to_ns", "stamp_ns", "to_ns",
    "fsync_path", "fsync_dir", "fsync_directory",
    "_param", "p", "declare_parameter_typed",
    "run_node", "configure_cpu_allocator", "diagnostic_array",
}  # fmt: skip
FUNCTION_PREFIXES = ("atomic_write", "_atomic_write")
JOINT_NAME_SET = {"shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper"}
NS_PER_S = (1_000_000_000, 1e9)

# Legitimate exceptions, with why.
QOS_CONSTRUCTION_ALLOWED_IN = {
    "subscription_qos": "the bag recorder derives a profile matching whatever publishers it finds",
}
OS_REPLACE_ALLOWED_IN = {
    "save_checkpoint": "renames a whole checkpoint directory (its files fsynced with so101_contract's fsync_path)",
}
FILE_WRITERS = {"write_text", "write_bytes", "savez", "savez_compressed", "save", "save_file", "dump", "fdopen"}
RCLPY_INIT_ALLOWED_IN = {
    "so101_testing": "test helpers own their contexts, as tests do",
    "so101_bench": "benchmarks drive nodes from outside, as tests do",
    "keyboard_node": "an interactive terminal tool: its main thread blocks on the keyboard, not in an executor",
    "runner": "the process runner's status line: a private context inside a CLI that is not a node",
}
QOS_ALLOWED_PACKAGES = {"so101_testing": "test helpers subscribe with whatever profile a test asks for"}


def package_modules() -> list[tuple[str, Path]]:
    """(package, module file) for every package's own modules; the contract itself excluded."""
    found = []
    for package_dir in sorted(SRC.glob("so101_*/so101_*")):
        if package_dir.is_dir() and package_dir.name == package_dir.parent.name and package_dir.name != CONTRACT:
            found += [(package_dir.name, path) for path in sorted(package_dir.rglob("*.py"))]
    return found


def _function_names(tree: ast.AST) -> dict[ast.AST, str]:
    """Every node -> the name of the innermost function holding it ('' at module level)."""
    owner: dict[ast.AST, str] = {}

    def visit(node: ast.AST, name: str) -> None:
        for child in ast.iter_child_nodes(node):
            inner = child.name if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)) else name
            owner[child] = inner
            visit(child, inner)

    visit(tree, "")
    return owner


def _targets(node: ast.stmt) -> list[str]:
    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
    names = []
    for target in targets:
        elements = target.elts if isinstance(target, ast.Tuple) else [target]
        names += [e.id for e in elements if isinstance(e, ast.Name)]
    return names


def _is_ns_per_s(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and not isinstance(node.value, bool) and node.value in NS_PER_S


def _writes_a_file(node: ast.AST) -> bool:
    """A call that puts content into a file (renaming a directory or a symlink into place is no atomic write)."""
    if not isinstance(node, ast.Call):
        return False
    func = node.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
    if name in FILE_WRITERS:
        return True
    if name == "open" and len(node.args) > 1 and isinstance(node.args[1], ast.Constant):
        return any(flag in str(node.args[1].value) for flag in "wax")
    return (
        any(
            k.arg == "mode" and isinstance(k.value, ast.Constant) and any(f in str(k.value.value) for f in "wax")
            for k in node.keywords
        )
        and name == "open"
    )


def copies_in(source: str, package: str = "so101_x", module: str = "module") -> list[str]:
    """What in ``source`` (one module of ``package``) copies a contract definition; one line each."""
    tree = ast.parse(source)
    owner = _function_names(tree)
    writing_functions = {owner.get(node, "") for node in ast.walk(tree) if _writes_a_file(node)}
    problems = []
    for statement in tree.body:  # module level
        if isinstance(statement, (ast.Assign, ast.AnnAssign)):
            for name in _targets(statement):
                if name in CONSTANTS:
                    problems.append(f"line {statement.lineno}: {name} is defined in so101_contract; import it")
            value = statement.value
            if (
                isinstance(value, ast.Call)
                and getattr(value.func, "id", None) == "len"
                and value.args
                and getattr(value.args[0], "id", None) in ("JOINT_NAMES", "ARM_JOINT_NAMES")
            ):
                problems.append(f"line {statement.lineno}: a joint count: use NUM_JOINTS / NUM_ARM_JOINTS")
    for node in ast.walk(tree):
        function = owner.get(node, "")
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            if node.name in FUNCTIONS or node.name.startswith(FUNCTION_PREFIXES):
                problems.append(f"line {node.lineno}: {node.name}() copies a so101_contract helper")
        elif isinstance(node, (ast.Tuple, ast.List)):
            names = {e.value for e in node.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)}
            if len(names & JOINT_NAME_SET) >= 3:
                problems.append(f"line {node.lineno}: a list of joint names: use JOINT_NAMES")
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult):
            sides = (node.left, node.right)
            if any(_is_ns_per_s(s) for s in sides) and any(getattr(s, "attr", None) == "sec" for s in sides):
                problems.append(f"line {node.lineno}: stamp arithmetic: use so101_contract.stamps")
        elif isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            base = getattr(func.value, "id", None) if isinstance(func, ast.Attribute) else None
            if name == "index" and base == "JOINT_NAMES":
                problems.append(f"line {node.lineno}: an index into JOINT_NAMES: use GRIPPER (so101_contract.joints)")
            elif name == "QoSProfile" and function not in QOS_CONSTRUCTION_ALLOWED_IN:
                if package not in QOS_ALLOWED_PACKAGES:
                    problems.append(f"line {node.lineno}: a hand-built QoSProfile: use so101_contract.qos")
            elif name == "replace" and base == "os" and function not in OS_REPLACE_ALLOWED_IN:
                if function in writing_functions:  # content written, then renamed into place: an atomic write
                    problems.append(f"line {node.lineno}: write then os.replace: use so101_contract.files")
            elif name == "init" and base == "rclpy":
                if package not in RCLPY_INIT_ALLOWED_IN and module not in RCLPY_INIT_ALLOWED_IN:
                    problems.append(f"line {node.lineno}: rclpy.init outside node_main: use run_node")
    return problems


def test_no_copy_of_a_contract_definition_outside_the_contract():
    problems = []
    for package, path in package_modules():
        for problem in copies_in(path.read_text(), package, path.stem):
            problems.append(f"{path.relative_to(SRC)}: {problem}")
    assert not problems, "\n".join(problems)


def test_the_scan_sees_every_package():
    packages = {package for package, _ in package_modules()}
    assert {"so101_driver", "so101_reward", "so101_hilserl_actor", "so101_hilserl_learner", "so101_bringup"} <= packages


# Each deleted copy, as it was: the scan must catch it if it comes back.
DELETED_COPIES = {
    "gripper index by count": "from so101_contract.joints import NUM_JOINTS\nGRIPPER = NUM_JOINTS - 1\n",
    "gripper index by name": 'GRIPPER_INDEX = JOINT_NAMES.index("gripper")\n',
    "arm joint count": "NUM_ARM_JOINTS = len(ARM_JOINT_NAMES)\n",
    "local arm joint count": "NUM_ARM = len(ARM_JOINT_NAMES)\n",
    "action size": "ACTION_DIM = 4\n",
    "control period": "CONTROL_PERIOD_S = 0.1  # the 10 Hz control rate\n",
    "state layout": "STATE_DIM = 18\nJOINT_POSITIONS = slice(0, 6)\n",
    "joint names": 'NAMES = ("shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper")\n',
    "exit code": "EXIT_REFUSED = 2\n",
    "stamp to ns": """
        def stamp_to_ns(stamp) -> int:
            return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)
        """,
    "ns to stamp": """
        def ns_to_time(ns):
            return Time(sec=int(ns) // 1_000_000_000, nanosec=int(ns) % 1_000_000_000)
        """,
    "inline stamp arithmetic": "latency = (arrival_ns - stamp.sec * 1_000_000_000 - stamp.nanosec) * 1e-9\n",
    "atomic write": """
        def atomic_write_bytes(path, data):
            tmp = path.with_suffix(".tmp")
            tmp.write_bytes(data)
            os.replace(tmp, path)
        """,
    "inline atomic write": """
        def dump(path, data):
            tmp = path.with_suffix(".tmp")
            tmp.write_bytes(data)
            os.replace(tmp, path)
        """,
    "fsync helper": "def fsync_path(path):\n    pass\n",
    "parameter helper method": """
        class N(Node):
            def _param(self, name, default, description):
                return self.declare_parameter(name, default, ParameterDescriptor(description=description)).value
        """,
    "parameter helper function": "def _param(node, name, default, description):\n    pass\n",
    "qos profile": "COMMAND = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE)\n",
    "inline qos profile": "def make():\n    return QoSProfile(depth=10)\n",
    "node main": "def main():\n    rclpy.init()\n    rclpy.spin(Node('x'))\n",
    "allocator": "def configure_cpu_allocator():\n    return False\n",
    "diagnostics builder": "def diagnostic_array(stamp, name, hardware_id, level, message, values):\n    pass\n",
}


@pytest.mark.parametrize("source", DELETED_COPIES.values(), ids=DELETED_COPIES.keys())
def test_a_deleted_copy_that_comes_back_is_caught(source):
    assert copies_in(textwrap.dedent(source), "so101_driver", "sim_node"), "the scan missed this copy"


def test_imports_and_uses_of_the_contract_pass():
    source = """
        from so101_contract import qos
        from so101_contract.control import ACTION_DIM, CONTROL_PERIOD_S
        from so101_contract.joints import GRIPPER, JOINT_NAMES, NUM_JOINTS
        from so101_contract.stamps import stamp_to_ns

        def act(q, msg):
            q[GRIPPER] = 0.0
            return stamp_to_ns(msg.header.stamp) + int(CONTROL_PERIOD_S * 1e9), ACTION_DIM, len(JOINT_NAMES)

        class N:
            def __init__(self):
                self.create_publisher(int, "x", qos.COMMAND)
        """
    assert copies_in(textwrap.dedent(source), "so101_hilserl_actor", "actor_node") == []


def test_the_listed_exceptions_are_still_needed():
    """An exception nobody uses any more is removed, so the scan stays as strict as it can."""
    sources = [(package, path.stem, path.read_text()) for package, path in package_modules()]
    functions = {
        node.name
        for _, _, text in sources
        for node in ast.walk(ast.parse(text))
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
    }
    unused = [name for name in [*QOS_CONSTRUCTION_ALLOWED_IN, *OS_REPLACE_ALLOWED_IN] if name not in functions]
    modules = {stem for _, stem, text in sources if "rclpy.init(" in text} | {
        p for p, _, t in sources if "rclpy.init(" in t
    }
    unused += [name for name in RCLPY_INIT_ALLOWED_IN if name not in modules]
    assert not unused, f"exceptions no longer needed, remove them from the guard: {unused}"
