"""Benchmarks of the simulation: scripted-demo grasp rate and real-time factor with the wrist camera.

(a) Demo grasp rate: randomised stage-0 episodes driven by the simulated operator in demo mode on the simulated leader,
    its pose turned into the policy's action as during an intervention. Demonstrations are only as good as this.
(b) Real-time factor: physics in 0.1 s chunks with one 640x480 wrist render each; >= 1 keeps up with the real robot.

    python -m so101_bench.sim --episodes 10 --seconds 5 --min-rate 0.9     # 50 episodes + 20 s of sim time by default
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass

import numpy as np

from so101_bench.operator_alone import FAST, operator_episode
from so101_contract.control import CONTROL_PERIOD_S
from so101_driver.sim.world import SimConfig, SimWorld
from so101_hilserl_core.episode import EpisodeConfig
from so101_hilserl_learner.envs.pick import PickEnv


@dataclass
class EpisodeResult:
    success: bool  # the episode ended in the task's success
    steps: int  # control steps it took


def demo_grasp_rate(
    episodes: int, *, seed: int = 0, max_steps: int = 100, progress: bool = True
) -> tuple[int, list[EpisodeResult]]:
    """Successes and per-episode results of ``episodes`` operator-driven episodes, seeds seed .. seed+episodes-1."""
    from tqdm import tqdm

    env = PickEnv(stage=0, preprocessing=FAST, episode=EpisodeConfig(max_steps=max_steps))
    results = []
    try:
        bar = tqdm(range(episodes), desc="demo episodes", unit="ep", disable=not progress)
        for i in bar:
            outcome = operator_episode(env, seed + i)
            results.append(EpisodeResult(outcome["success"], outcome["steps"]))
            bar.set_postfix(success=sum(r.success for r in results))
    finally:
        env.close()
    return sum(r.success for r in results), results


def real_time_factor(sim_seconds: float, *, config: SimConfig | None = None, seed: int = 0) -> tuple[float, float]:
    """(sim seconds / wall seconds, mean render ms): physics in 0.1 s chunks, one wrist render per chunk."""
    world = SimWorld(config, seed=seed)
    try:
        world.render_wrist()  # create the GL context outside the timing
        q = world.joint_positions()
        chunks = max(1, round(sim_seconds / CONTROL_PERIOD_S))
        render_s = 0.0
        start = time.perf_counter()
        for i in range(chunks):
            # A slow sway of the arm so the contact and the image change, as in an episode.
            q_target = q.copy()
            q_target[0] += 0.2 * np.sin(i * CONTROL_PERIOD_S)
            world.set_joint_targets(q_target)
            world.step(CONTROL_PERIOD_S)
            t0 = time.perf_counter()
            world.render_wrist()
            render_s += time.perf_counter() - t0
        wall = time.perf_counter() - start
    finally:
        world.close()
    return chunks * CONTROL_PERIOD_S / wall, 1000.0 * render_s / chunks


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m so101_bench.sim",
        description="Simulation benchmarks: scripted-demo grasp rate and real-time factor with the wrist camera.",
    )
    parser.add_argument("--episodes", type=int, default=50, help="scripted grasp episodes (default 50; 0 skips)")
    parser.add_argument(
        "--max-steps", type=int, default=EpisodeConfig.max_steps, help="control steps per episode at 10 Hz"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the first episode (default 0)")
    parser.add_argument(
        "--min-rate", type=float, default=0.9, help="exit with status 1 if the grasp rate is below this (default 0.9)"
    )
    parser.add_argument(
        "--seconds", type=float, default=20.0, help="sim seconds for the real-time factor (default 20; 0 skips)"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    if args.episodes < 0 or args.max_steps < 1 or args.seconds < 0:
        parser.error("--episodes and --seconds must be >= 0 and --max-steps >= 1")

    status = 0
    if args.episodes:
        successes, results = demo_grasp_rate(
            args.episodes, seed=args.seed, max_steps=args.max_steps, progress=not args.no_progress
        )
        rate = successes / args.episodes
        steps = [r.steps for r in results if r.success]
        print(f"operator demo grasp success: {successes}/{args.episodes} = {100 * rate:.1f}%")
        if steps:
            print(f"  steps to success: median {int(np.median(steps))}, max {max(steps)} (of {args.max_steps})")
        failed = [args.seed + i for i, r in enumerate(results) if not r.success]
        if failed:
            print(f"  failed seeds: {failed}")
        if rate < args.min_rate:
            print(f"  FAIL: below --min-rate {args.min_rate:.2f}")
            status = 1
    if args.seconds:
        rtf, render_ms = real_time_factor(args.seconds, seed=args.seed)
        size = f"{SimConfig().camera_width}x{SimConfig().camera_height}"
        print(
            f"real-time factor: {rtf:.2f} (sim s / wall s; {args.seconds:g} s of physics in 0.1 s chunks, "
            f"one {size} wrist render per chunk, {render_ms:.1f} ms each)"
        )
    return status


if __name__ == "__main__":
    sys.exit(main())
