"""The LeRobotDataset v3.0 layout on disk, read and checked with pyarrow alone (no ``lerobot`` in the ROS environment).

A dataset is ``meta/info.json`` (version, fps, features, totals, path templates), ``meta/tasks.parquet``,
``meta/episodes/chunk-XXX/file-YYY.parquet`` (one row per episode: its data file, global index range and, per
camera, its video file and time span), frames of many episodes in ``data/chunk-XXX/file-YYY.parquet`` and videos of
many episodes in ``videos/<key>/chunk-XXX/file-YYY.mp4``. Every defect is a ``DatasetError`` naming the file.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from so101_contract.joints import JOINT_NAMES

CODEBASE_VERSION = "v3.0"
INFO_PATH = "meta/info.json"
STATS_PATH = "meta/stats.json"
TASKS_PATH = "meta/tasks.parquet"
EPISODES_PATH = "meta/episodes/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
VIDEO_PATH = "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
CHUNKS_SIZE = 1000  # files per chunk directory
DATA_FILE_SIZE_MB = 100  # a new data file starts beyond this
VIDEO_FILE_SIZE_MB = 200  # a new video file starts beyond this
TIMESTAMP_TOLERANCE_S = 1e-4  # LeRobot's: a decoded frame belongs to a timestamp this close

STATE = "observation.state"
ACTION = "action"
REWARD = "next.reward"
DONE = "next.done"
INTERVENTION = "complementary_info.is_intervention"
IMAGES_PREFIX = "observation.images."
JOINT_FEATURE_NAMES = tuple(f"{name}.pos" for name in JOINT_NAMES)  # lerobot-record's state and action names
ROBOT_TYPES = ("so_follower", "so101_follower")  # LeRobot >= 0.4.3, <= 0.4.2
DEFAULT_FEATURES = {  # what every LeRobot dataset carries besides its own features
    "timestamp": {"dtype": "float32", "shape": [1], "names": None},
    "frame_index": {"dtype": "int64", "shape": [1], "names": None},
    "episode_index": {"dtype": "int64", "shape": [1], "names": None},
    "index": {"dtype": "int64", "shape": [1], "names": None},
    "task_index": {"dtype": "int64", "shape": [1], "names": None},
}
CONVERTER_HINT = "convert it with LeRobot: python -m lerobot.scripts.convert_dataset_v21_to_v30 --repo-id=<repo_id>"


class DatasetError(ValueError):
    """A dataset that cannot be read or written as asked; one line naming the file, feature or episode and the fix."""


def chunk_file(index: int) -> tuple[int, int]:
    """The (chunk_index, file_index) of the index-th file of one kind (CHUNKS_SIZE files per chunk)."""
    return divmod(index, CHUNKS_SIZE)


def read_info(root: Path) -> dict:
    """meta/info.json, checked for the v3.0 layout; a v2.x dataset is refused with LeRobot's converter named."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: no such dataset directory")
    path = root / INFO_PATH
    if not path.is_file():
        if (root / "meta" / "episodes.jsonl").is_file():
            raise DatasetError(f"{root}: a LeRobot v2.x dataset (meta/episodes.jsonl, no info.json); {CONVERTER_HINT}")
        raise DatasetError(f"{path}: missing; a LeRobotDataset folder holds meta/info.json (is {root} its root?)")
    try:
        info = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise DatasetError(f"{path}: not readable JSON ({err}); download the dataset again") from None
    if not isinstance(info, dict):
        raise DatasetError(f"{path}: not a JSON object; download the dataset again")
    version = str(info.get("codebase_version", ""))
    if version.startswith("v2") or (root / "meta" / "episodes.jsonl").is_file():
        raise DatasetError(f"{path}: codebase_version {version or '?'} is the v2.x layout; {CONVERTER_HINT}")
    if not version.startswith("v3."):
        raise DatasetError(f"{path}: codebase_version {version!r}; this reader knows LeRobot's {CODEBASE_VERSION}")
    for key, kind in (("fps", (int, float)), ("features", dict), ("total_episodes", int), ("data_path", str)):
        if not isinstance(info.get(key), kind):
            raise DatasetError(f"{path}: {key} is missing or not a {kind}; the file is damaged, download it again")
    if not info["fps"] > 0:
        raise DatasetError(f"{path}: fps is {info['fps']}; it must be positive")
    return info


def read_parquet(path: Path, columns: list[str] | None = None) -> pa.Table:
    """A parquet file, or a DatasetError naming it (missing, truncated, not parquet, lacking a column)."""
    if not path.is_file():
        raise DatasetError(f"{path}: missing; download the dataset again")
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException) as err:
        reason = " ".join(str(err).split())[:120]
        raise DatasetError(f"{path}: truncated or not parquet ({reason}); download the dataset again") from None
    missing = [c for c in columns or () if c not in table.column_names]
    if missing:
        raise DatasetError(f"{path}: no column {', '.join(missing)} (it has {', '.join(table.column_names)})")
    return table


def write_parquet(table: pa.Table, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path, compression="snappy")


def tasks_table(tasks: list[str]) -> pa.Table:
    """meta/tasks.parquet as LeRobot writes it with pandas: the task string is the index, so its reader's
    ``tasks.iloc[i].name`` is the text. Without pandas the index is declared in the schema's pandas metadata."""
    table = pa.table({"task_index": pa.array(range(len(tasks)), pa.int64()), "task": pa.array(tasks, pa.string())})
    pandas_meta = {
        "index_columns": ["task"],
        "column_indexes": [
            {"name": None, "field_name": None, "pandas_type": "unicode", "numpy_type": "object", "metadata": None}
        ],
        "columns": [
            {"name": name, "field_name": name, "pandas_type": kind, "numpy_type": numpy, "metadata": None}
            for name, kind, numpy in (("task_index", "int64", "int64"), ("task", "unicode", "object"))
        ],
        "creator": {"library": "pyarrow", "version": pa.__version__},
        "pandas_version": "2.3.3",
    }
    return table.replace_schema_metadata({b"pandas": json.dumps(pandas_meta).encode()})
