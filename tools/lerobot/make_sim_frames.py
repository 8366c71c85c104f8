"""Frames of the simulated SO-101 for a LeRobot dataset: true joint angles, servo ticks and wrist images.

Runs in the PROJECT venv (MuJoCo, the project's sim). The simulated operator drives the leader and the follower
tracks it, as in a teleoperated recording; every frame at ``--fps`` keeps the follower's true radians, the integer
servo ticks a calibrated STS3215 would report for them (the project's JointConversion and a LeRobot calibration
file) and the wrist image. tools/lerobot/write_so101_dataset.py turns the result into a dataset with LeRobot's writer.

    python tools/lerobot/make_sim_frames.py --out /tmp/frames.npz [--truth truth.npz]

The .npz (concatenated episodes): ``images`` uint8 [N, 480, 640, 3], ``ticks`` int32 [N, 6], ``radians`` float64
[N, 6] (JOINT_NAMES order), ``lengths`` int64 [E], ``seeds`` int64 [E], ``fps`` int, ``joint_names`` str [6] and
``calibration_json`` (the calibration file's text, so the writer uses exactly the calibration the ticks came from).
``--truth`` writes the same without the images.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CALIBRATION = ROOT / "src/so101_bringup/test/fixtures/lerobot/calibration_follower.json"


def record_episode(seed: int, frames: int, fps: int) -> tuple[np.ndarray, np.ndarray]:
    """One teleoperated episode from ``SimWorld.reset(seed)``: (radians [T, 6], images uint8 [T, H, W, 3]).

    Frame t is what the follower reads and the camera sees at t / fps; between frames the simulated operator moves
    the leader, the follower's servos are sent the leader's joints and physics advances one frame period.
    """
    from so101_driver.sim.grasp_controller import ScriptedGrasp
    from so101_driver.sim.operator import LeaderArm, OperatorConfig, SimulatedOperator
    from so101_driver.sim.world import SimWorld

    period = 1.0 / fps
    with SimWorld(seed=seed) as world:
        kinematics = world.kinematics
        operator = SimulatedOperator(kinematics, ScriptedGrasp(), OperatorConfig(mode="demo"), seed=seed)
        leader = LeaderArm(kinematics, seed=seed)
        leader.reset(world.joint_positions())
        radians, images = [], []
        for _ in range(frames):
            q = world.joint_positions()
            radians.append(q)
            images.append(world.render_wrist())
            hand = operator.update(
                world.time, period, q, world.cube_pose()[0], world.grasp_success(), leader_q=leader.positions
            )
            leader.step(period, hand)
            world.set_joint_targets(leader.positions)
            world.step(period)
    return np.array(radians), np.array(images, dtype=np.uint8)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="the .npz with images to write")
    parser.add_argument("--truth", type=Path, help="also write the .npz without images here")
    parser.add_argument("--calibration", type=Path, default=DEFAULT_CALIBRATION, help="LeRobot calibration JSON")
    parser.add_argument("--episodes", type=int, default=2)
    parser.add_argument("--frames", type=int, default=40, help="frames per episode")
    parser.add_argument("--fps", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0, help="episode i resets with seed + i")
    args = parser.parse_args(argv)
    os.environ.setdefault("MUJOCO_GL", "egl")

    from so101_contract.joints import JOINT_NAMES
    from so101_driver.hardware.calibration import JointConversion, calibration_to_dict, load_calibration

    calibration = load_calibration(args.calibration)
    conversion = JointConversion(calibration)
    seeds = np.arange(args.seed, args.seed + args.episodes, dtype=np.int64)
    radians, images = [], []
    for seed in seeds:
        q, pictures = record_episode(int(seed), args.frames, args.fps)
        radians.append(q)
        images.append(pictures)
    radians_all = np.concatenate(radians)
    ticks = np.array([conversion.radians_to_ticks(q) for q in radians_all], dtype=np.int32)
    truth = {
        "ticks": ticks,
        "radians": radians_all,
        "lengths": np.array([len(q) for q in radians], dtype=np.int64),
        "seeds": seeds,
        "fps": np.int64(args.fps),
        "joint_names": np.array(JOINT_NAMES),
        "calibration_json": np.array(json.dumps(calibration_to_dict(calibration))),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(args.out, images=np.concatenate(images), **truth)
    if args.truth is not None:
        args.truth.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(args.truth, **truth)
    print(f"{args.out}: {len(seeds)} episodes, {len(ticks)} frames at {args.fps} fps")
    return 0


if __name__ == "__main__":
    sys.exit(main())
