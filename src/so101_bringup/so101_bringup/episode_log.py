"""RUN_DIR/episodes.csv: one row per finished episode (hilserl/episodes), written by the runner as each arrives and
read by the report and the benchmarks.

A row is flushed when written, so a crash loses nothing already written; a resumed run appends (the header is
written once, and an incomplete last line left by a kill mid-write is dropped). Outcomes follow
so101_contract.outcomes. The learner's columns are the newest LearnerStats when the episode arrived (about 1 s
old; empty before the first).
"""

from __future__ import annotations

import csv
import math
import time
from dataclasses import dataclass
from pathlib import Path

from so101_contract.outcomes import Outcome

EPISODE_LOG = "episodes.csv"

COLUMNS = (
    "wall_time_s",  # seconds the runner had run in this run directory (a resumed run continues from the last row)
    "sim_time_s",  # the EpisodeSummary's stamp: simulated time in sim/lockstep, the wall clock's epoch otherwise
    "actor_id",
    "episode_id",
    "evaluation",
    "success",
    "autonomous_success",
    "assisted_success",
    "steps",
    "intervention_steps",
    "intervention_fraction",
    "episode_return",
    "end_reason",
    "policy_version",
    "learner_updates",
    "achieved_utd",
    "requested_utd",
    "training_transitions",
)


@dataclass(frozen=True)
class EpisodeRow:
    """One row of episodes.csv. The learner's fields are None (ints) or NaN (floats) before its first stats."""

    wall_time_s: float
    sim_time_s: float
    actor_id: str
    episode_id: int
    evaluation: bool
    success: bool
    steps: int
    intervention_steps: int
    episode_return: float
    end_reason: str
    policy_version: int
    learner_updates: int | None
    achieved_utd: float
    requested_utd: float
    training_transitions: int | None

    @property
    def outcome(self) -> Outcome:
        return Outcome(self.success, self.intervention_steps, self.steps, self.evaluation, self.episode_return)

    @classmethod
    def from_messages(cls, summary, stats, wall_time_s: float) -> EpisodeRow:
        """From an EpisodeSummary and the newest LearnerStats (None before the first)."""
        stamp = summary.header.stamp
        return cls(
            wall_time_s=wall_time_s,
            sim_time_s=stamp.sec + stamp.nanosec * 1e-9,
            actor_id=str(summary.actor_id),
            episode_id=int(summary.episode_id),
            evaluation=bool(summary.evaluation),
            success=bool(summary.success),
            steps=int(summary.steps),
            intervention_steps=int(summary.intervention_steps),
            episode_return=float(summary.episode_return),
            end_reason=str(summary.end_reason),
            policy_version=int(summary.policy_version),
            learner_updates=None if stats is None else int(stats.updates),
            achieved_utd=math.nan if stats is None else float(stats.update_to_data_ratio),
            requested_utd=math.nan if stats is None else float(stats.requested_utd),
            training_transitions=None if stats is None else int(stats.training_transitions),
        )

    def cells(self) -> list[str]:
        o = self.outcome
        values = {
            **{name: getattr(self, name) for name in COLUMNS if hasattr(self, name)},
            "autonomous_success": o.autonomous_success,
            "assisted_success": o.assisted_success,
            "intervention_fraction": o.intervention_fraction,
        }
        return [_cell(values[name]) for name in COLUMNS]


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        # microseconds, trailing zeros off: float32 fields read back as written (0.98, not 0.980000019)
        return "nan" if math.isnan(value) else (f"{value:.6f}".rstrip("0").rstrip(".") or "0")
    return str(value)


