"""report: a run directory -> PNG plots of success rate, intervention rate, episode return and losses.

Two sources, both written by a run without extra logging:
- the learner's TensorBoard event files (``tensorboard/`` anywhere under the run directory, e.g. RUN_DIR/learner/
  tensorboard from the runner): losses, Q and buffer sizes, and the learner's rolling episode metrics (last 50
  episodes), all over learner updates;
- recorded bags (directories with a ``metadata.yaml`` under the run directory, e.g. RUN_DIR/bags/ with --record):
  every hilserl/episodes EpisodeSummary, which gives the per-episode curves (rolling success rate, intervention
  rate, return). Evaluation episodes are plotted apart from training ones, as they measure the policy alone.

Per-episode curves come from the bags when there are any, else from TensorBoard over updates.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from so101_contract.cli import positive_int

EPISODE_TYPE = "so101_hilserl_interfaces/msg/EpisodeSummary"
EPISODE_TAGS = {  # plot file -> (learner TensorBoard tag, y label)
    "success_rate": ("episodes/success_rate", "success rate"),
    "intervention_rate": ("episodes/intervention_rate", "intervention rate (share of steps)"),
    "episode_return": ("episodes/return", "episode return"),
}


class ReportError(RuntimeError):
    pass


@dataclass
class Episodes:
    """Per-episode values in the order the episodes ended (training episodes only, or evaluation only)."""

    number: np.ndarray  # 1-based position among all recorded episodes (training and evaluation), for the x axis
    success: np.ndarray
    intervention_rate: np.ndarray
    episode_return: np.ndarray

    def __len__(self) -> int:
        return len(self.success)


@dataclass
class RunData:
    scalars: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)  # tag -> (updates, values)
    episodes: Episodes | None = None
    evaluation: Episodes | None = None
    sources: list[str] = field(default_factory=list)


def read_scalars(run_dir: Path) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], list[Path]]:
    """Every scalar of every TensorBoard directory under ``run_dir``, sorted by step (a resumed run appends)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    directories = sorted({p.parent for p in run_dir.rglob("events.out.tfevents.*")})
    merged: dict[str, list[tuple[int, float]]] = {}
    for directory in directories:
        accumulator = EventAccumulator(str(directory), size_guidance={"scalars": 0})  # 0: keep every point
        accumulator.Reload()
        for tag in accumulator.Tags()["scalars"]:
            merged.setdefault(tag, []).extend((e.step, e.value) for e in accumulator.Scalars(tag))
    scalars = {}
    for tag, points in merged.items():
        points.sort(key=lambda p: p[0])
        steps, values = zip(*points, strict=True)
        scalars[tag] = (np.asarray(steps), np.asarray(values, dtype=np.float64))
    return scalars, directories


def read_episodes(run_dir: Path) -> tuple[Episodes | None, Episodes | None, list[Path]]:
    """(training, evaluation) episodes of every bag under ``run_dir``; one record per (actor, episode id)."""
    from rosbags.highlevel import AnyReader

    from so101_bringup.recorder import project_typestore

    bags = sorted(p.parent for p in run_dir.rglob("metadata.yaml"))
    found: dict[tuple[str, int], tuple[int, object]] = {}
    typestore = project_typestore()
    used = []
    for bag in bags:
        with AnyReader([bag], default_typestore=typestore) as reader:
            connections = [c for c in reader.connections if c.msgtype == EPISODE_TYPE]
            if connections:
                used.append(bag)
            for connection, timestamp, raw in reader.messages(connections=connections):
                msg = reader.deserialize(raw, connection.msgtype)
                found.setdefault((msg.actor_id, int(msg.episode_id)), (timestamp, msg))

    ordered = [m for _, m in sorted(found.values(), key=lambda tm: tm[0])]

    def collect(evaluation: bool) -> Episodes | None:
        chosen = [(i + 1, m) for i, m in enumerate(ordered) if bool(m.evaluation) == evaluation]
        if not chosen:
            return None
        msgs = [m for _, m in chosen]
        return Episodes(
            number=np.array([i for i, _ in chosen]),
            success=np.array([float(m.success) for m in msgs]),
            intervention_rate=np.array([m.intervention_steps / max(m.steps, 1) for m in msgs]),
            episode_return=np.array([m.episode_return for m in msgs], dtype=np.float64),
        )

    return collect(False), collect(True), used


