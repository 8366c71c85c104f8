"""import_dataset: a LeRobotDataset v3.0 (an SO-101 recording or HIL-SERL transitions) into a learner run directory.

The dataset is converted whole and checked before the run directory is touched (a bad episode stops the import
with nothing written); the transitions are then appended to the run's journal through the bag importer's path, so
the learner started on that run directory loads them into its buffers (person-driven steps: the demonstration
buffer) exactly as live messages.

    python -m so101_bringup.lerobot_datasets.import_dataset DATASET --run-dir runs/sim --units degrees --success all
"""

from __future__ import annotations

import argparse
import hashlib
import struct
import sys
import tempfile
from collections import Counter
from dataclasses import replace
from pathlib import Path

import yaml
from rclpy.serialization import serialize_message
from tqdm import tqdm

from so101_bringup.lerobot_datasets.layout import INFO_PATH, DatasetError
from so101_bringup.lerobot_datasets.reader import DatasetReader
from so101_bringup.lerobot_datasets.transitions import (
    EpisodeConverter,
    ImportOptions,
    Step,
    check_dataset,
)
from so101_bringup.records.importer import BagImportError, import_locked
from so101_contract.run_dir import LearnerDir
from so101_contract.stamps import ns_to_stamp
from so101_driver.hardware.calibration import LEROBOT_UNITS, CalibrationError, JointConversion
from so101_driver.vision.preprocessing import ImagePreprocessing, PreprocessingError
from so101_hilserl_core.messages import observation_to_msg
from so101_hilserl_interfaces.msg import Transition
from so101_hilserl_learner.learner import network_of
from so101_hilserl_learner.run_lock import RunDirBusy, RunDirLock
from so101_reward.classifier import RewardClassifier, RewardModelError

_LENGTH = struct.Struct("<I")


def step_message(step: Step, actor_id: str, episode_id: int, index: int) -> Transition:
    """One converted step as the actor would have published it (a demonstration's policy_action is its action; no
    classifier judged it). The observations go through the one conversion (so101_hilserl_core.messages)."""
    stamp = ns_to_stamp(round(step.stamp_s * 1e9))
    action = [float(v) for v in step.action]
    msg = Transition(actor_id=actor_id, episode_id=episode_id, step=index, intervention=step.intervention,
                     action=action, policy_action=action, reward=float(step.reward), terminated=step.terminated,
                     truncated=step.truncated, success_probability=float("nan"), policy_version=0)  # fmt: skip
    msg.header.stamp, msg.header.frame_id = stamp, "base_link"
    msg.observation = observation_to_msg(step.image, step.state, stamp)
    if step.next_image is not None:
        msg.next_observation = [observation_to_msg(step.next_image, step.next_state, stamp)]
    return msg


def dataset_digest(root: Path, options: ImportOptions) -> str:
    """SHA-256 of what decides the transitions: the metadata, the data files and the import's choices (the videos
    are named by the metadata; hashing gigabytes of them would cost more than the import)."""
    digest = hashlib.sha256()
    for path in [root / INFO_PATH, *sorted(root.glob("meta/episodes/**/*.parquet")),
                 *sorted(root.glob("data/**/*.parquet"))]:  # fmt: skip
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(path.read_bytes())
    choices = (options.camera, options.units, sorted(options.success or []), options.include_failures,
               options.classifier is not None, repr(options.preprocessing), options.policy.semantics())  # fmt: skip
    digest.update(repr(choices).encode())
    return digest.hexdigest()


