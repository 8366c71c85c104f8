"""A labelled set of preprocessed wrist frames, grouped by episode, and its one file format.

Every source (``sources``, ``sim_dataset``) ends up here: frames already through the project's one ImagePreprocessing
(uint8 RGB, S x S), a 0/1 success label per frame and the episode each frame came from, so validation can hold out
whole episodes (neighbouring frames of one episode are near copies). On disk: one ``.npz`` (numpy arrays only, read
with allow_pickle=False) with the preprocessing as JSON inside, so a dataset is trained with the preprocessing it
was made with.
"""

from __future__ import annotations

import json
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from so101_contract.files import atomic_write
from so101_driver.vision.preprocessing import ImagePreprocessing, PreprocessingError

FORMAT_VERSION = 1


class DatasetError(ValueError):
    pass


@dataclass
class RewardDataset:
    frames: np.ndarray  # (N, S, S, 3) uint8 RGB, preprocessed
    labels: np.ndarray  # (N,) uint8, 1 = success
    episodes: np.ndarray  # (N,) int32 index into episode_names
    episode_names: list[str]
    preprocessing: ImagePreprocessing

    def __post_init__(self) -> None:
        size = self.preprocessing.output_size
        n = len(self.frames)
        if self.frames.dtype != np.uint8 or self.frames.shape[1:] != (size, size, 3):
            raise DatasetError(
                f"frames must be (N, {size}, {size}, 3) uint8, got {self.frames.shape} {self.frames.dtype}"
            )
        self.labels = np.asarray(self.labels, dtype=np.uint8)
        self.episodes = np.asarray(self.episodes, dtype=np.int32)
        if self.labels.shape != (n,) or self.episodes.shape != (n,):
            raise DatasetError(f"labels {self.labels.shape} and episodes {self.episodes.shape} must be ({n},)")
        if n and self.labels.max() > 1:
            raise DatasetError("labels must be 0 (failure) or 1 (success)")
        if n and (self.episodes.min() < 0 or self.episodes.max() >= len(self.episode_names)):
            raise DatasetError("episode indices must point into episode_names")

    def __len__(self) -> int:
        return len(self.frames)

    @property
    def positives(self) -> int:
        return int(self.labels.sum())

    def summary(self) -> str:
        n = len(self)
        share = 100.0 * self.positives / n if n else 0.0
        return f"{n} frames, {self.positives} success ({share:.1f}%), {len(np.unique(self.episodes))} episodes"

    def subset(self, mask_or_indices: np.ndarray) -> RewardDataset:
        """The selected frames; the episode name table is kept, so names stay valid."""
        return RewardDataset(
            self.frames[mask_or_indices],
            self.labels[mask_or_indices],
            self.episodes[mask_or_indices],
            list(self.episode_names),
            self.preprocessing,
        )

    def split(
        self, val_fraction: float = 0.2, by: str = "episode", seed: int = 0
    ) -> tuple[RewardDataset, RewardDataset]:
        """(train, validation). ``by="episode"`` (default) holds out whole episodes, drawn separately from episodes
        with and without a success so both classes reach validation; ``by="frame"`` draws frames at random."""
        if not 0.0 < val_fraction < 1.0:
            raise DatasetError(f"val_fraction must be in (0, 1), got {val_fraction}")
        rng = np.random.default_rng(seed)
        if by == "frame":
            val = np.zeros(len(self), dtype=bool)
            val[rng.permutation(len(self))[: max(1, round(val_fraction * len(self)))]] = True
        elif by == "episode":
            ids = np.unique(self.episodes)
            if len(ids) < 2:
                raise DatasetError(f"a split by episode needs at least 2 episodes, the dataset has {len(ids)}")
            with_success = np.array([self.labels[self.episodes == e].any() for e in ids])
            held = []
            for group in (ids[with_success], ids[~with_success]):
                if len(group):
                    held.extend(rng.permutation(group)[: max(1, round(val_fraction * len(group)))])
            if len(held) == len(ids):  # tiny datasets: keep at least one episode for training
                held = held[:-1]
            val = np.isin(self.episodes, held)
        else:
            raise DatasetError(f"split by must be 'episode' or 'frame', got {by!r}")
        return self.subset(~val), self.subset(val)

    # ---- file format ----------------------------------------------------------------------------------------------
    def save(self, path: Path | str) -> Path:
        """Write atomically (a crash leaves the previous file or the complete new one)."""
        path = Path(path)
        if path.suffix != ".npz":
            raise DatasetError(f"{path}: a reward dataset file ends in .npz")
        path.parent.mkdir(parents=True, exist_ok=True)
        meta = {"format_version": FORMAT_VERSION, "preprocessing": self.preprocessing.to_dict()}

        def write(tmp: str) -> None:
            with open(tmp, "wb") as handle:
                np.savez(
                    handle,
                    frames=self.frames,
                    labels=self.labels,
                    episodes=self.episodes,
                    episode_names=np.array(self.episode_names, dtype=str),
                    meta=np.array(json.dumps(meta)),
                )

        atomic_write(path, write)
        return path

    @classmethod
    def load(cls, path: Path | str) -> RewardDataset:
        """The dataset in ``path``; any damage (not a zip, truncated, a missing array, a wrong shape or dtype, bad
        metadata) is a DatasetError naming the file and the array."""
        path = Path(path)
        if not path.is_file():
            raise DatasetError(f"{path}: no such dataset file (make one with python -m so101_reward.make_dataset)")
        if not zipfile.is_zipfile(path):  # np.load would otherwise try to read it as a pickle or a text table
            size = path.stat().st_size
            raise DatasetError(
                f"{path}: not a reward dataset: {'an empty file' if size == 0 else 'not an .npz (zip) archive'} "
                f"({size} bytes: cut short, or another kind of file); {_REMAKE}"
            )
        try:
            with np.load(path, allow_pickle=False) as data:
                missing = [name for name in _ARRAYS if name not in data.files]
                if missing:
                    raise DatasetError(
                        f"{path}: not a reward dataset: array(s) {missing} missing (it holds {sorted(data.files)}); "
                        f"{_REMAKE}"
                    )
                arrays = {name: data[name] for name in _ARRAYS}
        except DatasetError:
            raise
        except (zipfile.BadZipFile, EOFError, zlib.error, ValueError, OSError) as err:
            cause = " ".join(str(err).split()) or type(err).__name__
            raise DatasetError(f"{path}: damaged reward dataset ({cause}); {_REMAKE}") from None
        preprocessing = _read_meta(path, arrays["meta"])
        for name, (kinds, ndim, what) in _ARRAY_TYPES.items():
            array = arrays[name]
            if array.dtype.kind not in kinds or array.ndim != ndim:
                raise DatasetError(
                    f"{path}: array {name!r} must be {what}, got {array.dtype} of shape {array.shape}; {_REMAKE}"
                )
        labels, episodes = arrays["labels"], arrays["episodes"]
        if labels.size and not np.isin(labels, (0, 1)).all():
            raise DatasetError(f"{path}: array 'labels' must hold only 0 (failure) and 1 (success); {_REMAKE}")
        if episodes.size and (episodes.min() < 0 or episodes.max() > np.iinfo(np.int32).max):
            raise DatasetError(f"{path}: array 'episodes' holds indices outside 0..2^31-1; {_REMAKE}")
        try:
            return cls(
                arrays["frames"],
                labels,
                episodes,
                [str(name) for name in arrays["episode_names"]],
                preprocessing,
            )
        except DatasetError as err:
            raise DatasetError(f"{path}: {err}") from None


