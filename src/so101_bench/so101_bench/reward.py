"""Benchmark of the reward classifier: held-out F1 on simulated episodes, and the node's per-frame latency.

(a) Accuracy: the default small CNN trained on simulated episodes, tested on episodes of other seeds. Goal: F1 >= 0.95.
(b) Latency: the reward node as its own process, 640x480 images over DDS at the camera rate, receive time minus image
    stamp (transport, preprocessing, inference and the way back; see ``reward_latency``). Goal: p99 <= 15 ms.
Datasets are cached in --data-dir (recording takes about a minute); --fresh records them again.

    python -m so101_bench.reward --train-episodes 12 --test-episodes 6 --latency-frames 100   # a quick look
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from so101_contract.cpu_allocator import configure_cpu_allocator
from so101_reward.dataset import RewardDataset
from so101_reward.metrics import format_report
from so101_reward.train import TrainConfig, train

F1_GOAL = 0.95
LATENCY_P99_GOAL_MS = 15.0


def cached_sim_dataset(path: Path, episodes: int, steps: int, seed: int, fresh: bool) -> RewardDataset:
    from so101_reward.sim_dataset import record_sim_dataset

    if path.is_file() and not fresh:
        dataset = RewardDataset.load(path)
        if len(dataset) == episodes * steps:
            return dataset
    dataset = record_sim_dataset(episodes=episodes, steps_per_episode=steps, seed=seed)
    dataset.save(path)
    return dataset


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m so101_bench.reward",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--train-episodes", type=int, default=40, help="simulated training episodes (60 frames each)")
    parser.add_argument("--test-episodes", type=int, default=10, help="held-out simulated test episodes")
    parser.add_argument("--steps", type=int, default=60, help="frames per episode (10 Hz)")
    parser.add_argument("--epochs", type=int, default=TrainConfig.epochs)
    parser.add_argument("--latency-frames", type=int, default=300, help="images sent to the node (0 skips)")
    parser.add_argument("--data-dir", type=Path, default=Path("runs/bench_reward"), help="dataset cache")
    parser.add_argument("--fresh", action="store_true", help="record the datasets again")
    args = parser.parse_args(argv)
    configure_cpu_allocator()

    args.data_dir.mkdir(parents=True, exist_ok=True)
    train_set = cached_sim_dataset(args.data_dir / "train.npz", args.train_episodes, args.steps, 0, args.fresh)
    test_set = cached_sim_dataset(args.data_dir / "test.npz", args.test_episodes, args.steps, 100_000, args.fresh)
    print(f"training data: {train_set.summary()}\nheld-out test data: {test_set.summary()}")
    result = train(train_set, config=TrainConfig(epochs=args.epochs), test=test_set, out_dir=args.data_dir / "model")
    for name in ("validation", "test"):
        print(format_report(result.reports[name], name))
    test_f1 = result.reports["test"]["at_threshold"]["f1"]
    ok = test_f1 >= F1_GOAL
    print(
        f"\nheld-out test F1 {test_f1:.4f} at threshold {result.classifier.threshold:.2f} (goal >= {F1_GOAL}) "
        f"{'OK' if ok else 'BELOW GOAL'}; trained {result.seconds:.0f} s, best epoch {result.best_epoch}"
    )

    if args.latency_frames > 0:
        from so101_bench.reward_latency import format_latency, measure_node_latency

        latency = measure_node_latency(args.data_dir / "model", frames=args.latency_frames)
        text, ok_latency = format_latency(latency, LATENCY_P99_GOAL_MS)
        print(text)
        ok &= ok_latency
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