class DatasetSource:
    """The dataset converted into a spool of serialized Transitions (a temporary file), iterable as many times as the
    bag importer needs, with the tally of what was imported and skipped."""

    def __init__(self, root: Path, options: ImportOptions, spool_dir: Path):
        self.root = Path(root)
        reader = DatasetReader(self.root)
        self.converter = EpisodeConverter(reader, options)
        self.digest = dataset_digest(self.root, options)
        self.actor_id = f"lerobot/{self.root.name}/{self.digest[:8]}"
        self.spool = Path(spool_dir) / "transitions.spool"
        self.skipped: Counter[str] = Counter()
        self.episodes = self.successes = self.count = 0
        self.frames = sum(e.length for e in reader.episodes)
        with open(self.spool, "wb") as spool:
            for episode in tqdm(reader.episodes, desc="episodes", unit="episode"):
                result = self.converter.convert(episode)
                if result.skipped:
                    self.skipped[result.skipped] += 1
                    continue
                self.episodes += 1
                self.successes += result.success
                for index, step in enumerate(result.steps):
                    raw = serialize_message(step_message(step, self.actor_id, episode.index, index))
                    spool.write(_LENGTH.pack(len(raw)) + raw)
                    self.count += 1

    def digests(self) -> list[tuple[str, str]]:
        return [(f"{self.root} (LeRobot dataset)", self.digest)]

    def __iter__(self):
        with open(self.spool, "rb") as spool:
            for index in range(self.count):
                (length,) = _LENGTH.unpack(spool.read(_LENGTH.size))
                yield f"{self.root}: transition {index}", spool.read(length)

    def summary(self) -> str:
        skipped = "; ".join(f"{n} {why}" for why, n in self.skipped.items()) or "none"
        return (f"{self.frames} frames of {len(self.converter.reader.episodes)} episodes -> {self.count} transitions "
                f"from {self.episodes} episodes ({self.successes} successful); skipped: {skipped}")  # fmt: skip


def import_dataset(root: Path, run_dir: Path, options: ImportOptions, dry_run: bool = False):
    """Convert and check the dataset, then append its transitions to ``run_dir``'s journal (unless ``dry_run``).
    Returns (DatasetSource, ImportResult)."""
    run_dir = Path(run_dir)
    with tempfile.TemporaryDirectory(prefix="so101-import-") as spool_dir:
        source = DatasetSource(root, options, Path(spool_dir))
        if source.count == 0:
            raise DatasetError(f"{root}: no episode to import ({source.summary()})")
        lock = None
        if not dry_run:
            try:
                lock = RunDirLock(run_dir, "the importer")
            except (RunDirBusy, OSError) as err:
                raise BagImportError(str(err)) from None
        try:
            return source, import_locked(source, run_dir, options.policy, False, dry_run)
        finally:
            if lock is not None:
                lock.release()


def _episodes(text: str) -> frozenset[int] | None:
    """--success: "all", "none", or indices and ranges "0,2,5-9"."""
    if text == "all":
        return None
    if text == "none":
        return frozenset()
    chosen: set[int] = set()
    try:
        for part in text.split(","):
            first, _, last = part.strip().partition("-")
            chosen.update(range(int(first), int(last or first) + 1))
    except ValueError:
        raise ValueError(f"--success {text!r}: use all, none, or episode indices like 0,2,5-9") from None
    return frozenset(chosen)


def run_parameters(run_dir: Path) -> tuple[str, str, Path | None]:
    """(learner network, actor preprocessing, file) from the parameter file the runner wrote beside the learner's
    directory (RUN_DIR/params/*.yaml for RUN_DIR/learner), so an import matches the run it feeds; ('', '', None)
    when there is none."""
    files = sorted((Path(run_dir).parent / "params").glob("*.yaml"))
    if len(files) != 1:
        return "", "", None
    data = yaml.safe_load(files[0].read_text()) or {}
    node = lambda name: (data.get(f"/**/{name}") or {}).get("ros__parameters") or {}  # noqa: E731
    return str(node("learner").get("network") or ""), str(node("actor").get("preprocessing") or ""), files[0]