_REMAKE = "remake it with python -m so101_reward.make_dataset"
_ARRAYS = ("frames", "labels", "episodes", "episode_names", "meta")
_ARRAY_TYPES = {  # array -> (allowed dtype kinds, ndim, description); sizes are checked by RewardDataset itself
    "frames": ("u", 4, "uint8 frames (N, S, S, 3)"),
    "labels": ("biu", 1, "integer labels 0/1 of shape (N,)"),
    "episodes": ("iu", 1, "integer episode indices of shape (N,)"),
    "episode_names": ("U", 1, "a list of episode names (strings)"),
}


def _read_meta(path: Path, meta: np.ndarray) -> ImagePreprocessing:
    """The dataset's JSON metadata: format version and preprocessing, each checked with the file's name."""
    if meta.dtype.kind != "U" or meta.ndim != 0:
        raise DatasetError(f"{path}: array 'meta' must be one JSON string, got {meta.dtype} of shape {meta.shape}")
    try:
        doc = json.loads(str(meta))
    except json.JSONDecodeError as err:
        raise DatasetError(f"{path}: array 'meta' is not JSON ({err}); {_REMAKE}") from None
    if not isinstance(doc, dict):
        raise DatasetError(f"{path}: array 'meta' must be a JSON object, got {type(doc).__name__}; {_REMAKE}")
    if doc.get("format_version") != FORMAT_VERSION:
        raise DatasetError(f"{path}: format_version {doc.get('format_version')!r} is not {FORMAT_VERSION}")
    fields = doc.get("preprocessing")
    if not isinstance(fields, dict):
        raise DatasetError(f"{path}: meta 'preprocessing' must be an object of ImagePreprocessing fields; {_REMAKE}")
    try:
        return ImagePreprocessing.from_dict(fields)
    except (PreprocessingError, TypeError, ValueError) as err:
        raise DatasetError(f"{path}: meta 'preprocessing': {err}") from None


def concatenate(datasets: list[RewardDataset]) -> RewardDataset:
    """One dataset from several; episodes stay apart even where two sources use the same name."""
    if not datasets:
        raise DatasetError("nothing to concatenate")
    first = datasets[0].preprocessing
    for i, dataset in enumerate(datasets[1:], start=1):
        if dataset.preprocessing != first:
            raise DatasetError(
                f"dataset {i} was made with preprocessing {dataset.preprocessing.to_dict()}, dataset 0 with "
                f"{first.to_dict()}: rebuild them with the same one"
            )
    # Names stay as they are unless two sources share one; then every name gets its source's index.
    all_names = [name for dataset in datasets for name in dataset.episode_names]
    clash = len(set(all_names)) < len(all_names)
    names: list[str] = []
    episodes = []
    for i, dataset in enumerate(datasets):
        offset = len(names)
        names.extend(f"{i}/{name}" if clash else name for name in dataset.episode_names)
        episodes.append(dataset.episodes + offset)
    return RewardDataset(
        np.concatenate([d.frames for d in datasets]),
        np.concatenate([d.labels for d in datasets]),
        np.concatenate(episodes),
        names,
        first,
    )
