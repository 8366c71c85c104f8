"""Where reward datasets come from: folders of labelled camera images, and rosbag2 bags with a label file.

Both read RAW wrist-camera frames (the preprocessing's source size, 640x480 by default) and put every frame through the
project's one ImagePreprocessing, so the classifier is trained on exactly what the reward node will see. A frame of
another size is an error, never silently resized: a different crop would teach the classifier a different view.
``from_image_folders`` and ``from_labelled_bags`` describe their formats; ``python -m so101_reward.make_dataset`` is
the command line for both and for the simulation's auto-labelled source, ``so101_reward.sim_dataset``.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from so101_driver.vision.preprocessing import DEFAULT_PREPROCESSING, ImagePreprocessing
from so101_reward.dataset import DatasetError, RewardDataset

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
LABEL_FOLDERS = {1: ("success", "positive"), 0: ("failure", "negative")}
DEFAULT_TOPIC = "/wrist_camera/image_raw"
IMAGE_TYPE = "sensor_msgs/msg/Image"
COMPRESSED_TYPE = "sensor_msgs/msg/CompressedImage"


class SourceError(DatasetError):
    """Bad input to a dataset source; the message names the file or field and how to fix it."""


class _Builder:
    """Collects preprocessed frames, labels and episode names in order of first appearance."""

    def __init__(self, preprocessing: ImagePreprocessing):
        self.preprocessing = preprocessing
        self.frames: list[np.ndarray] = []
        self.labels: list[int] = []
        self.episodes: list[int] = []
        self.names: dict[str, int] = {}

    def add(self, frame: np.ndarray, label: int, episode: str) -> None:
        self.frames.append(frame)
        self.labels.append(label)
        self.episodes.append(self.names.setdefault(episode, len(self.names)))

    def build(self) -> RewardDataset:
        size = self.preprocessing.output_size
        frames = np.stack(self.frames) if self.frames else np.zeros((0, size, size, 3), np.uint8)
        return RewardDataset(
            frames, np.array(self.labels), np.array(self.episodes), list(self.names), self.preprocessing
        )


def _check_size(width: int, height: int, preprocessing: ImagePreprocessing, where: str) -> None:
    expected = (preprocessing.source_width, preprocessing.source_height)
    if (width, height) != expected:
        raise SourceError(
            f"{where} is {width}x{height}, but the preprocessing expects raw camera frames of "
            f"{expected[0]}x{expected[1]}: use the camera's unprocessed frames (not crops or resized copies), "
            "or a preprocessing whose source size matches"
        )


# ---- image folders ---------------------------------------------------------------------------------------------
def _label_folder(root: Path, names: tuple[str, ...]) -> Path | None:
    present = [root / name for name in names if (root / name).is_dir()]
    if len(present) > 1:
        raise SourceError(f"{root} has both {present[0].name}/ and {present[1].name}/: keep one of them")
    return present[0] if present else None


def _images_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def from_image_folders(
    root: Path | str, preprocessing: ImagePreprocessing = DEFAULT_PREPROCESSING, progress: bool = False
) -> RewardDataset:
    """Labelled camera images in root/success/** and root/failure/**.

    ::

        root/
          success/            # or positive/: frames that show a successful grasp (label 1)
            ep003/frame_0001.png
            ep003/frame_0002.png
            img_0042.jpg
          failure/            # or negative/: everything else (label 0)
            ep003/frame_0000.png
            ep007/cam/0001.png
            img_0043.jpg

    Images: .png, .jpg, .jpeg, .bmp (any case), read with OpenCV, raw camera frames of the preprocessing's source size.
    A label folder may be missing (a dataset of one class), but not both. Episodes (so validation can hold out whole
    episodes, see dataset.RewardDataset.split): the first subfolder under the label folder names the episode, so
    ``success/ep003/...`` and ``failure/ep003/...`` are one episode whose frames carry both labels; an image directly
    in the label folder is its own episode, named by its file stem. Other files are ignored.
    """
    from tqdm import tqdm

    root = Path(root)
    if not root.is_dir():
        raise SourceError(f"{root}: no such folder (expected a folder with success/ and failure/ inside)")
    files: list[tuple[Path, int, str]] = []
    found = []
    for label in (1, 0):
        folder = _label_folder(root, LABEL_FOLDERS[label])
        if folder is None:
            continue
        found.append(folder)
        for path in _images_under(folder):
            parts = path.relative_to(folder).parts
            files.append((path, label, parts[0] if len(parts) > 1 else path.stem))
    if not found:
        present = sorted(p.name + "/" for p in root.iterdir() if p.is_dir())
        raise SourceError(
            f"{root} has neither success/ nor failure/ (nor positive/ nor negative/); folders there: "
            f"{', '.join(present) or 'none'}"
        )
    if not files:
        raise SourceError(f"no {'/'.join(IMAGE_SUFFIXES)} images under {', '.join(str(f) for f in found)}")

    builder = _Builder(preprocessing)
    for path, label, episode in tqdm(files, desc="images", unit="img", disable=not progress):
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise SourceError(f"{path}: OpenCV cannot read this image (corrupt, or not really {path.suffix})")
        _check_size(image.shape[1], image.shape[0], preprocessing, str(path))
        builder.add(preprocessing.apply(image, "bgr8"), label, episode)
    return builder.build()


# ---- labelled bags ---------------------------------------------------------------------------------------------
@dataclass
class _Episode:
    """One entry of the label file, validated for its types; ranges are checked once the bag's length is known."""

    where: str  # "label.json: episodes[2] (bag 'session_2')" for error messages
    bag: str
    path: Path
    topic: str
    frames: tuple[int, int] | None
    success: list[tuple[int, int]] | None
    success_start: int | None


_EPISODE_KEYS = {"bag", "success", "success_start", "frames", "topic"}


def _index(value, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise SourceError(f"{field} must be a frame index (an integer >= 0), got {value!r}")
    return value


def _range(value, field: str) -> tuple[int, int]:
    if not isinstance(value, list) or len(value) != 2:
        raise SourceError(f"{field} must be an inclusive [first, last] frame range, got {value!r}")
    first, last = _index(value[0], f"{field}[0]"), _index(value[1], f"{field}[1]")
    if first > last:
        raise SourceError(f"{field} = {value}: first must be <= last")
    return first, last


def _parse_label_file(label_file: Path, topic: str | None) -> list[_Episode]:
    if not label_file.is_file():
        raise SourceError(f"{label_file}: no such label file")
    try:
        doc = json.loads(label_file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise SourceError(f"{label_file}: not valid JSON ({err})") from None
    if not isinstance(doc, dict):
        raise SourceError(f'{label_file}: the top level must be an object {{"topic": ..., "episodes": [...]}}')
    unknown = sorted(set(doc) - {"topic", "episodes"})
    if unknown:
        raise SourceError(f"{label_file}: unknown field(s) {unknown}; the top level has 'topic' and 'episodes'")
    file_topic = doc.get("topic", DEFAULT_TOPIC)
    if not isinstance(file_topic, str) or not file_topic:
        raise SourceError(f"{label_file}: 'topic' must be a topic name string, got {file_topic!r}")
    entries = doc.get("episodes")
    if not isinstance(entries, list) or not entries:
        raise SourceError(f"{label_file}: 'episodes' must be a non-empty list of episode objects")

    episodes = []
    for i, entry in enumerate(entries):
        where = f"{label_file}: episodes[{i}]"
        if not isinstance(entry, dict):
            raise SourceError(f"{where} must be an object with 'bag' and 'success' or 'success_start'")
        bag = entry.get("bag")
        if not isinstance(bag, str) or not bag.strip("/"):
            raise SourceError(f"{where}.bag must be the bag directory (a string), got {bag!r}")
        bag = bag.rstrip("/")
        where = f"{where} (bag {bag!r})"
        unknown = sorted(set(entry) - _EPISODE_KEYS)
        if unknown:
            raise SourceError(f"{where}: unknown field(s) {unknown}; an episode has {sorted(_EPISODE_KEYS)}")
        if ("success" in entry) == ("success_start" in entry):
            raise SourceError(
                f"{where}: give exactly one of 'success' (a list of [first, last] frame ranges; [] for a failed "
                "episode) or 'success_start' (first success frame)"
            )
        success = success_start = None
        if "success" in entry:
            if not isinstance(entry["success"], list):
                raise SourceError(f"{where}.success must be a list of [first, last] ranges, got {entry['success']!r}")
            success = [_range(r, f"{where}.success[{k}]") for k, r in enumerate(entry["success"])]
        else:
            success_start = _index(entry["success_start"], f"{where}.success_start")
        frames = _range(entry["frames"], f"{where}.frames") if "frames" in entry else None
        episode_topic = entry.get("topic", topic or file_topic)
        if not isinstance(episode_topic, str) or not episode_topic:
            raise SourceError(f"{where}.topic must be a topic name string, got {episode_topic!r}")
        episodes.append(_Episode(where, bag, label_file.parent / bag, episode_topic, frames, success, success_start))
    return episodes


def _episode_labels(episode: _Episode, count: int) -> tuple[range, np.ndarray]:
    """(the episode's frame indices, their labels) once the bag is known to hold ``count`` frames on the topic."""
    where = f"{episode.where} on {episode.topic}"
    if count == 0:
        raise SourceError(f"{where}: the bag has no messages on this topic")
    last_frame = count - 1
    first, last = episode.frames if episode.frames is not None else (0, last_frame)
    if last > last_frame:
        raise SourceError(f"{where}: frames [{first}, {last}] is outside the bag's frames 0..{last_frame}")
    labels = np.zeros(last - first + 1, dtype=np.uint8)
    if episode.success_start is not None:
        start = episode.success_start
        if not first <= start <= last:
            raise SourceError(f"{where}: success_start {start} is outside the episode's frames {first}..{last}")
        labels[start - first :] = 1
    for a, b in episode.success or []:
        if a < first or b > last:
            raise SourceError(f"{where}: success range [{a}, {b}] is outside the episode's frames {first}..{last}")
        labels[a - first : b - first + 1] = 1
    return range(first, last + 1), labels


def _check_disjoint(group: list[_Episode], labelled: list[tuple[range, np.ndarray]]) -> None:
    """Episodes of one bag and topic take disjoint frames: a frame in two episodes would be trained on twice (and
    could sit in training and validation at once), and one labelled 0 by one and 1 by the other is a contradiction."""
    spans = sorted(zip(group, labelled, strict=True), key=lambda item: item[1][0].start)
    for (a, (frames_a, labels_a)), (b, (frames_b, labels_b)) in itertools.pairwise(spans):
        if frames_b.start > frames_a.stop - 1:
            continue
        first, last = frames_b.start, min(frames_a.stop, frames_b.stop) - 1
        overlap_a = labels_a[first - frames_a.start : last - frames_a.start + 1]
        overlap_b = labels_b[first - frames_b.start : last - frames_b.start + 1]
        conflict = np.flatnonzero(overlap_a != overlap_b)
        why = (
            f"frame {first + conflict[0]} is labelled {overlap_a[conflict[0]]} by one and {overlap_b[conflict[0]]} "
            "by the other"
            if conflict.size
            else "those frames would be counted twice"
        )
        raise SourceError(
            f"{a.where} takes frames [{frames_a.start}, {frames_a.stop - 1}] and {b.where.split(': ', 1)[-1]} "
            f"frames [{frames_b.start}, {frames_b.stop - 1}] of the same bag on {a.topic}: they overlap at "
            f"{first}..{last} ({why}); give each episode its own 'frames' range"
        )


def _decode(msg, msgtype: str, where: str) -> tuple[np.ndarray, str]:
    """A deserialized Image or CompressedImage -> (HxWx3 uint8 array, "rgb8" or "bgr8")."""
    if msgtype == IMAGE_TYPE:
        if msg.encoding not in ("rgb8", "bgr8"):
            raise SourceError(
                f"{where}: unsupported image encoding {msg.encoding!r}; the reward dataset reads rgb8 and bgr8 "
                "(set the camera driver to one of them)"
            )
        height, width, step = int(msg.height), int(msg.width), int(msg.step)
        data = np.asarray(msg.data, dtype=np.uint8)
        if step < 3 * width or data.size < step * height:
            raise SourceError(f"{where}: {width}x{height} {msg.encoding} with step {step} but {data.size} data bytes")
        pixels = data[: step * height].reshape(height, step)[:, : 3 * width].reshape(height, width, 3)
        return pixels, msg.encoding
    if "compresseddepth" in msg.format.lower():
        raise SourceError(f"{where}: unsupported CompressedImage format {msg.format!r} (a depth image)")
    image = cv2.imdecode(np.asarray(msg.data, dtype=np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise SourceError(f"{where}: cannot decode CompressedImage of format {msg.format!r}")
    return image, "bgr8"


def _bag_frames(bag_path: Path, bag: str, topic: str, wanted: set[int], preprocessing: ImagePreprocessing, bar):
    """(frame count on ``topic``, {index: preprocessed frame} for the wanted indices), reading the bag once.

    The count comes from the bag's metadata, so ranges can be checked before any image is decoded: the caller
    passes ``wanted=None`` first to get the count only.
    """
    from rosbags.highlevel import AnyReaderError
    from rosbags.typesys import Stores, get_typestore

    from so101_reward.bags import BagReadError, open_bags, read_messages

    if not (bag_path / "metadata.yaml").is_file() and bag_path.is_file():
        raise SourceError(f"bag {bag!r}: {bag_path} is a file; point at the bag directory (the one with metadata.yaml)")
    try:
        # Jazzy's standard types deserialize the images of a bag that stores no definitions (Humble sqlite3 bags).
        reader = open_bags([bag_path], default_typestore=get_typestore(Stores.ROS2_JAZZY))
    except BagReadError as err:
        raise SourceError(str(err)) from None
    try:
        connections = [c for c in reader.connections if c.topic == topic]
        if not connections:
            listed = sorted({f"{c.topic} ({c.msgtype})" for c in reader.connections})
            raise SourceError(f"bag {bag!r} has no topic {topic}; its topics: {', '.join(listed) or 'none'}")
        bad = sorted({c.msgtype for c in connections} - {IMAGE_TYPE, COMPRESSED_TYPE})
        if bad:
            raise SourceError(f"bag {bag!r}: {topic} carries {bad[0]}, not {IMAGE_TYPE} or {COMPRESSED_TYPE}")
        count = sum(c.msgcount for c in connections)
        if wanted is None:
            return count, {}
        frames: dict[int, np.ndarray] = {}
        last_wanted = max(wanted, default=-1)
        for index, (connection, _, raw) in enumerate(read_messages(reader, connections, [bag_path])):
            if index > last_wanted:
                break
            if index not in wanted:
                continue
            where = f"bag {bag!r} {topic} frame {index}"
            msg = reader.deserialize(raw, connection.msgtype)
            image, encoding = _decode(msg, connection.msgtype, where)
            _check_size(image.shape[1], image.shape[0], preprocessing, where)
            frames[index] = preprocessing.apply(image, encoding)
            bar.update(1)
        return count, frames
    except BagReadError as err:
        raise SourceError(str(err)) from None
    except AnyReaderError as err:  # a message that does not deserialize as its type says
        raise SourceError(f"bag {bag!r} ({bag_path}) {topic}: cannot decode a message: {err}") from None
    finally:
        reader.close()


def _groups(episodes: list[_Episode]) -> Iterator[tuple[tuple[Path, str], list[_Episode]]]:
    """Episodes grouped by (bag, topic) in order of first appearance, so each bag is read once per topic."""
    groups: dict[tuple[Path, str], list[_Episode]] = {}
    for episode in episodes:
        groups.setdefault((episode.path, episode.topic), []).append(episode)
    return iter(groups.items())


def from_labelled_bags(
    label_file: Path | str,
    preprocessing: ImagePreprocessing = DEFAULT_PREPROCESSING,
    topic: str | None = None,
    progress: bool = False,
) -> RewardDataset:
    """Frames of rosbag2 bags labelled by a JSON label file beside them.

    rosbag2 bags (MCAP or sqlite3, read with the ``rosbags`` library; no ROS install needed), e.g. recorded by the
    bringup recorder or ``ros2 bag record``, and one JSON label file beside them::

        {"topic": "/wrist_camera/image_raw",
         "episodes": [
           {"bag": "episode_000", "success": [[40, 80]]},
           {"bag": "episode_001", "success_start": 52},
           {"bag": "session_2", "frames": [0, 99], "success": []},
           {"bag": "session_2", "frames": [100, 180], "success": [[150, 180]]}
         ]}

    - ``topic`` (optional): the image topic, default ``/wrist_camera/image_raw``; an episode may give its own
      ``topic``, and the ``topic`` argument (``--topic``) overrides the file's.
    - ``bag``: the bag directory (the one holding metadata.yaml), relative to the label file's directory.
    - Frame index: the position of a message among the bag's messages on the image topic, 0-based, in recording
      order. ``frames: [first, last]`` (optional, inclusive) takes only those frames into the episode; default all.
      Episodes of one bag take disjoint frames: overlapping ranges are refused (a frame would count twice, or be
      labelled 0 and 1 at once).
    - Labels, exactly one of: ``success``: a list of inclusive ``[first, last]`` frame ranges labelled 1 (``[]`` for a
      failed episode); ``success_start``: frames from this index to the end of the episode are 1. All other frames of
      the episode are 0.
    - Episode name: the ``bag`` string; ``bag#k`` (k = 0, 1, ... in file order) when one bag holds several episodes.
    - Messages: sensor_msgs/msg/Image (rgb8, bgr8) or sensor_msgs/msg/CompressedImage (jpeg, png).
    - Recording: ``ros2 bag record --all-topics`` or a topic list. In Jazzy ``--all`` (``-a``) also records every
      service's events, whose definitions the rosbags reader cannot parse, so such a bag cannot be read at all.
    """
    from tqdm import tqdm

    label_file = Path(label_file)
    episodes = _parse_label_file(label_file, topic)
    per_bag: dict[str, int] = {}
    for episode in episodes:
        per_bag[episode.bag] = per_bag.get(episode.bag, 0) + 1
    seen: dict[str, int] = {}
    names = {}
    for episode in episodes:
        k = seen.get(episode.bag, 0)
        seen[episode.bag] = k + 1
        names[id(episode)] = episode.bag if per_bag[episode.bag] == 1 else f"{episode.bag}#{k}"

    # Pass 1: every bag's frame count from its metadata, every range checked, before any image is decoded.
    plans = []
    for (path, group_topic), group in _groups(episodes):
        if not path.exists():
            raise SourceError(f"{group[0].where}: bag not found at {path} (bag paths are relative to the label file)")
        count, _ = _bag_frames(path, group[0].bag, group_topic, None, preprocessing, None)
        labelled = [_episode_labels(e, count) for e in group]
        _check_disjoint(group, labelled)
        plans.append((path, group_topic, group, labelled))

    # Pass 2: decode the frames the episodes use, one read per bag.
    total = sum(len(indices) for *_, labelled in plans for indices, _ in labelled)
    per_episode: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    with tqdm(total=total, desc="bag frames", unit="frame", disable=not progress) as bar:
        for path, group_topic, group, labelled in plans:
            wanted = {i for indices, _ in labelled for i in indices}
            _, frames = _bag_frames(path, group[0].bag, group_topic, wanted, preprocessing, bar)
            missing = sorted(wanted - set(frames))
            if missing:
                raise SourceError(
                    f"bag {group[0].bag!r}: its metadata lists more messages on {group_topic} than it holds; "
                    f"frame {missing[0]} is missing (was the recording cut off?)"
                )
            for episode, (indices, labels) in zip(group, labelled, strict=True):
                per_episode[id(episode)] = (np.stack([frames[i] for i in indices]), labels)

    builder = _Builder(preprocessing)
    for episode in episodes:  # label-file order
        frames, labels = per_episode[id(episode)]
        for frame, label in zip(frames, labels, strict=True):
            builder.add(frame, int(label), names[id(episode)])
    return builder.build()
