"""parameters: every parameter of a graph node, from its config dataclass (the one source of defaults, descriptions
and bounds), with the value the mode's parameter file gives where it differs. What `ros2 param describe` tells on a
ROS install, for machines without the ROS tools, and the reference the package READMEs point to.

    python -m so101_bringup.parameters actor            # one node (sim mode's file)
    python -m so101_bringup.parameters --mode real      # every node of the real graph
"""

from __future__ import annotations

import argparse
import importlib
import sys
import textwrap

from so101_bringup.graph import MODES, PARAMETER_FILES, GraphOptions, build_graph, config_path, file_parameters
from so101_contract import settings
from so101_contract.cli import did_you_mean

# Options that make build_graph list every node of a mode (real mode's checks need ports, ids, a camera, a model).
EVERY_NODE = {
    "sim": GraphOptions(reward_model="model"),
    "real": GraphOptions(
        mode="real", follower_port="port", leader_port="port", camera_source="0", reward_model="model",
        follower_id="follower", leader_id="leader",
    ),
}  # fmt: skip


def graph_nodes(mode: str) -> dict:
    """Every node of a mode's graph: {name: NodeSpec}."""
    return {spec.name: spec for spec in build_graph(EVERY_NODE[mode])}


def node_config(module: str, node: str) -> type:
    """The config dataclass a node module declares (``CONFIGS[node]`` for a module of several roles, else
    ``CONFIG``)."""
    loaded = importlib.import_module(module)
    configs = getattr(loaded, "CONFIGS", None)
    return configs[node] if configs and node in configs else loaded.CONFIG


def describe(node: str, module: str, mode: str) -> str:
    """The parameter table of one node: name, type, default, bounds, the mode file's value, description."""
    file_values = file_parameters(config_path(PARAMETER_FILES[mode]), node)
    lines = [f"{node} ({module}); parameter file config/{PARAMETER_FILES[mode]}"]
    for name, (default, description, bounds) in settings.table(node_config(module, node)).items():
        kind = type(default).__name__
        allowed = f" in {list(bounds)}" if bounds else ""
        given = f"; {PARAMETER_FILES[mode]}: {file_values[name]!r}" if name in file_values else ""
        lines.append(f"  {name}: {kind} = {default!r}{allowed}{given}")
        lines.extend(textwrap.wrap(description, 100, initial_indent="      ", subsequent_indent="      "))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m so101_bringup.parameters", description=__doc__.split("\n\n")[0])
    parser.add_argument("nodes", nargs="*", help="node names (default: every node of the mode's graph)")
    parser.add_argument("--mode", choices=MODES, default=GraphOptions.mode, help="whose graph and parameter file")
    args = parser.parse_args(argv)
    specs = graph_nodes(args.mode)
    for name in args.nodes:
        if name not in specs:
            print(f"error: no node {name!r} in the {args.mode} graph{did_you_mean(name, specs)}", file=sys.stderr)
            return 2
    for name in args.nodes or specs:
        print(describe(name, specs[name].module, args.mode), end="\n\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
