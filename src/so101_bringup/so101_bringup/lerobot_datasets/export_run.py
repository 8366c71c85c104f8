"""export_run: a run's transitions (its learner journal, or recorded bags) as a LeRobotDataset v3.0 folder.

One frame per control step at 10 fps: ``observation.state`` the follower's joints in LeRobot's units (DEGREES arm,
RANGE_0_100 gripper), ``action`` the executed 4-D action (gripper as LeRobot's class 0 close .. 2 open),
``next.reward``, ``next.done``, ``complementary_info.is_intervention`` and the wrist camera as ``observation.images.
wrist``: the policy's frames, scaled up 2x (each pixel a 2x2 block) so that the video's 4:2:0 chroma keeps every
pixel's colour. Complete episodes only, evaluation episodes on request; written atomically.

    python -m so101_bringup.lerobot_datasets.export_run runs/sim exports/sim-session --task "pick up the cube"
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

import numpy as np
from rclpy.serialization import deserialize_message
from tqdm import tqdm

from so101_bringup.lerobot_datasets.layout import (
    ACTION,
    DONE,
    INTERVENTION,
    JOINT_FEATURE_NAMES,
    REWARD,
    ROBOT_TYPES,
    STATE,
    DatasetError,
)
from so101_bringup.lerobot_datasets.transitions import EXPORT_MARK, LEROBOT_GRIPPER_OFFSET
from so101_bringup.lerobot_datasets.writer import DatasetWriter
from so101_bringup.records.importer import BagImportError, TransitionBags
from so101_contract.control import ACTION_DIM, CONTROL_RATE_HZ
from so101_contract.run_dir import LearnerDir, RunDir
from so101_contract.state import JOINT_POSITIONS
from so101_driver.hardware.calibration import radians_to_lerobot_degrees
from so101_hilserl_core.messages import MessageFormatError, observation_from_msg
from so101_hilserl_interfaces.msg import Transition
from so101_hilserl_learner.journal import read_journal, scan_journal

CAMERA = "observation.images.wrist"
SCALE = 2  # each policy pixel becomes SCALE x SCALE video pixels
DEFAULT_TASK = "Pick up the cube."
FEATURES = {
    STATE: {"dtype": "float32", "shape": [len(JOINT_FEATURE_NAMES)], "names": list(JOINT_FEATURE_NAMES),
            "info": {f"{EXPORT_MARK}.units": "degrees"}},
    ACTION: {"dtype": "float32", "shape": [ACTION_DIM], "names": ["delta_x", "delta_y", "delta_z", "gripper"]},
    REWARD: {"dtype": "float32", "shape": [1], "names": None},
    DONE: {"dtype": "bool", "shape": [1], "names": None},
    INTERVENTION: {"dtype": "float32", "shape": [1], "names": None},
}  # fmt: skip


def transition_records(source: Path):
    """(where, serialized Transition) from a run directory's learner journal or from bags, and how many."""
    journal = LearnerDir(source).journal
    if not journal.is_dir() and RunDir(source).learner.journal.is_dir():  # the runner's run directory
        journal = RunDir(source).learner.journal
    if journal.is_dir():
        count = sum(len(scan.records) for scan in scan_journal(journal))
        return ((f"{journal} record {i}", raw) for i, raw in enumerate(read_journal(journal))), count
    if (source / "metadata.yaml").is_file() or source.suffix in (".mcap", ".db3"):
        bags = TransitionBags([source])
        return iter(bags), bags.count
    raise DatasetError(f"{source}: no learner journal (journal/ or learner/journal/) and not a rosbag2 bag")


def episode_frames(steps: list[Transition]) -> tuple[dict, list[np.ndarray]]:
    """One complete episode's messages -> (feature values per frame, camera frames)."""
    states, images = [], []
    for msg in steps:
        image, state = observation_from_msg(msg.observation, field=f"episode {msg.episode_id} step {msg.step}")
        images.append(np.repeat(np.repeat(image, SCALE, axis=0), SCALE, axis=1))
        states.append(state[JOINT_POSITIONS])
    actions = np.array([msg.action for msg in steps], dtype=np.float64)
    actions[:, 3] += LEROBOT_GRIPPER_OFFSET
    values = {
        STATE: radians_to_lerobot_degrees(np.array(states)).astype(np.float32),
        ACTION: actions.astype(np.float32),
        REWARD: np.array([msg.reward for msg in steps], dtype=np.float32),
        DONE: np.array([msg.terminated or msg.truncated for msg in steps], dtype=bool),
        INTERVENTION: np.array([msg.intervention for msg in steps], dtype=np.float32),
    }
    return values, images


