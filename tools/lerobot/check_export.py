"""Check what the real LeRobot read from the project's export against the run it was exported from.

Runs in the PROJECT venv. Inputs: the learner journal that was exported and the dump tools/lerobot/read_dataset.py
made of the export. Every complete training episode of the journal must come back, frame for frame: the follower's
joints in LeRobot's degrees, the executed action with the gripper as class 0..2, the reward, the done flag, who drove,
timestamps k / 10 s, and the wrist images (decoded by LeRobot, scaled back to the policy's size) within 35 dB.

    python tools/lerobot/check_export.py --journal RUN/journal --dump export.npz
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np
from rclpy.serialization import deserialize_message

from so101_hilserl_core.messages import observation_from_msg
from so101_hilserl_interfaces.msg import Transition
from so101_hilserl_learner.journal import read_journal

MIN_PSNR_DB = 35.0


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--journal", type=Path, required=True)
    parser.add_argument("--dump", type=Path, required=True)
    args = parser.parse_args(argv)
    steps = [deserialize_message(raw, Transition) for raw in read_journal(args.journal)]
    steps = [m for m in steps if not m.evaluation]
    dump = np.load(args.dump)
    meta = json.loads(str(dump["meta"]))
    problems = []
    if (meta["fps"], meta["robot_type"], meta["total_frames"]) != (10, "so_follower", len(steps)):
        problems.append(f"fps/robot/frames {meta['fps']}, {meta['robot_type']}, {meta['total_frames']}")
    joints = np.array([observation_from_msg(m.observation)[1][:6] for m in steps])
    if not np.allclose(dump["observation.state"], np.rad2deg(joints), atol=1e-4):
        problems.append("observation.state is not the journal's joints in degrees")
    actions = np.array([m.action for m in steps], dtype=np.float64)
    actions[:, 3] += 1.0
    if not np.allclose(dump["action"], actions, atol=1e-6):
        problems.append("action is not the executed action (gripper as class 0..2)")
    if not np.allclose(dump["next.reward"].reshape(-1), [m.reward for m in steps], atol=1e-6):
        problems.append("next.reward differs")
    done = [bool(m.terminated or m.truncated) for m in steps]
    if dump["next.done"].reshape(-1).astype(bool).tolist() != done:
        problems.append("next.done differs")
    driven = dump["complementary_info.is_intervention"].reshape(-1)
    if driven.tolist() != [float(m.intervention) for m in steps]:
        problems.append("complementary_info.is_intervention differs")
    step_index = np.concatenate([np.arange(n) for n in np.diff(np.flatnonzero([True, *done]))])
    if not np.allclose(dump["timestamp"].reshape(-1), step_index / 10.0, atol=1e-6):
        problems.append("timestamps are not k / 10 s")
    worst = float("inf")
    for msg, frame in zip(steps, dump["observation.images.wrist"], strict=True):
        image = observation_from_msg(msg.observation)[0]
        back = cv2.resize(frame, image.shape[1::-1], interpolation=cv2.INTER_AREA)
        worst = min(worst, psnr(image, back))
    if worst < MIN_PSNR_DB:
        problems.append(f"wrist images {worst:.1f} dB < {MIN_PSNR_DB} dB")
    print(f"check_export: {len(steps)} frames of {sum(done)} episodes; images >= {worst:.1f} dB")
    for problem in problems:
        print(f"check_export: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
