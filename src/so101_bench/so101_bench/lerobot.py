"""Speed of LeRobot datasets in and out: importing an SO-101 recording and exporting a session, on this machine.

Import: a recording as lerobot-record makes one (30 fps, 640x480 wrist camera in AV1 with LeRobot's encoder
settings, degrees) of ``--frames`` frames rendered by the simulation, into a fresh learner directory (decode,
resample to 10 Hz, preprocess, states, actions, journal). Export: a learner journal of ``--transitions`` transitions
into a v3.0 dataset (decode, LeRobot's units, AV1 video, stats). The recording is made once and kept in --work.

    python -m so101_bench.lerobot            # goals: each direction <= 180 s for 10,000 frames / transitions
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

import numpy as np
from rclpy.serialization import deserialize_message, serialize_message

from so101_bringup.lerobot_datasets.export_run import export_run
from so101_bringup.lerobot_datasets.import_dataset import import_dataset
from so101_bringup.lerobot_datasets.layout import JOINT_FEATURE_NAMES, STATE
from so101_bringup.lerobot_datasets.reader import DatasetReader
from so101_bringup.lerobot_datasets.transitions import ImportOptions
from so101_bringup.lerobot_datasets.writer import DatasetWriter
from so101_contract.cli import positive_int
from so101_contract.joints import GRIPPER
from so101_contract.run_dir import LearnerDir
from so101_driver.hardware.calibration import radians_to_lerobot_degrees
from so101_driver.model.kinematics import HOME_SEED
from so101_driver.sim.world import SimWorld
from so101_hilserl_interfaces.msg import Transition
from so101_hilserl_learner.journal import TransitionJournal, read_journal

GOAL_S = 180.0  # each direction, for 10,000 frames (import) or transitions (export)
FPS = 30
EPISODE_FRAMES = 500  # ~17 s per episode, as a pick demonstration


def make_recording(root: Path, frames: int, seed: int = 0) -> Path:
    """A lerobot-record-like dataset of the simulated arm moving smoothly, its wrist camera rendered at 640x480."""
    if (root / "meta/info.json").is_file() and DatasetReader(root).info["total_frames"] == frames:
        return root
    shutil.rmtree(root, ignore_errors=True)
    features = {
        STATE: {"dtype": "float32", "shape": [6], "names": list(JOINT_FEATURE_NAMES)},
        "action": {"dtype": "float32", "shape": [6], "names": list(JOINT_FEATURE_NAMES)},
    }
    rng = np.random.default_rng(seed)
    writer = DatasetWriter(root, FPS, "so_follower", features, "observation.images.wrist", (480, 640), "pick")
    with SimWorld(seed=seed) as world:
        done = 0
        while done < frames:
            length = min(EPISODE_FRAMES, frames - done)
            world.reset(seed=int(rng.integers(1 << 30)))
            t = np.arange(length)[:, None] / FPS
            q = HOME_SEED + 0.25 * np.sin(2 * np.pi * rng.uniform(0.05, 0.2, 6) * t + rng.uniform(0, np.pi, 6))
            q[:, GRIPPER] = 0.5 + 0.4 * np.sin(2 * np.pi * 0.1 * t[:, 0])
            images, positions = [], []
            for row in q:  # the follower read after each frame's command, as lerobot-record stores it
                world.set_joint_targets(row)
                world.step(1.0 / FPS)
                images.append(world.render_wrist())
                positions.append(world.joint_positions())
            measured = radians_to_lerobot_degrees(np.array(positions))
            writer.add_episode({STATE: measured.astype(np.float32), "action": measured.astype(np.float32)}, images)
            done += length
            print(f"  recording: {done}/{frames} frames", flush=True)
    return writer.finish()


def make_journal(source: Path, out: Path, transitions: int) -> Path:
    """A learner directory whose journal holds ``transitions`` transitions: the imported ones, repeated as further
    episodes of further actors."""
    shutil.rmtree(out, ignore_errors=True)
    records = [deserialize_message(raw, Transition) for raw in read_journal(LearnerDir(source).journal)]
    journal = TransitionJournal(LearnerDir(out).journal)
    copy = 0
    while journal.records < transitions:
        for msg in records:
            if journal.records >= transitions and msg.step == 0:
                break
            msg.actor_id = f"bench/{copy}"
            journal.append(serialize_message(msg))
        copy += 1
    journal.close()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=positive_int, default=10_000, help="frames of the recording imported")
    parser.add_argument("--transitions", type=positive_int, default=10_000, help="transitions exported")
    parser.add_argument("--work", type=Path, default=Path("runs/bench_lerobot"), help="where the data is kept")
    args = parser.parse_args(argv)
    recording = make_recording(args.work / "recording", args.frames)
    learner = args.work / "imported"
    shutil.rmtree(learner, ignore_errors=True)
    started = time.perf_counter()
    source, _ = import_dataset(recording, learner, ImportOptions(units="degrees"))
    import_s = time.perf_counter() - started
    print(f"import: {source.summary()}")
    session = make_journal(learner, args.work / "session", args.transitions)
    started = time.perf_counter()
    tally = export_run(session, args.work / "exported", overwrite=True)
    export_s = time.perf_counter() - started
    print(f"export: {tally['episodes']} episodes, {tally['frames']} transitions")
    misses = []
    for what, seconds, count, unit in (("import", import_s, args.frames, "frames"),
                                       ("export", export_s, tally["frames"], "transitions")):  # fmt: skip
        scaled = seconds * 10_000 / count
        print(f"{what}: {count} {unit} in {seconds:.1f} s ({count / seconds:.0f} {unit}/s; {scaled:.1f} s per 10,000, "
              f"{GOAL_S / scaled:.2f}x the goal of {GOAL_S:.0f} s)")  # fmt: skip
        if scaled > GOAL_S:
            misses.append(f"{what} {scaled:.0f} s per 10,000 {unit} > {GOAL_S:.0f} s")
    print("goal met" if not misses else "goal missed: " + "; ".join(misses))
    return 0 if not misses else 1


if __name__ == "__main__":
    sys.exit(main())
