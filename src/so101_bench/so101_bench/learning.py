"""The longer learning benchmark: DrQ-v2 (this package's agent and replay buffer) on the dot-to-target pixel task.

An explicit CleanRL-style loop: env step with agent.act -> ReplayBuffer -> ``utd_ratio`` agent.update per env step, and
greedy evaluation episodes every ``eval_every`` episodes. It prints the training success rate over the last
``--window`` episodes as it goes and a summary at the end.

    python -m so101_bench.learning --episodes 250
"""

from __future__ import annotations

import argparse
import time
from collections import deque
from dataclasses import dataclass, field

import numpy as np
import torch

from so101_bench.pixel_task import PixelReachEnv, PixelTaskConfig, random_policy_success
from so101_contract.cpu_allocator import configure_cpu_allocator
from so101_contract.devices import DEFAULT_DEVICE, DEVICES, device_name
from so101_hilserl_core.observation import FrameStack
from so101_hilserl_core.policy import PolicyConfig
from so101_hilserl_learner.agent import AgentConfig, DrQV2Agent
from so101_hilserl_learner.replay import ReplayBuffer, ReplayConfig


@dataclass(frozen=True)
class TrainConfig:
    episodes: int = 250
    batch_size: int = 64
    utd_ratio: int = 1  # agent updates per environment step
    warmup_transitions: int = 300  # environment steps before the first update
    # Uniform random actions before this step. Not the actor's default: this small pixel task (30-step episodes)
    # learns within a few thousand steps, so its random phase is as short as its warmup_transitions.
    num_explore_steps: int = 300
    stddev_schedule: str = "linear(1.0,0.1,2000)"
    lr: float = 3e-4
    hidden: tuple[int, ...] = PolicyConfig.hidden
    nstep: int = ReplayConfig.nstep
    discount: float = ReplayConfig.discount
    capacity: int = ReplayConfig.online_capacity
    window: int = 25  # success rate over this many last training episodes
    eval_every: int = 50  # episodes; 0 = no evaluation
    eval_episodes: int = 10
    seed: int = 0
    device: str = "cpu"
    task: PixelTaskConfig = field(default_factory=PixelTaskConfig)


@dataclass
class TrainResult:
    successes: list[bool]  # per training episode
    eval_success: list[tuple[int, float]]  # (episode, success rate)
    env_steps: int
    updates: int
    seconds: float

    def success_rate(self, last: int) -> float:
        tail = self.successes[-last:]
        return float(np.mean(tail)) if tail else 0.0


def make_agent(cfg: TrainConfig) -> DrQV2Agent:
    policy_config = PolicyConfig(
        image_size=cfg.task.image_size, state_dim=0, action_dim=PixelReachEnv.action_dim, hidden=cfg.hidden
    )
    agent_config = AgentConfig(
        lr=cfg.lr, stddev_schedule=cfg.stddev_schedule, num_explore_steps=cfg.num_explore_steps, seed=cfg.seed
    )
    return DrQV2Agent(policy_config, agent_config, device=cfg.device)


def run_episode(env, agent, stack, seed, step, eval_mode, buffer=None, on_step=None) -> tuple[bool, int]:
    """One episode; stores it in ``buffer`` when given; calls ``on_step(step)`` after each env step.
    Returns (success, steps taken)."""
    no_state = np.zeros(0, np.float32)
    frame = env.reset(seed)
    stack.reset(frame)
    pixels = stack.pixels()
    if buffer is not None:
        buffer.begin_sequence()
    for t in range(env.config.episode_length):
        action = agent.act(pixels, no_state, step + t, eval_mode=eval_mode)
        next_frame, reward, terminated, truncated = env.step(action)
        if buffer is not None:
            buffer.add(frame, no_state, action, reward, intervention=False)
        stack.push(next_frame)
        frame, pixels = next_frame, stack.pixels()
        if on_step is not None:
            on_step(step + t + 1)
        if terminated or truncated:
            break
    if buffer is not None:
        buffer.end_sequence(frame, no_state, terminated=terminated)
    return terminated, t + 1


