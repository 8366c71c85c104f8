"""Memory and sampling speed of the replay buffer, next to the figures measured for LeRobot's buffer.

Fills a buffer with 100-step episodes of random uint8 frames, then reports bytes held per stored transition (every
array counted), its ratio to one raw frame + state + action, and how many batches (stacked obs, stacked next obs,
n-step targets) it samples per second, both into fresh arrays and into a reused output batch.

    python -m so101_bench.buffer --capacity 20000
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from so101_hilserl_learner.replay import ReplayBuffer, ReplayConfig

# LeRobot's buffer (float32 images, src/lerobot/rl/buffer.py), measured on this project's CPU machine for the same
# setting (84x84x3, stack 3, batch 256): bytes per stored transition and batches sampled per second.
LEROBOT_BYTES_PER_TRANSITION = 254_000
LEROBOT_BATCHES_PER_S = 14.0


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--capacity", type=int, default=20_000, help="buffer capacity in transitions")
    parser.add_argument("--transitions", type=int, default=None, help="transitions to add (default: capacity)")
    parser.add_argument("--episode-length", type=int, default=100, help="steps per episode")
    parser.add_argument("--frame-size", type=int, default=84, help="square frame side in pixels (3 channels)")
    parser.add_argument("--frame-stack", type=int, default=3)
    parser.add_argument("--nstep", type=int, default=ReplayConfig.nstep)
    parser.add_argument("--batch-size", type=int, default=ReplayConfig.batch_size)
    parser.add_argument("--batches", type=int, default=200, help="batches timed per sampling mode")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def fill(buf: ReplayBuffer, transitions: int, episode_length: int, seed: int) -> float:
    """Add ``transitions`` steps in episodes; returns seconds taken. Frames cycle through a pool of random ones."""
    rng = np.random.default_rng(seed)
    pool = rng.integers(0, 256, size=(64, *buf.frame_shape), dtype=np.uint8)
    states = rng.normal(size=(64, buf.state_dim)).astype(np.float32)
    actions = rng.uniform(-1, 1, size=(64, buf.action_dim)).astype(np.float32)
    start = time.perf_counter()
    added = 0
    while added < transitions:
        steps = min(episode_length, transitions - added)
        buf.begin_sequence()
        for t in range(steps):
            i = (added + t) % 64
            buf.add(pool[i], states[i], actions[i], float(t == steps - 1), intervention=(t // 20) % 2 == 1)
        i = (added + steps) % 64
        buf.end_sequence(pool[i], states[i], terminated=bool(rng.random() < 0.3))
        added += steps
    return time.perf_counter() - start


def batches_per_second(buf: ReplayBuffer, batch_size: int, batches: int, reuse: bool) -> float:
    out = buf.empty_batch(batch_size) if reuse else None
    buf.sample(batch_size, out=out)  # warm up
    start = time.perf_counter()
    for _ in range(batches):
        buf.sample(batch_size, out=out)
    return batches / (time.perf_counter() - start)


def main(argv=None) -> None:
    args = parse_args(argv)
    side = args.frame_size
    buf = ReplayBuffer(
        args.capacity, frame_shape=(side, side, 3), frame_stack=args.frame_stack, nstep=args.nstep, seed=args.seed
    )
    transitions = args.capacity if args.transitions is None else args.transitions
    fill_s = fill(buf, transitions, args.episode_length, args.seed)
    per_transition = buf.nbytes / len(buf)
    raw = side * side * 3 + buf.state_dim * 4 + buf.action_dim * 4
    fresh = batches_per_second(buf, args.batch_size, args.batches, reuse=False)
    reused = batches_per_second(buf, args.batch_size, args.batches, reuse=True)
    print(f"stored transitions       {len(buf)} (capacity {buf.capacity}, {buf.frame_capacity} frame slots)")
    print(f"fill rate                {transitions / fill_s:,.0f} transitions/s")
    print(f"bytes held               {buf.nbytes:,} ({buf.nbytes / 2**20:.1f} MiB)")
    print(
        f"bytes per transition     {per_transition:,.0f} ({per_transition / raw:.3f}x one frame+state+action = {raw:,})"
    )
    print(f"batches of {args.batch_size}/s (fresh)  {fresh:.1f}")
    print(f"batches of {args.batch_size}/s (reused) {reused:.1f}")
    print(
        f"vs LeRobot buffer        {LEROBOT_BYTES_PER_TRANSITION / per_transition:.1f}x less memory "
        f"({LEROBOT_BYTES_PER_TRANSITION:,} B/transition), {fresh / LEROBOT_BATCHES_PER_S:.1f}x faster sampling "
        f"({LEROBOT_BATCHES_PER_S:.0f} batches/s)"
    )


if __name__ == "__main__":
    main()
