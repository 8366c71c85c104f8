"""RUN_DIR/episodes.csv: one row per finished episode, written by the runner as each arrives, read by the report and
the benchmarks.

Each row is flushed when written; a resumed run appends with the next ``session``. A damaged line is moved to
episodes.damaged.csv and named by line when the run resumes. ``RunHistory`` is what a resumed session continues."""

from __future__ import annotations

import csv
import math
import os
import time
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path

from so101_contract.files import atomic_write_bytes
from so101_contract.outcomes import Outcome
from so101_contract.run_dir import EPISODE_LOG, RunDir


def _column(source: str | None = None, derived: bool = False):
    """A column of episodes.csv: ``source`` is the EpisodeSummary field it comes from ("summary.steps") or the
    LearnerStats field ("stats.updates"); a ``derived`` column is computed from the others."""
    return field(init=not derived, default=None if derived else MISSING, metadata={"source": source})


@dataclass(frozen=True)
class EpisodeRow:
    """One row of episodes.csv; the fields, in order, are its columns (COLUMNS), each read from the message field it
    names. The learner's fields are None (ints) or NaN (floats) before its first stats."""

    wall_time_s: float = _column()  # seconds the runner had run in this run directory (resumes continue it)
    sim_time_s: float = _column()  # the summary's stamp: simulated time in sim/lockstep, else wall-clock epoch
    actor_id: str = _column("summary.actor_id")
    episode_id: int = _column("summary.episode_id")
    evaluation: bool = _column("summary.evaluation")
    success: bool = _column("summary.success")
    autonomous_success: bool = _column(derived=True)
    assisted_success: bool = _column(derived=True)
    steps: int = _column("summary.steps")
    intervention_steps: int = _column("summary.intervention_steps")
    intervention_fraction: float = _column(derived=True)
    episode_return: float = _column("summary.episode_return")
    end_reason: str = _column("summary.end_reason")
    policy_version: int = _column("summary.policy_version")
    learner_updates: int | None = _column("stats.updates")
    achieved_utd: float = _column("stats.update_to_data_ratio")
    requested_utd: float = _column("stats.requested_utd")
    training_transitions: int | None = _column("stats.training_transitions")
    session: int = field(default=1, metadata={"source": None})  # 1 for the run's first start, +1 for each resume

    def __post_init__(self):
        o = self.outcome
        for name in ("autonomous_success", "assisted_success", "intervention_fraction"):
            object.__setattr__(self, name, getattr(o, name))

    @property
    def outcome(self) -> Outcome:
        return Outcome(self.success, self.intervention_steps, self.steps, self.evaluation, self.episode_return)

    @classmethod
    def from_messages(cls, summary, stats, wall_time_s: float, session: int = 1) -> EpisodeRow:
        """From an EpisodeSummary and the newest LearnerStats (None before the first)."""
        stamp = summary.header.stamp
        values = {"wall_time_s": wall_time_s, "sim_time_s": stamp.sec + stamp.nanosec * 1e-9, "session": session}
        for f in fields(cls):
            source = f.metadata["source"]
            if source is None:
                continue
            message, _, name = source.partition(".")
            if message == "stats" and stats is None:
                values[f.name] = math.nan if _kind(f) is float else None
            else:
                values[f.name] = _kind(f)(getattr(summary if message == "summary" else stats, name))
        return cls(**values)

    def cells(self) -> list[str]:
        return [_cell(getattr(self, name)) for name in COLUMNS]


COLUMNS = tuple(f.name for f in fields(EpisodeRow))