def train(cfg: TrainConfig, progress: bool = True) -> TrainResult:
    agent = make_agent(cfg)
    network = agent.policy_config
    env, eval_env = PixelReachEnv(cfg.task), PixelReachEnv(cfg.task)
    size = network.image_size
    stack = FrameStack(network.frame_stack, (size, size, network.image_channels), state_dim=network.state_dim)
    buffer = ReplayBuffer.for_policy(network, cfg.capacity, nstep=cfg.nstep, discount=cfg.discount, seed=cfg.seed)
    batch = buffer.empty_batch(cfg.batch_size)
    result = TrainResult([], [], 0, 0, 0.0)
    start = time.perf_counter()

    def learn(step: int) -> None:
        if step < cfg.warmup_transitions or len(buffer) < cfg.batch_size:
            return
        for _ in range(cfg.utd_ratio):
            agent.update(buffer.sample(cfg.batch_size, out=batch), step)
            result.updates += 1

    bar = _progress(cfg.episodes, progress)
    recent: deque[bool] = deque(maxlen=cfg.window)
    for episode in range(cfg.episodes):
        success, steps = run_episode(env, agent, stack, cfg.seed * 1_000_003 + episode, result.env_steps, False,
                                     buffer, learn)  # fmt: skip
        result.env_steps += steps
        result.successes.append(success)
        recent.append(success)
        if cfg.eval_every and (episode + 1) % cfg.eval_every == 0:
            wins = sum(
                run_episode(eval_env, agent, stack, 10**9 + cfg.seed * 10_007 + i, result.env_steps, True)[0]
                for i in range(cfg.eval_episodes)
            )
            result.eval_success.append((episode + 1, wins / cfg.eval_episodes))
        bar.set_postfix_str(f"success(last {len(recent)}) {np.mean(recent):.0%} steps {result.env_steps}")
        bar.update(1)
    bar.close()
    result.seconds = time.perf_counter() - start
    return result


def _progress(total: int, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, unit="ep", disable=not enabled, mininterval=1.0)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    defaults = TrainConfig()
    parser.add_argument("--episodes", type=int, default=defaults.episodes)
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument("--utd-ratio", type=int, default=defaults.utd_ratio, help="updates per environment step")
    parser.add_argument("--lr", type=float, default=defaults.lr)
    parser.add_argument("--stddev-schedule", default=defaults.stddev_schedule)
    parser.add_argument("--window", type=int, default=defaults.window, help="episodes in the success-rate window")
    parser.add_argument("--image-size", type=int, default=defaults.task.image_size)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--device", choices=DEVICES, default=DEFAULT_DEVICE)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    configure_cpu_allocator()
    device = device_name(args.device)
    cfg = TrainConfig(
        episodes=args.episodes,
        batch_size=args.batch_size,
        utd_ratio=args.utd_ratio,
        lr=args.lr,
        stddev_schedule=args.stddev_schedule,
        window=args.window,
        seed=args.seed,
        device=device,
        task=PixelTaskConfig(image_size=args.image_size),
    )
    baseline = random_policy_success(cfg.task, 500, cfg.seed + 1)
    print(f"pixel task {cfg.task.image_size}x{cfg.task.image_size}, random policy success {baseline:.1%} (500 ep)")
    result = train(cfg)
    for end in range(cfg.window, cfg.episodes + 1, cfg.window):
        window = result.successes[end - cfg.window : end]
        print(f"episodes {end - cfg.window + 1:4d}-{end:4d}: success {np.mean(window):.0%}")
    for episode, rate in result.eval_success:
        print(f"eval after episode {episode}: greedy success {rate:.0%}")
    print(
        f"last {cfg.window} episodes: {result.success_rate(cfg.window):.0%} success; {result.env_steps} env steps, "
        f"{result.updates} updates, {result.seconds:.0f} s on {device}"
    )


if __name__ == "__main__":
    main()
