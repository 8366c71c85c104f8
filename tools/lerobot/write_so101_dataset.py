"""Write an SO-101 LeRobotDataset v3.0 with LeRobot's own code, as ``lerobot-record`` lays one out.

Runs in the LeRobot venv (scripts/lerobot_venv.sh), never in the ROS venv. The joint values are LeRobot's: the
frames' integer servo ticks go through the ``FeetechMotorsBus._normalize`` of an ``SOFollower`` built (not
connected) with the frames' calibration, body joints in DEGREES (``--norm degrees``, LeRobot >= 0.4.4) or
RANGE_M100_100 (``--norm range_m100_100``, <= 0.4.3), the gripper RANGE_0_100. Features, processors and the frame
dicts come from the same functions lerobot-record calls; ``action`` is the next frame's follower values (a leader one
frame ahead). The result is the reference the project's importer and exporter are checked against.

    .venv-lerobot/bin/python tools/lerobot/write_so101_dataset.py --frames frames.npz --out DIR --norm degrees
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a local folder: never ask the Hub

TASK = "Grasp the red cube"
NORMS = ("degrees", "range_m100_100")


def make_follower(calibration_json: str, use_degrees: bool, calibration_dir: Path, height: int, width: int, fps: int):
    """An SOFollower (robot_type "so_follower") with a wrist camera, loaded with the calibration but not connected:
    LeRobot's own motor table, normalisation modes and observation/action features."""
    from lerobot.cameras.opencv import OpenCVCameraConfig
    from lerobot.robots.so_follower import SOFollower, SOFollowerRobotConfig

    (calibration_dir / "follower.json").write_text(calibration_json)
    camera = OpenCVCameraConfig(index_or_path=0, fps=fps, width=width, height=height)
    config = SOFollowerRobotConfig(
        port="not-connected",
        id="follower",
        calibration_dir=calibration_dir,
        cameras={"wrist": camera},
        use_degrees=use_degrees,
    )
    robot = SOFollower(config)
    if not robot.calibration:
        raise RuntimeError(f"LeRobot did not load the calibration from {calibration_dir}")
    return robot


def normalized(robot, ticks: np.ndarray) -> dict[str, float]:
    """``{"<motor>.pos": value}`` from one frame's ticks by the bus's ``_normalize``, as ``get_observation`` does."""
    bus = robot.bus
    names = list(bus.motors)
    values = bus._normalize({bus.motors[name].id: int(t) for name, t in zip(names, ticks, strict=True)})
    return {f"{name}.pos": values[bus.motors[name].id] for name in names}


def write_dataset(frames: dict, out: Path, repo_id: str, norm: str, task: str = TASK) -> None:
    from lerobot.datasets import (
        LeRobotDataset,
        VideoEncodingManager,
        aggregate_pipeline_dataset_features,
        create_initial_features,
    )
    from lerobot.processor import make_default_processors
    from lerobot.utils.constants import ACTION, OBS_STR
    from lerobot.utils.feature_utils import build_dataset_frame, combine_feature_dicts

    images, ticks, lengths = frames["images"], frames["ticks"], frames["lengths"]
    fps = int(frames["fps"])
    height, width = images.shape[1:3]
    if ticks.shape != (len(images), 6) or int(lengths.sum()) != len(images):
        raise ValueError(f"frames disagree: {len(images)} images, ticks {ticks.shape}, lengths {lengths.tolist()}")
    with tempfile.TemporaryDirectory() as calibration_dir:
        robot = make_follower(
            str(frames["calibration_json"]), norm == "degrees", Path(calibration_dir), height, width, fps
        )
    teleop_action_processor, _, robot_observation_processor = make_default_processors()
    features = combine_feature_dicts(
        aggregate_pipeline_dataset_features(
            pipeline=teleop_action_processor,
            initial_features=create_initial_features(action=robot.action_features),
            use_videos=True,
        ),
        aggregate_pipeline_dataset_features(
            pipeline=robot_observation_processor,
            initial_features=create_initial_features(observation=robot.observation_features),
            use_videos=True,
        ),
    )
    dataset = LeRobotDataset.create(
        repo_id, fps, root=out, robot_type=robot.name, features=features, use_videos=True, image_writer_threads=4
    )
    with VideoEncodingManager(dataset):
        start = 0
        for length in lengths.tolist():
            episode = range(start, start + length)
            for i in episode:
                obs = {**normalized(robot, ticks[i]), "wrist": images[i]}
                leader = normalized(robot, ticks[min(i + 1, episode[-1])])  # the leader is one frame ahead
                observation_frame = build_dataset_frame(dataset.features, robot_observation_processor(obs), OBS_STR)
                action_frame = build_dataset_frame(dataset.features, teleop_action_processor((leader, obs)), ACTION)
                dataset.add_frame({**observation_frame, **action_frame, "task": task})
            dataset.save_episode()
            start += length
    if hasattr(dataset, "finalize"):
        dataset.finalize()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=Path, required=True, help=".npz from tools/lerobot/make_sim_frames.py")
    parser.add_argument("--out", type=Path, required=True, help="dataset root to create (must not exist)")
    parser.add_argument("--norm", choices=NORMS, default="degrees", help="body joints' MotorNormMode")
    parser.add_argument("--repo-id", default=None, help="default: so101-hilserl/so101_<norm>")
    parser.add_argument("--task", default=TASK)
    args = parser.parse_args(argv)
    if args.out.exists():
        print(f"write_so101_dataset: {args.out} exists; LeRobot creates a new dataset root", file=sys.stderr)
        return 2
    with np.load(args.frames) as data:
        frames = {key: data[key] for key in data.files}
    repo_id = args.repo_id or f"so101-hilserl/so101_{args.norm}"
    write_dataset(frames, args.out, repo_id, args.norm, args.task)
    info = json.loads((args.out / "meta/info.json").read_text())
    print(f"{args.out}: {info['total_episodes']} episodes, {info['total_frames']} frames ({args.norm})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
