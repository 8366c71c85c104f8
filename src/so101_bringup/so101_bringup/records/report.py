"""report: a run directory -> PNG plots of success (autonomous and assisted), intervention fraction, episode return,
evaluation success and losses, and a printed summary.

It reads what a run writes anyway: episodes.csv (else the bags' hilserl/episodes), and the learner's TensorBoard
events. A resumed run is one run, with a dotted line where each later session began. Benchmarks call
``summarize_run(run_dir)`` -> ``RunSummary``."""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from so101_bringup.records.episode_log import EpisodeRow, find_episode_log, read_episode_log
from so101_contract.cli import positive_int
from so101_contract.outcomes import Outcome, OutcomeRates, rates
from so101_contract.run_dir import LearnerDir
from so101_hilserl_learner.statistics import EPISODE_RETURN_TAG, TAGS

EPISODE_TYPE = "so101_hilserl_interfaces/msg/EpisodeSummary"
EPISODE_TAGS = {  # plot file -> (learner TensorBoard tag, y label)
    "success_rate": (TAGS["success_rate"], "training success rate"),
    "intervention_rate": (TAGS["intervention_fraction"], "intervention fraction (share of steps)"),
    "episode_return": (EPISODE_RETURN_TAG, "episode return"),
    "evaluation_success": (TAGS["evaluation_success_rate"], "evaluation success rate (policy alone)"),
}
SUCCESS_SPLIT_TAGS = {"autonomous": TAGS["autonomous_success_rate"], "assisted": TAGS["assisted_success_rate"]}
EVALUATION_WINDOW = 20  # evaluation episodes in the rolling evaluation success (the learner's window too)
SUMMARY_BLOCK = 20  # episodes in the summary's first and last blocks


class ReportError(RuntimeError):
    pass


@dataclass
class Episodes:
    """Per-episode values in the order the episodes ended (training episodes only, or evaluation only)."""

    number: np.ndarray  # 1-based position among all recorded episodes (training and evaluation), for the x axis
    success: np.ndarray
    autonomous: np.ndarray  # success without any intervention step (so101_contract.outcomes)
    assisted: np.ndarray
    intervention_steps: np.ndarray
    steps: np.ndarray
    episode_return: np.ndarray

    @property
    def intervention_rate(self) -> np.ndarray:
        """Per episode: intervention steps / steps (0 for an empty episode)."""
        return self.intervention_steps / np.maximum(self.steps, 1)

    def __len__(self) -> int:
        return len(self.success)

    @classmethod
    def of(cls, numbered: list[tuple[int, Outcome]]) -> Episodes | None:
        if not numbered:
            return None
        outcomes = [o for _, o in numbered]

        def column(value, dtype=np.float64):
            return np.array([value(o) for o in outcomes], dtype=dtype)

        return cls(
            number=np.array([n for n, _ in numbered]),
            success=column(lambda o: o.success),
            autonomous=column(lambda o: o.autonomous_success),
            assisted=column(lambda o: o.assisted_success),
            intervention_steps=column(lambda o: o.intervention_steps),
            steps=column(lambda o: o.steps),
            episode_return=column(lambda o: o.episode_return),
        )


def split_episodes(ordered: Sequence[Outcome]) -> tuple[Episodes | None, Episodes | None]:
    """(training, evaluation) of episodes in the order they ended, numbered by position among all of them."""
    numbered = list(enumerate(ordered, start=1))
    return (
        Episodes.of([(n, o) for n, o in numbered if not o.evaluation]),
        Episodes.of([(n, o) for n, o in numbered if o.evaluation]),
    )


@dataclass
class RunData:
    scalars: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)  # tag -> (updates, values)
    episodes: Episodes | None = None
    evaluation: Episodes | None = None
    rows: list[EpisodeRow] | None = None  # episodes.csv, when the run has one
    sources: list[str] = field(default_factory=list)
    checkpoint_updates: int | None = None  # the newest learner checkpoint's update count, when there is one

    @property
    def session_starts(self) -> list[int]:
        """Episode numbers (1-based, as Episodes.number) at which a session after the first began."""
        rows = self.rows or []
        return [i + 1 for i in range(1, len(rows)) if rows[i].session != rows[i - 1].session]