def complete_episodes(records, count: int, tally: Counter, evaluation: bool, demonstrations_only: bool):
    """(where, the episode's messages) for each complete episode in the stream; what is left out is tallied."""
    open_episodes: dict[tuple[str, int], list[Transition]] = {}
    with tqdm(records, total=count, desc="transitions", unit="msg") as bar:
        for where, raw in bar:
            try:
                msg = deserialize_message(raw, Transition)
            except Exception:  # a damaged record is counted, never exported
                tally["damaged records left out"] += 1
                continue
            if msg.evaluation and not evaluation:
                tally["evaluation steps left out"] += 1
                continue
            key = (msg.actor_id, int(msg.episode_id))
            steps = open_episodes.setdefault(key, [])
            if msg.step != len(steps):  # a gap: the episode cannot be complete
                tally["steps of incomplete episodes left out"] += len(steps) + 1
                del open_episodes[key]
                continue
            steps.append(msg)
            if not (msg.terminated or msg.truncated):
                continue
            del open_episodes[key]
            if demonstrations_only and not all(m.intervention for m in steps):
                tally["steps of episodes the policy drove left out"] += len(steps)
                continue
            yield where, steps
    tally["steps of incomplete episodes left out"] += sum(len(s) for s in open_episodes.values())


def export_run(source: Path, out: Path, task: str = DEFAULT_TASK, evaluation: bool = False,
               overwrite: bool = False, demonstrations_only: bool = False) -> Counter:  # fmt: skip
    """Write ``source``'s complete episodes to ``out`` (``demonstrations_only``: those a person drove at every
    step); returns the tally (episodes, frames, what was left out)."""
    records, count = transition_records(Path(source))
    tally: Counter[str] = Counter()
    writer = None
    try:
        for where, steps in complete_episodes(records, count, tally, evaluation, demonstrations_only):
            try:
                values, images = episode_frames(steps)
            except MessageFormatError as err:
                raise DatasetError(f"{where}: {err}") from None
            if writer is None:
                size = images[0].shape[0]
                writer = DatasetWriter(out, int(CONTROL_RATE_HZ), ROBOT_TYPES[0], FEATURES, CAMERA, (size, size),
                                       task, overwrite)  # fmt: skip
                writer.features[CAMERA]["info"][EXPORT_MARK] = {"output_size": size // SCALE, "scale": SCALE}
            writer.add_episode(values, images)
            tally["episodes"] += 1
            tally["frames"] += len(steps)
        if writer is None:
            raise DatasetError(f"{source}: no complete episode to export ({dict(tally) or 'no transitions'})")
        writer.finish()
    except BaseException:  # a failure (or Ctrl-C) anywhere leaves no dataset, only nothing
        if writer is not None:
            writer.abort()
        raise
    return tally


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m so101_bringup.lerobot_datasets.export_run",
        description="Export a run's transitions (a run directory's learner journal, or a recorded bag) as a "
        "LeRobotDataset v3.0 folder at 10 fps: follower joints in LeRobot's degrees, the executed 4-D action, "
        "rewards, done flags, who drove each step, and the wrist camera as AV1 video. Complete episodes only. "
        "Written into a staging folder and renamed into place, so a crash leaves no half dataset.",
    )
    parser.add_argument("source", type=Path, help="a run directory (its learner journal) or a rosbag2 bag")
    parser.add_argument("out", type=Path, help="the dataset folder to create")
    parser.add_argument("--task", default=DEFAULT_TASK, help="the task text stored with every episode")
    parser.add_argument("--evaluation", action="store_true", help="export evaluation episodes too")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing dataset folder")
    parser.add_argument(
        "--demonstrations-only",
        action="store_true",
        help="only episodes a person drove from start to end (the run's demonstrations)",
    )
    args = parser.parse_args(argv)
    try:
        tally = export_run(args.source, args.out, args.task, args.evaluation, args.overwrite, args.demonstrations_only)
    except (DatasetError, BagImportError) as err:
        print(f"export_run: {err}", file=sys.stderr)
        return 2
    left = ", ".join(f"{n} {what}" for what, n in tally.items() if what not in ("episodes", "frames")) or "nothing"
    print(f"exported {tally['episodes']} episodes ({tally['frames']} frames) to {args.out}; left out: {left}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