class EpisodeLog:
    """Appends rows to ``path``; created with its header when missing. A header that is not this version's columns
    is refused (ValueError naming the file and the fix): appending would misalign every column."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.wall_offset_s = 0.0  # the last row's wall_time_s: a resumed run continues the run's wall time
        if self.path.is_file() and self.path.stat().st_size > 0:
            self._check_and_trim()
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "w", newline="") as f:
                csv.writer(f).writerow(COLUMNS)
        self._file = open(self.path, "a", newline="")
        self._writer = csv.writer(self._file)
        self._started = time.monotonic()

    def wall_time_s(self) -> float:
        """Seconds since this log was opened (the runner's start), plus the run's earlier sessions."""
        return self.wall_offset_s + time.monotonic() - self._started

    def _check_and_trim(self) -> None:
        data = self.path.read_bytes()
        if not data.endswith(b"\n"):  # killed in the middle of a row: that row was never written
            with open(self.path, "r+b") as f:
                f.truncate(data.rfind(b"\n") + 1)
            data = self.path.read_bytes()
        lines = data.decode("utf-8", errors="replace").splitlines()
        header = next(csv.reader(lines[:1]), [])
        if tuple(header) != COLUMNS:
            raise ValueError(
                f"{self.path}: its header is not this version's columns ({','.join(COLUMNS)}); move it away (or use "
                "another --run-dir) so the runner starts a new one"
            )
        if len(lines) > 1:
            try:
                self.wall_offset_s = float(next(csv.reader(lines[-1:]))[0])
            except (ValueError, IndexError):
                self.wall_offset_s = 0.0

    def append(self, row: EpisodeRow) -> None:
        self._writer.writerow(row.cells())
        self._file.flush()  # a crash of the runner loses no row it wrote

    def close(self) -> None:
        self._file.close()


def _parse(path: Path, number: int, record: dict[str, str]) -> EpisodeRow:
    def field(name: str, kind):
        text = record[name]
        try:
            if kind is bool:
                if text not in ("0", "1"):
                    raise ValueError
                return text == "1"
            if kind == "int?":
                return int(text) if text else None
            return kind(text)
        except ValueError:
            raise ValueError(f"{path} line {number}: {name}={text!r} is not a {kind if kind != 'int?' else 'int'}"
                             "; the file is damaged (fix or remove that line)") from None  # fmt: skip

    return EpisodeRow(
        wall_time_s=field("wall_time_s", float),
        sim_time_s=field("sim_time_s", float),
        actor_id=record["actor_id"],
        episode_id=field("episode_id", int),
        evaluation=field("evaluation", bool),
        success=field("success", bool),
        steps=field("steps", int),
        intervention_steps=field("intervention_steps", int),
        episode_return=field("episode_return", float),
        end_reason=record["end_reason"],
        policy_version=field("policy_version", int),
        learner_updates=field("learner_updates", "int?"),
        achieved_utd=field("achieved_utd", float),
        requested_utd=field("requested_utd", float),
        training_transitions=field("training_transitions", "int?"),
    )


def read_episode_log(path: Path) -> list[EpisodeRow]:
    """Every row of an episodes.csv, in the order written. ValueError naming the file (and line) when it is not one:
    a wrong header, a short row or a cell that does not parse."""
    path = Path(path)
    with open(path, newline="") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header is None or tuple(header) != COLUMNS:
            raise ValueError(f"{path}: not an episodes.csv of this version (its header is not {','.join(COLUMNS)})")
        rows = []
        for number, cells in enumerate(reader, start=2):
            if len(cells) != len(COLUMNS):
                raise ValueError(f"{path} line {number}: {len(cells)} cells, {len(COLUMNS)} expected; fix or remove it")
            rows.append(_parse(path, number, dict(zip(COLUMNS, cells, strict=True))))
    return rows


def find_episode_log(run_dir: Path) -> Path | None:
    """The episodes.csv under ``run_dir`` (searched like the bags), None when there is none. ValueError when there
    are several: curves of different runs must not be mixed."""
    found = sorted(p for p in Path(run_dir).rglob(EPISODE_LOG) if p.is_file())
    if len(found) > 1:
        raise ValueError(
            f"{run_dir} holds {len(found)} {EPISODE_LOG} files ({', '.join(map(str, found))}); point at one run's "
            "directory"
        )
    return found[0] if found else None