@dataclass(frozen=True)
class RunSummary:
    """What a learning run achieved, from its episodes.csv: the first and the last ``block`` evaluation and training
    episodes (they overlap when a run has fewer than two blocks), the data and the time it took."""

    block: int
    training_episodes: int
    evaluation_episodes: int
    evaluation_first: OutcomeRates
    evaluation_last: OutcomeRates
    training_first: OutcomeRates
    training_last: OutcomeRates
    environment_steps: int  # steps of every episode, training and evaluation
    training_steps: int
    wall_time_s: float  # the last row's: the runner's time in this run directory
    learner_updates: int | None  # the newest checkpoint's, else the last row's (None before the learner's first stats)
    achieved_utd: float
    requested_utd: float
    sessions: int = 1  # the runner's starts in this run directory (1 + resumes)

    @property
    def evaluation_gain_points(self) -> float:
        """Evaluation success of the last block minus the first, in percentage points (NaN without evaluations)."""
        return 100.0 * (self.evaluation_last.success - self.evaluation_first.success)

    @property
    def intervention_ratio(self) -> float:
        """Intervention fraction of the last training block over the first's (NaN when the first's is 0 or absent)."""
        first = self.training_first.intervention_fraction
        return self.training_last.intervention_fraction / first if first and not math.isnan(first) else math.nan

    def text(self) -> str:
        def pct(value: float) -> str:
            return "n/a" if math.isnan(value) else f"{100 * value:.0f}%"

        def blocks(first: OutcomeRates, last: OutcomeRates, total: int) -> str:
            overlap = f" (only {total}: the blocks overlap)" if total < 2 * self.block else ""
            return f"first {first.episodes} / last {last.episodes} of {total}{overlap}"

        b = self.block
        gain = "n/a" if math.isnan(self.evaluation_gain_points) else f"{self.evaluation_gain_points:+.0f} points"
        ratio = "n/a" if math.isnan(self.intervention_ratio) else f"x{self.intervention_ratio:.2f}"
        updates = "n/a" if self.learner_updates is None else str(self.learner_updates)
        utd = "/".join("n/a" if math.isnan(v) else f"{v:.2f}" for v in (self.achieved_utd, self.requested_utd))
        return "\n".join(
            [
                f"evaluation success (policy alone), first {b} -> last {b}: {pct(self.evaluation_first.success)} -> "
                f"{pct(self.evaluation_last.success)} ({gain}; "
                f"{blocks(self.evaluation_first, self.evaluation_last, self.evaluation_episodes)})",
                f"training intervention fraction, first {b} -> last {b}: "
                f"{pct(self.training_first.intervention_fraction)} -> {pct(self.training_last.intervention_fraction)} "
                f"({ratio}; {blocks(self.training_first, self.training_last, self.training_episodes)})",
                f"training success, last {b}: {pct(self.training_last.success)} (autonomous "
                f"{pct(self.training_last.autonomous_success)}, assisted {pct(self.training_last.assisted_success)})",
                f"environment steps {self.environment_steps} ({self.training_steps} training), learner updates "
                f"{updates}, UTD {utd}, wall time {self.wall_time_s / 60:.1f} min, {self.sessions} session"
                + ("s" if self.sessions != 1 else ""),
            ]
        )


def summarize(
    rows: Sequence[EpisodeRow], block: int = SUMMARY_BLOCK, checkpoint_updates: int | None = None
) -> RunSummary:
    """The summary of an episodes.csv's rows (``read_episode_log``); ReportError for no rows. ``checkpoint_updates``:
    the learner's newest checkpoint (``newest_checkpoint_updates``), whose count replaces the last row's."""
    if not rows:
        raise ReportError("no episode to summarise: the run's episodes.csv has no row yet")
    if block < 1:
        raise ValueError(f"block={block}: must be at least 1 episode")
    training = [r.outcome for r in rows if not r.evaluation]
    evaluation = [r.outcome for r in rows if r.evaluation]
    last = rows[-1]
    return RunSummary(
        block=block,
        training_episodes=len(training),
        evaluation_episodes=len(evaluation),
        evaluation_first=rates(evaluation[:block]),
        evaluation_last=rates(evaluation[-block:]),
        training_first=rates(training[:block]),
        training_last=rates(training[-block:]),
        environment_steps=sum(r.steps for r in rows),
        training_steps=sum(o.steps for o in training),
        wall_time_s=last.wall_time_s,
        learner_updates=last.learner_updates if checkpoint_updates is None else checkpoint_updates,
        achieved_utd=last.achieved_utd,
        requested_utd=last.requested_utd,
        sessions=max(r.session for r in rows),
    )


