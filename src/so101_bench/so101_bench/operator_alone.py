"""The task's two reference points: how often the simulated operator finishes the grasp when it drives alone (from
each curriculum stage's reset and from the states a random policy leaves), and how often a uniform random policy
succeeds from each stage's reset (the floor every learning curve is read against).

The loop is the graph's without the transport: the Gymnasium pick task, the operator's hand on the simulated leader,
and the leader's pose turned into the policy's action by the actor's HumanActionEncoder, as during an intervention.

    python -m so101_bench.operator_alone --episodes 50 --min-rate 0.9     # 20 episodes per start by default
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from so101_contract.cli import positive_int
from so101_driver.sim.curriculum import STAGES
from so101_driver.sim.grasp_controller import ScriptedGrasp
from so101_driver.sim.operator import LeaderArm, OperatorConfig, SimulatedOperator
from so101_driver.vision.preprocessing import ImagePreprocessing
from so101_hilserl_core.action_mapping import HumanActionEncoder
from so101_hilserl_learner.envs.pick import PickEnv

# Small renders: the operator does not look at the image.
FAST = ImagePreprocessing(crop_x=20, crop_y=0, crop_width=120, crop_height=120, output_size=32,
                          source_width=160, source_height=120)  # fmt: skip
# Steps of a uniform random policy before the takeover (start "random"): the state a weak policy hands over.
RANDOM_STEPS = 20


def operator_episode(env: PickEnv, seed: int, random_steps: int = 0) -> dict:
    """One episode: ``random_steps`` uniform random actions, then the operator drives to the end. Returns
    {"success", "steps", "operator_steps"}."""
    rng = np.random.default_rng(seed)
    env.reset(seed=seed)
    world = env.world
    kinematics = world.kinematics
    operator = SimulatedOperator(kinematics, ScriptedGrasp(), OperatorConfig(mode="demo"), seed=seed)
    leader = LeaderArm(kinematics, seed=seed)
    encoder = HumanActionEncoder(kinematics, env.semantics, env.action_config)
    period = env.control_period_s
    info = {"is_success": False, "steps": 0}
    operator_steps = 0
    for step in range(env.episode_config.max_steps):
        q = world.joint_positions()
        if step < random_steps:
            action = rng.uniform(-1.0, 1.0, 4).astype(np.float32)
            leader.reset(q)  # the leader shadows the follower while the policy drives
        else:
            hand = operator.update(world.time, period, q, world.cube_pose()[0], world.grasp_success(),
                                   leader_q=leader.positions)  # fmt: skip
            leader.step(period, hand)
            action = encoder.encode(leader.positions, q)
            operator_steps += 1
        _, _, terminated, truncated, info = env.step(action)
        if terminated or truncated:
            break
    return {"success": bool(info["is_success"]), "steps": int(info["steps"]), "operator_steps": operator_steps}


def success_rates(episodes: int, seed: int = 0) -> dict[str, float]:
    """Operator-alone success per start: "stage 0".."stage 3" (from the reset) and "random" (stage 0 after
    RANDOM_STEPS random actions)."""
    rates = {}
    for name, stage, random_steps in [*((f"stage {s}", s, 0) for s in STAGES), ("random", 0, RANDOM_STEPS)]:
        env = PickEnv(stage=stage, preprocessing=FAST)
        results = [operator_episode(env, seed + i, random_steps) for i in range(episodes)]
        env.close()
        rates[name] = sum(r["success"] for r in results) / episodes
    return rates


def random_policy_rates(episodes: int, seed: int = 0) -> dict[str, float]:
    """Success of uniform random actions from each stage's reset (the episode rules of the task)."""
    rates = {}
    for stage in STAGES:
        env = PickEnv(stage=stage, preprocessing=FAST)
        env.action_space.seed(seed)
        successes = 0
        for i in range(episodes):
            env.reset(seed=seed + i)
            while True:
                _, _, terminated, truncated, info = env.step(env.action_space.sample())
                if terminated or truncated:
                    break
            successes += info["is_success"]
        env.close()
        rates[f"stage {stage}"] = successes / episodes
    return rates


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m so101_bench.operator_alone", description=__doc__.split("\n\n")[0])
    parser.add_argument("--episodes", type=positive_int, default=20, help="episodes per start")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--min-rate", type=float, default=0.9, help="goal: success rate of every start")
    args = parser.parse_args(argv)
    rates = success_rates(args.episodes, args.seed)
    for name, rate in rates.items():
        print(f"operator alone, {name}: {rate:.0%} of {args.episodes} episodes")
    for name, rate in random_policy_rates(args.episodes, args.seed).items():
        print(f"random policy (the floor), {name}: {rate:.0%} of {args.episodes} episodes")
    missed = [name for name, rate in rates.items() if rate < args.min_rate]
    print("goal met" if not missed else f"goal missed (< {args.min_rate:.0%}): {', '.join(missed)}")
    return 0 if not missed else 1


if __name__ == "__main__":
    sys.exit(main())
