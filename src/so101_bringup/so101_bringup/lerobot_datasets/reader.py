"""Reading a LeRobotDataset v3.0 folder: its episodes, their frames' values and camera images.

Everything the importer relies on is checked when the dataset is opened (versions, episode indices without gaps,
each episode's rows in its data file, its video files), so a broken dataset is refused before anything is written.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from so101_bringup.lerobot_datasets.layout import (
    EPISODES_PATH,
    IMAGES_PREFIX,
    DatasetError,
    read_info,
    read_parquet,
)
from so101_bringup.lerobot_datasets.video import read_frames


@dataclass(frozen=True)
class EpisodeEntry:
    """One row of meta/episodes: where an episode's frames and videos are."""

    index: int
    length: int
    data_file: Path
    videos: dict  # camera key -> (file, from_s, to_s)


class DatasetReader:
    """A local LeRobotDataset v3.0 folder (``root``), opened and checked."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.info = read_info(self.root)
        self.fps = float(self.info["fps"])
        self.features: dict = self.info["features"]
        self.camera_keys = [k for k, f in self.features.items() if k.startswith(IMAGES_PREFIX)]
        self.episodes = self._read_episodes()
        self._tables: dict[Path, pa.Table] = {}

    def _read_episodes(self) -> list[EpisodeEntry]:
        files = sorted((self.root / "meta" / "episodes").glob("chunk-*/file-*.parquet"))
        if not files:
            raise DatasetError(
                f"{self.root / EPISODES_PATH.format(chunk_index=0, file_index=0)}: missing; a v3.0 dataset lists "
                "its episodes there (download the dataset again)"
            )
        rows: list[dict] = []
        for path in files:
            rows.extend(read_parquet(path, ["episode_index", "length"]).to_pylist())
        rows.sort(key=lambda r: r["episode_index"])
        indices = [int(r["episode_index"]) for r in rows]
        expected = list(range(len(rows)))
        if indices != expected:
            gap = next(i for i, (a, b) in enumerate(zip(indices, expected, strict=True)) if a != b)
            raise DatasetError(
                f"{self.root / 'meta/episodes'}: episode indices are not 0..{len(rows) - 1} (at position {gap}: "
                f"{indices[gap]} where {gap} belongs); a dataset edited by hand? re-create it with LeRobot's tools"
            )
        total = self.info["total_episodes"]
        if total != len(rows):
            raise DatasetError(
                f"{self.root / 'meta/info.json'}: total_episodes {total} but meta/episodes lists {len(rows)}; "
                "the dataset is incomplete, download it again"
            )
        video_template = self.info.get("video_path")
        entries = []
        for row in rows:
            where = f"episode {row['episode_index']}"
            data_file = self.root / self.info["data_path"].format(
                chunk_index=row.get("data/chunk_index", 0), file_index=row.get("data/file_index", 0)
            )
            if not data_file.is_file():
                raise DatasetError(f"{data_file}: missing ({where}); download the dataset again")
            videos = {}
            for key in self.camera_keys:
                if self.features[key].get("dtype") != "video" or not video_template:
                    continue
                path = self.root / video_template.format(
                    video_key=key,
                    chunk_index=row.get(f"videos/{key}/chunk_index", 0),
                    file_index=row.get(f"videos/{key}/file_index", 0),
                )
                if not path.is_file():
                    raise DatasetError(f"{path}: missing ({where}, {key}); download the dataset again")
                videos[key] = (path, float(row.get(f"videos/{key}/from_timestamp") or 0.0),
                               float(row.get(f"videos/{key}/to_timestamp") or 0.0))  # fmt: skip
            entries.append(EpisodeEntry(int(row["episode_index"]), int(row["length"]), data_file, videos))
        return entries

    def columns(self, episode: EpisodeEntry, names: list[str]) -> dict[str, np.ndarray]:
        """The episode's values of ``names`` in frame order, as numpy arrays (one row per frame)."""
        table = self._tables.get(episode.data_file)
        if table is None:
            table = self._tables[episode.data_file] = read_parquet(episode.data_file, ["episode_index", "frame_index"])
        where = f"{episode.data_file}: episode {episode.index}"
        missing = [n for n in names if n not in table.column_names]
        if missing:
            raise DatasetError(f"{where}: no column {', '.join(missing)} (it has {', '.join(table.column_names)})")
        rows = np.flatnonzero(table.column("episode_index").to_numpy() == episode.index)
        frame_index = table.column("frame_index").to_numpy()[rows]
        if len(rows) != episode.length or not np.array_equal(frame_index, np.arange(episode.length)):
            raise DatasetError(
                f"{where}: {len(rows)} rows with frame_index {frame_index[:3].tolist()}... where meta/episodes says "
                f"{episode.length} frames 0..{episode.length - 1}; the dataset is damaged, download it again"
            )
        out = {}
        for name in names:
            column = table.column(name).take(pa.array(rows))
            values = column.to_pylist() if pa.types.is_list(column.type) or pa.types.is_fixed_size_list(
                column.type) else column.to_numpy(zero_copy_only=False)  # fmt: skip
            out[name] = np.asarray(values)
        return out

    def images(self, episode: EpisodeEntry, key: str, frames) -> dict[int, np.ndarray]:
        """Camera ``key``'s images at the episode's frame indices ``frames`` (HxWx3 uint8 RGB)."""
        if key not in episode.videos:
            raise DatasetError(f"{self.root}: {key} is not stored as video; only video cameras can be read")
        path, from_s, _ = episode.videos[key]
        return read_frames(path, from_s, self.fps, episode.length, frames, f"episode {episode.index}, {key}")