def newest_checkpoint_updates(run_dir: Path) -> int | None:
    """The update count of the newest learner checkpoint under ``run_dir`` (its LATEST); None when there is no
    checkpoint, or several learners' (no one count is the run's)."""
    from so101_hilserl_learner.checkpoint import latest_name, step_of

    found = [p.parent for p in Path(run_dir).rglob("LATEST") if p.parent == LearnerDir(p.parent.parent).checkpoints]
    names = [latest_name(directory) for directory in found]
    return step_of(names[0]) if len(names) == 1 and names[0] else None


def load_episode_rows(run_dir: Path) -> tuple[list[EpisodeRow], Path] | None:
    """The rows of the episodes.csv under ``run_dir`` and its path; None when there is none. ReportError when it
    cannot be read (several under the run dir, a damaged file), naming the file."""
    try:
        path = find_episode_log(Path(run_dir))
        return None if path is None else (read_episode_log(path), path)
    except (ValueError, OSError) as err:
        raise ReportError(str(err)) from None


def summarize_run(run_dir: Path, block: int = SUMMARY_BLOCK) -> RunSummary:
    """``summarize`` of the episodes.csv under ``run_dir``; ReportError naming the directory when it has none."""
    loaded = load_episode_rows(run_dir)
    if loaded is None:
        raise ReportError(f"{run_dir} has no episodes.csv (the runner writes RUN_DIR/episodes.csv): nothing to sum up")
    return summarize(loaded[0], block, newest_checkpoint_updates(run_dir))


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

    from so101_bringup.records.bag_types import project_typestore

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

    ordered = [Outcome.from_msg(m) for _, m in sorted(found.values(), key=lambda tm: tm[0])]
    return (*split_episodes(ordered), used)


def load_run(run_dir: Path) -> RunData:
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ReportError(f"{run_dir} is not a directory; pass the run directory (--run-dir of the runner)")
    data = RunData()
    data.scalars, tb_dirs = read_scalars(run_dir)
    loaded = load_episode_rows(run_dir)
    if loaded is not None and loaded[0]:  # the runner's per-episode log: no need to read the bags
        data.rows, csv_path = loaded
        data.episodes, data.evaluation = split_episodes([r.outcome for r in data.rows])
        episode_sources = [csv_path]
    else:
        data.episodes, data.evaluation, episode_sources = read_episodes(run_dir)
    data.sources = [str(p) for p in (*tb_dirs, *episode_sources)]
    data.checkpoint_updates = newest_checkpoint_updates(run_dir)
    if not data.scalars and data.episodes is None and data.evaluation is None:
        raise ReportError(
            f"{run_dir} holds nothing to plot: no episodes.csv with a row (the runner writes it), no TensorBoard "
            "event files (events.out.tfevents.*, written by the learner under run_dir/tensorboard) and no bag with "
            "hilserl/episodes (record with the runner's --record or python -m so101_bringup.records.recorder). Point "
            "at the run directory of a run that got past its first episode."
        )
    return data


def rolling_sum(values: np.ndarray, window: int) -> np.ndarray:
    """Sum of the last ``window`` values at each index (fewer at the start)."""
    cumulative = np.cumsum(np.insert(np.asarray(values, dtype=np.float64), 0, 0.0))
    index = np.arange(1, len(values) + 1)
    return cumulative[index] - cumulative[np.maximum(index - window, 0)]


def rolling_mean(values: np.ndarray, window: int) -> np.ndarray:
    """Mean of the last ``window`` values at each index (fewer at the start): what 'success rate' means per episode."""
    index = np.arange(1, len(values) + 1)
    return rolling_sum(values, window) / np.minimum(index, window)


def rolling_ratio(numerator: np.ndarray, denominator: np.ndarray, window: int) -> np.ndarray:
    """sum(numerator) / sum(denominator) over the last ``window`` at each index: the intervention fraction of a
    group of episodes as so101_contract.outcomes defines it (long episodes weigh more); 0 where no step."""
    top, bottom = rolling_sum(numerator, window), rolling_sum(denominator, window)
    return np.divide(top, bottom, out=np.zeros_like(top), where=bottom > 0)


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