def load_run(run_dir: Path) -> RunData:
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ReportError(f"{run_dir} is not a directory; pass the run directory (--run-dir of the runner)")
    data = RunData()
    data.scalars, tb_dirs = read_scalars(run_dir)
    data.episodes, data.evaluation, bags = read_episodes(run_dir)
    data.sources = [str(p) for p in (*tb_dirs, *bags)]
    if not data.scalars and data.episodes is None and data.evaluation is None:
        raise ReportError(
            f"{run_dir} holds nothing to plot: no TensorBoard event files (events.out.tfevents.*, written by the "
            "learner under run_dir/tensorboard) and no bag with hilserl/episodes (record with the runner's --record "
            "or python -m so101_bringup.recorder). Point at the run directory of a run that got past its first "
            "learner stats period."
        )
    return data


def rolling_mean(values: np.ndarray, window: int) -> np.ndarray:
    """Mean of the last ``window`` values at each index (fewer at the start): what 'success rate' means per episode."""
    cumulative = np.cumsum(np.insert(np.asarray(values, dtype=np.float64), 0, 0.0))
    index = np.arange(1, len(values) + 1)
    start = np.maximum(index - window, 0)
    return (cumulative[index] - cumulative[start]) / (index - start)


def _figure(title: str, xlabel: str, ylabel: str):
    import matplotlib

    matplotlib.use("Agg")  # files only; no display on a robot PC or in CI
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=100)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    return fig, ax


def _save(fig, path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def write_report(data: RunData, out: Path, window: int = 20) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, (tag, ylabel) in EPISODE_TAGS.items():
        if data.episodes is not None:
            values = getattr(data.episodes, name if name != "success_rate" else "success")
            fig, ax = _figure(f"{ylabel} per episode (rolling mean over {window})", "episode", ylabel)
            x = data.episodes.number
            if name != "success_rate":
                ax.plot(x, values, ".", alpha=0.4, label="episode")
            else:
                ax.plot(x, values, "|", alpha=0.4, label="episode (1 = success)")
            ax.plot(x, rolling_mean(values, window), "-", label=f"training, last {window}")
            if data.evaluation is not None:
                ev = getattr(data.evaluation, name if name != "success_rate" else "success")
                ax.plot(data.evaluation.number, rolling_mean(ev, window), "o--", label=f"evaluation, last {window}")
            ax.legend()
            written.append(_save(fig, out / f"{name}.png"))
        elif tag in data.scalars:
            steps, values = data.scalars[tag]
            fig, ax = _figure(f"{ylabel} (learner, last 50 episodes)", "learner updates", ylabel)
            ax.plot(steps, values, "-")
            written.append(_save(fig, out / f"{name}.png"))
    losses = {tag: series for tag, series in data.scalars.items() if tag.startswith("loss/")}
    if losses:
        fig, ax = _figure("learner losses and Q", "learner updates", "value")
        for tag, (steps, values) in sorted(losses.items()):
            ax.plot(steps, values, "-", label=tag.removeprefix("loss/"))
        ax.legend()
        written.append(_save(fig, out / "losses.png"))
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m so101_bringup.report",
        description="Plot a run directory: success rate (rolling), intervention rate, episode return and the "
        "learner's losses, as PNG files. Reads the learner's TensorBoard events and the hilserl/episodes topic "
        "of any recorded bag under the run directory.",
    )
    parser.add_argument("run_dir", type=Path, help="run directory (the runner's --run-dir, or a learner run_dir)")
    parser.add_argument("--out", type=Path, help="where the PNG files go (default: RUN_DIR/report)")
    parser.add_argument("--window", type=positive_int, default=20, help="episodes in the rolling mean (default 20)")
    args = parser.parse_args(argv)
    if args.window < 1:
        parser.error("--window must be at least 1 episode")
    try:
        data = load_run(args.run_dir)
    except ReportError as err:
        print(f"report: {err}", file=sys.stderr)
        return 2
    written = write_report(data, args.out or args.run_dir / "report", args.window)
    episodes = len(data.episodes) if data.episodes is not None else 0
    print(f"report from {', '.join(data.sources)} ({episodes} training episodes): " + ", ".join(map(str, written)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