def _options(args: argparse.Namespace, parser: argparse.ArgumentParser) -> ImportOptions:
    network, preprocessing_text, params = run_parameters(args.run_dir)
    if params is not None and not (args.network or args.preprocessing):
        print(f"network {network or 'default'} and preprocessing {preprocessing_text or 'default'} from {params}")
        args.network, args.preprocessing = network, preprocessing_text
    try:
        success = _episodes(args.success) if args.success else None
        policy = network_of(args.network)
        preprocessing = ImagePreprocessing.from_parameter(args.preprocessing) if args.preprocessing else None
    except (TypeError, ValueError, PreprocessingError) as err:
        parser.error(str(err))
    if preprocessing is not None:
        preprocessing = replace(preprocessing, output_size=policy.image_size)
    calibration = None
    if args.calibration:
        try:
            calibration = JointConversion.from_file(args.calibration)
        except (OSError, CalibrationError, ValueError) as err:
            parser.error(f"--calibration {args.calibration}: {err}")
    classifier, threshold = None, ImportOptions.classifier_threshold
    if args.classifier:
        try:
            model = RewardClassifier.load(args.classifier)
        except (OSError, RewardModelError, ValueError) as err:
            parser.error(f"--classifier {args.classifier}: {err}")
        if model.config.preprocessing.output_size != policy.image_size:
            parser.error(
                f"--classifier {args.classifier}: it judges {model.config.preprocessing.output_size}-pixel frames, "
                f"the learner's network takes {policy.image_size}: train it on the run's preprocessing"
            )
        classifier, threshold = model.probabilities, model.threshold
    return ImportOptions(
        camera=args.camera,
        units=args.units,
        calibration=calibration,
        success=success,
        classifier=classifier,
        classifier_threshold=threshold,
        include_failures=args.include_failures,
        preprocessing=preprocessing,
        policy=policy,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m so101_bringup.lerobot_datasets.import_dataset",
        description="Import a LeRobotDataset v3.0 folder into a learner run directory: an SO-101 recording "
        "(lerobot-record: follower joints and a camera at >= 10 fps) becomes 10 Hz demonstrations whose actions are "
        "the follower's motion in the policy's action channel; LeRobot HIL-SERL recordings and this project's "
        "exports (10 fps, 4-D actions) keep their actions. Images go through the project's preprocessing, rewards "
        "follow the actor's rules. Only successful episodes by default. Nothing is written if any episode is bad.",
    )
    parser.add_argument("dataset", type=Path, help="the dataset folder (holding meta/info.json)")
    parser.add_argument("--run-dir", required=True, type=Path, help="learner run directory (created if missing)")
    parser.add_argument("--camera", default="observation.images.wrist", help="the wrist camera's feature key")
    parser.add_argument("--units", choices=LEROBOT_UNITS,
                        help="the arm joints' units: degrees (LeRobot >= 0.4.4) or range_m100 (-100..100, <= 0.4.3; "
                        "needs --calibration); needed unless the dataset says")  # fmt: skip
    parser.add_argument("--calibration", type=Path, help="the follower's LeRobot calibration file (range_m100)")
    parser.add_argument("--success",
                        help="which episodes succeeded: all, none or indices like 0,2,5-9 (a recording needs this or "
                        "--classifier; transition datasets: default from next.reward)")  # fmt: skip
    parser.add_argument("--classifier", type=Path, help="a reward classifier model directory: it decides success "
                        "and where each episode ends")  # fmt: skip
    parser.add_argument("--include-failures", action="store_true", help="import unsuccessful episodes too")
    parser.add_argument("--preprocessing", default="", help="JSON ImagePreprocessing fields for this camera "
                        "(source size, crop box); default: the project's 640x480 centre crop")  # fmt: skip
    parser.add_argument("--network", default="", help="the learner's network parameter (JSON PolicyConfig overrides)")
    parser.add_argument("--dry-run", action="store_true", help="convert and count; leave the run directory untouched")
    args = parser.parse_args(argv)
    options = _options(args, parser)
    try:
        if args.success is None and options.classifier is None:
            if check_dataset(DatasetReader(args.dataset), options) == "recording":
                raise DatasetError(
                    f"{args.dataset}: say which episodes succeeded: --success all, --success 0,2,5-9, or "
                    "--classifier MODEL_DIR (a recording has no reward)"
                )
        source, result = import_dataset(args.dataset, args.run_dir, options, args.dry_run)
    except (DatasetError, BagImportError) as err:
        print(f"import_dataset: {err}", file=sys.stderr)
        return 2
    print(source.summary())
    print(("dry run: " if args.dry_run else f"imported into {LearnerDir(args.run_dir).journal}: ") + result.summary())
    return 0


if __name__ == "__main__":
    sys.exit(main())