def _episode_plot(name: str, ylabel: str, episodes: Episodes, window: int):
    """One per-episode figure of training episodes: each episode's value and the rolling value over ``window``."""
    x = episodes.number
    fig, ax = _figure(f"{ylabel} (rolling over {window} training episodes)", "episode", ylabel)
    if name == "success_rate":
        ax.plot(x, episodes.success, "|", alpha=0.4, label="episode (1 = success)")
        ax.plot(x, rolling_mean(episodes.success, window), "-", label=f"success, last {window}")
        ax.plot(x, rolling_mean(episodes.autonomous, window), "-", label="autonomous (no intervention)")
        ax.plot(x, rolling_mean(episodes.assisted, window), "--", label="assisted (with intervention)")
        ax.set_ylim(-0.05, 1.05)
    elif name == "intervention_rate":
        ax.plot(x, episodes.intervention_rate, ".", alpha=0.4, label="episode")
        ax.plot(x, rolling_ratio(episodes.intervention_steps, episodes.steps, window), "-", label=f"last {window}")
    else:
        ax.plot(x, episodes.episode_return, ".", alpha=0.4, label="episode")
        ax.plot(x, rolling_mean(episodes.episode_return, window), "-", label=f"last {window}")
    return fig


def _evaluation_plot(evaluation: Episodes):
    fig, ax = _figure(
        f"evaluation success (policy alone; rolling over {EVALUATION_WINDOW} evaluation episodes)",
        "episode",
        "evaluation success rate",
    )
    ax.plot(evaluation.number, evaluation.success, "o", alpha=0.4, label="evaluation episode (1 = success)")
    ax.plot(evaluation.number, rolling_mean(evaluation.success, EVALUATION_WINDOW), "-",
            label=f"last {EVALUATION_WINDOW} evaluation episodes")  # fmt: skip
    ax.set_ylim(-0.05, 1.05)
    return fig


def _mark_sessions(fig, starts: list[int]) -> None:
    """A dotted line where each resumed session began, so a curve's jump can be read against it."""
    ax = fig.axes[0]
    for i, episode in enumerate(starts):
        ax.axvline(episode - 0.5, color="grey", linestyle=":", label="resumed" if i == 0 else None)
    ax.legend()


def _scalar_plot(data: RunData, name: str, tag: str, ylabel: str):
    steps, values = data.scalars[tag]
    window = "last 20 evaluation episodes" if name == "evaluation_success" else "last 50 training episodes"
    fig, ax = _figure(f"{ylabel} (learner, {window})", "learner updates", ylabel)
    ax.plot(steps, values, "-", label=tag)
    if name == "success_rate":
        for label, split_tag in SUCCESS_SPLIT_TAGS.items():
            if split_tag in data.scalars:
                ax.plot(*data.scalars[split_tag], "--", label=label)
    ax.legend()
    return fig


def write_report(data: RunData, out: Path, window: int = 20) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, (tag, ylabel) in EPISODE_TAGS.items():
        if name == "evaluation_success" and data.evaluation is not None:
            fig = _evaluation_plot(data.evaluation)
            _mark_sessions(fig, data.session_starts)
        elif name != "evaluation_success" and data.episodes is not None:
            fig = _episode_plot(name, ylabel, data.episodes, window)
            _mark_sessions(fig, data.session_starts)
        elif data.episodes is None and data.evaluation is None and tag in data.scalars:
            fig = _scalar_plot(data, name, tag, ylabel)
        else:
            continue
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
        prog="python -m so101_bringup.records.report",
        description="Plot a run directory: training success (autonomous and assisted, rolling), intervention "
        "fraction, episode return, evaluation success and the learner's losses, as PNG files, and print a summary. "
        "Reads the runner's episodes.csv (else the hilserl/episodes topic of any recorded bag) and the learner's "
        "TensorBoard events under the run directory.",
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
    evaluations = len(data.evaluation) if data.evaluation is not None else 0
    print(
        f"report from {', '.join(data.sources)} ({episodes} training, {evaluations} evaluation episodes): "
        + ", ".join(map(str, written))
    )
    if data.rows:
        print(summarize(data.rows, checkpoint_updates=data.checkpoint_updates).text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
