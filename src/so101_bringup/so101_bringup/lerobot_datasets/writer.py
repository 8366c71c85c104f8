"""Writing a LeRobotDataset v3.0 folder that LeRobot's ``LeRobotDataset`` opens, atomically.

Everything is written into a hidden staging folder beside the target and renamed into place by ``finish()``; an
exception (or a kill) leaves no dataset under the target's name, only the staging folder, which the next export
removes. Numeric features are fixed-size float32 lists (scalars for shape [1]), as LeRobot stores them.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from so101_bringup.lerobot_datasets.layout import (
    CHUNKS_SIZE,
    CODEBASE_VERSION,
    DATA_FILE_SIZE_MB,
    DATA_PATH,
    DEFAULT_FEATURES,
    EPISODES_PATH,
    INFO_PATH,
    STATS_PATH,
    TASKS_PATH,
    VIDEO_FILE_SIZE_MB,
    VIDEO_PATH,
    DatasetError,
    chunk_file,
    tasks_table,
    write_parquet,
)
from so101_bringup.lerobot_datasets.stats import feature_stats, image_stats
from so101_bringup.lerobot_datasets.video import VideoWriter
from so101_contract.files import fsync_path

_ARROW = {"float32": pa.float32(), "int64": pa.int64(), "bool": pa.bool_()}


def _column(values: np.ndarray, feature: dict) -> pa.Array:
    arrow = _ARROW[feature["dtype"]]
    values = np.asarray(values)
    if list(feature["shape"]) == [1]:
        return pa.array(values.reshape(-1), arrow)
    flat = pa.array(values.reshape(-1), arrow)
    return pa.FixedSizeListArray.from_arrays(flat, int(feature["shape"][0]))


class DatasetWriter:
    """A new dataset at ``root`` with ``features`` (LeRobot feature dicts) and the camera ``video_key``, video frames
    of ``frame_size`` (height, width). ``add_episode`` per episode, then ``finish()``; use as a context manager."""

    def __init__(self, root: Path, fps: int, robot_type: str, features: dict, video_key: str,
                 frame_size: tuple[int, int], task: str, overwrite: bool = False):  # fmt: skip
        self.root = Path(root)
        if self.root.exists() and not overwrite:
            raise DatasetError(f"{self.root}: exists already; choose another folder or pass --overwrite")
        self.staging = self.root.parent / f".{self.root.name}.partial"
        shutil.rmtree(self.staging, ignore_errors=True)  # what a killed export left
        self.staging.mkdir(parents=True)
        self.fps, self.robot_type, self.task = int(fps), robot_type, task
        self.video_key, (self.height, self.width) = video_key, (int(frame_size[0]), int(frame_size[1]))
        video = {"dtype": "video", "shape": [self.height, self.width, 3], "names": ["height", "width", "channels"],
                 "info": VideoWriter.info(fps, self.width, self.height)}  # fmt: skip
        self.features = {**features, video_key: video, **DEFAULT_FEATURES}
        self.numeric = {k: f for k, f in self.features.items() if f["dtype"] != "video"}
        self.episodes: list[dict] = []
        self.frames = 0
        self._rows: dict[str, list[np.ndarray]] = {k: [] for k in self.numeric}
        self._data_file = 0
        self._data_bytes = 0
        self._video_file = 0
        self._video: VideoWriter | None = None
        self._image_sample: list[np.ndarray] = []

    def add_episode(self, values: dict[str, np.ndarray], images) -> None:
        """One episode: ``values`` per feature (one row per frame) and its camera frames (HxWx3 uint8)."""
        images = list(images)
        length = len(images)
        episode = len(self.episodes)
        for name in self.numeric:
            if name not in DEFAULT_FEATURES and len(values[name]) != length:
                raise DatasetError(f"episode {episode}: {name} has {len(values[name])} rows for {length} frames")
        frame_index = np.arange(length)
        values = {**values, "timestamp": (frame_index / self.fps).astype(np.float32), "frame_index": frame_index,
                  "episode_index": np.full(length, episode), "index": self.frames + frame_index,
                  "task_index": np.zeros(length, dtype=np.int64)}  # fmt: skip
        row_bytes = sum(np.asarray(values[k]).nbytes for k in self.numeric)
        if self._data_bytes and self._data_bytes + row_bytes >= DATA_FILE_SIZE_MB * 1e6:
            self._flush_data()
        for name in self.numeric:
            self._rows[name].append(np.asarray(values[name]))
        self._data_bytes += row_bytes
        if self._video is not None and self._video.size_bytes() >= VIDEO_FILE_SIZE_MB * 1e6:
            self._close_video()
        if self._video is None:
            chunk, file = chunk_file(self._video_file)
            path = self.staging / VIDEO_PATH.format(video_key=self.video_key, chunk_index=chunk, file_index=file)
            self._video = VideoWriter(path, self.fps, self.width, self.height)
        from_s, to_s = self._video.append(images)
        self._image_sample.extend(images[:: max(1, length // 10)])
        data_chunk, data_file = chunk_file(self._data_file)
        video_chunk, video_file = chunk_file(self._video_file)
        self.episodes.append({
            "episode_index": episode, "tasks": [self.task], "length": length,
            "data/chunk_index": data_chunk, "data/file_index": data_file,
            "dataset_from_index": self.frames, "dataset_to_index": self.frames + length,
            f"videos/{self.video_key}/chunk_index": video_chunk, f"videos/{self.video_key}/file_index": video_file,
            f"videos/{self.video_key}/from_timestamp": from_s, f"videos/{self.video_key}/to_timestamp": to_s,
            "meta/episodes/chunk_index": 0, "meta/episodes/file_index": 0,
        })  # fmt: skip
        self.frames += length

    def _flush_data(self) -> None:
        if not any(self._rows.values()):
            return
        chunk, file = chunk_file(self._data_file)
        table = pa.table({k: _column(np.concatenate(v), self.numeric[k]) for k, v in self._rows.items()})
        write_parquet(table, self.staging / DATA_PATH.format(chunk_index=chunk, file_index=file))
        self._rows = {k: [] for k in self.numeric}
        self._data_file += 1
        self._data_bytes = 0

    def _close_video(self) -> None:
        self._video.close()
        self._video = None
        self._video_file += 1

    def _stats(self) -> dict:
        stats = {}
        for data_file in sorted((self.staging / "data").glob("chunk-*/file-*.parquet")):
            table = pq.read_table(data_file)
            for name in self.numeric:
                column = table.column(name).combine_chunks()
                if pa.types.is_fixed_size_list(column.type):
                    values = column.flatten().to_numpy().reshape(len(column), -1)
                else:
                    values = column.to_numpy(zero_copy_only=False).reshape(-1, 1)
                stats.setdefault(name, []).append(values)
        out = {name: feature_stats(np.concatenate(parts).astype(np.float64)) for name, parts in stats.items()}
        out[self.video_key] = image_stats(np.stack(self._image_sample))
        return out

    def finish(self) -> Path:
        """Write the metadata, sync, and rename the staging folder to ``root`` (replacing it when overwriting)."""
        if not self.episodes:
            raise DatasetError(f"{self.root}: no episode to write; nothing was exported")
        self._flush_data()
        if self._video is not None:
            self._close_video()
        write_parquet(tasks_table([self.task]), self.staging / TASKS_PATH)
        episodes = pa.Table.from_pylist(self.episodes)
        write_parquet(episodes, self.staging / EPISODES_PATH.format(chunk_index=0, file_index=0))
        info = {
            "codebase_version": CODEBASE_VERSION, "robot_type": self.robot_type, "total_episodes": len(self.episodes),
            "total_frames": self.frames, "total_tasks": 1, "chunks_size": CHUNKS_SIZE,
            "data_files_size_in_mb": DATA_FILE_SIZE_MB, "video_files_size_in_mb": VIDEO_FILE_SIZE_MB,
            "fps": self.fps, "splits": {"train": f"0:{len(self.episodes)}"}, "data_path": DATA_PATH,
            "video_path": VIDEO_PATH, "features": self.features,
        }  # fmt: skip
        (self.staging / INFO_PATH).write_text(json.dumps(info, indent=4) + "\n")
        (self.staging / STATS_PATH).write_text(json.dumps(self._stats(), indent=4) + "\n")
        for path in sorted(self.staging.rglob("*")):
            if path.is_file():
                fsync_path(path)
        if self.root.exists():  # --overwrite: the old dataset goes only once the new one is complete
            old = self.root.parent / f".{self.root.name}.old"
            shutil.rmtree(old, ignore_errors=True)
            os.rename(self.root, old)
            os.rename(self.staging, self.root)
            shutil.rmtree(old)
        else:
            os.rename(self.staging, self.root)
        fsync_path(self.root.parent)
        return self.root

    def abort(self) -> None:
        if self._video is not None:
            try:
                self._video.container.close()
            except Exception:  # the staging folder goes anyway
                pass
            self._video = None
        shutil.rmtree(self.staging, ignore_errors=True)

    def __enter__(self) -> DatasetWriter:
        return self

    def __exit__(self, exc_type, *_exc) -> None:
        if exc_type is not None:
            self.abort()