def _kind(f) -> type:
    """A column's Python type (int for ``int | None``)."""
    return {"float": float, "str": str, "int": int, "bool": bool, "int | None": int}[f.type]


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
    is refused (ValueError naming the file and the fix): appending would misalign every column. An existing file is
    checked line by line first; ``repairs`` lists what was moved to episodes.damaged.csv and why."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.repairs: list[str] = []
        self.history = RunHistory()
        if self.path.is_file() and self.path.stat().st_size > 0:
            self.history = RunHistory.of(self._check_and_repair())
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "w", newline="") as f:
                csv.writer(f).writerow(COLUMNS)
        self.session = self.history.sessions + 1
        self._file = open(self.path, "a", newline="")
        self._writer = csv.writer(self._file)
        self._started = time.monotonic()

    def wall_time_s(self) -> float:
        """Seconds since this log was opened (the runner's start), plus the run's earlier sessions."""
        return self.history.wall_time_s + time.monotonic() - self._started

    def _check_and_repair(self) -> list[EpisodeRow]:
        lines = self.path.read_bytes().splitlines(keepends=True)
        header = next(csv.reader([lines[0].decode("utf-8", errors="replace")]), [])
        if tuple(header) != COLUMNS:
            raise ValueError(
                f"{self.path}: its header is not this version's columns ({','.join(COLUMNS)}); move it away (or use "
                "another --run-dir) so the runner starts a new one"
            )
        rows, good, damaged = [], [lines[0]], []
        for number, line in enumerate(lines[1:], start=2):
            try:
                if not line.endswith(b"\n"):
                    raise ValueError(f"{self.path} line {number}: cut short (the runner was killed mid-write)")
                rows.append(_parse_line(self.path, number, line))
                good.append(line)
            except ValueError as err:
                damaged.append(line if line.endswith(b"\n") else line + b"\n")
                self.repairs.append(f"{err}; moved to {RunDir(self.path.parent).damaged_episodes}")
        if damaged:  # kept as they were, next to the log; the log itself holds only rows that parse
            with open(RunDir(self.path.parent).damaged_episodes, "ab") as f:
                f.writelines(damaged)
                f.flush()
                os.fsync(f.fileno())
            atomic_write_bytes(self.path, b"".join(good))
        return rows

    def append(self, row: EpisodeRow) -> None:
        self._writer.writerow(row.cells())
        self._file.flush()  # a crash of the runner loses no row it wrote

    def close(self) -> None:
        self._file.close()


@dataclass(frozen=True)
class RunHistory:
    """What the earlier sessions of a run did: a resumed session continues its episode ids, simulated time, wall
    time, evaluation schedule and status windows."""

    rows: tuple[EpisodeRow, ...] = ()

    @classmethod
    def of(cls, rows: list[EpisodeRow]) -> RunHistory:
        return cls(tuple(rows))

    @property
    def episodes(self) -> int:
        return len(self.rows)

    @property
    def sessions(self) -> int:
        return max((r.session for r in self.rows), default=0)

    @property
    def actor_id(self) -> str:
        """The actor of the newest row ('' for a new run): a resumed actor keeps its id, so episode ids stay unique."""
        return self.rows[-1].actor_id if self.rows else ""

    @property
    def next_episode_id(self) -> int:
        return max((r.episode_id for r in self.rows if r.actor_id == self.actor_id), default=0) + 1

    @property
    def sim_time_s(self) -> float:
        return max((r.sim_time_s for r in self.rows), default=0.0)

    @property
    def wall_time_s(self) -> float:
        return self.rows[-1].wall_time_s if self.rows else 0.0

    @property
    def training_episodes(self) -> int:
        return sum(not r.evaluation for r in self.rows)

    @property
    def training_since_evaluation(self) -> int:
        """Training episodes after the newest evaluation episode (the evaluation schedule's position)."""
        count = 0
        for r in reversed(self.rows):
            if r.evaluation:
                break
            count += 1
        return count


def _parse_line(path: Path, number: int, line: bytes) -> EpisodeRow:
    """One data line of an episodes.csv; ValueError naming the file, the line and what is wrong."""
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"{path} line {number}: not UTF-8 text (damaged)") from None
    cells = next(csv.reader([text]), [])
    if len(cells) != len(COLUMNS):
        raise ValueError(f"{path} line {number}: {len(cells)} cells, {len(COLUMNS)} expected")
    return _parse(path, number, dict(zip(COLUMNS, cells, strict=True)))


def _parse(path: Path, number: int, record: dict[str, str]) -> EpisodeRow:
    def value(f):
        text, kind = record[f.name], _kind(f)
        try:
            if kind is bool:
                if text not in ("0", "1"):
                    raise ValueError
                return text == "1"
            if f.type == "int | None":
                return int(text) if text else None
            return kind(text)
        except ValueError:
            raise ValueError(f"{path} line {number}: {f.name}={text!r} is not a {kind.__name__}") from None

    return EpisodeRow(**{f.name: value(f) for f in fields(EpisodeRow) if f.init})


def read_episode_log(path: Path) -> list[EpisodeRow]:
    """Every row of an episodes.csv, in the order written. ValueError naming the file (and line) when it is not one:
    a wrong header, a short row, a cell that does not parse, bytes that are not text."""
    path = Path(path)
    lines = path.read_bytes().splitlines()
    header = next(csv.reader([lines[0].decode("utf-8", errors="replace")]), None) if lines else None
    if header is None or tuple(header) != COLUMNS:
        raise ValueError(f"{path}: not an episodes.csv of this version (its header is not {','.join(COLUMNS)})")
    try:
        return [_parse_line(path, number, line) for number, line in enumerate(lines[1:], start=2)]
    except ValueError as err:
        raise ValueError(f"{err}; fix or remove that line (a resumed run moves it aside)") from None


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
