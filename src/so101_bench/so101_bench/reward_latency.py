"""Latency of the reward node on this machine: camera image stamped -> reward/signal received.

The node runs as its own process, as in the graph; 640x480 rgb8 images are published at the camera rate and latency
is receive time - image stamp on this process's clock: what the actor waits for. The node's own processing times and
the back-to-back in-process compute are reported beside it, to tell transport from compute. The run is isolated
(localhost discovery, a private ROS domain); without --model an untrained default model (same compute) is used.

    python -m so101_bench.reward_latency --model runs/reward/model --frames 300 --rate 10
"""

from __future__ import annotations

import argparse
import os
import re
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from so101_contract.stamps import stamp_to_ns
from so101_reward.classifier import RewardClassifier
from so101_reward.model_config import RewardModelConfig

STARTUP_S = 60.0
NODE_SUMMARY = re.compile(
    r"at shutdown: (\d+) frames .*processing p50 ([\d.]+) ms, p99 ([\d.]+) ms.*"
    r"image age on arrival p50 ([-\d.]+) ms, p99 ([-\d.]+) ms"
)


def camera_frames(count: int = 8, seed: int = 0) -> list[np.ndarray]:
    """Distinct 640x480 frames: coloured blocks on noise (noise keeps INTER_AREA from taking shortcuts)."""
    rng = np.random.default_rng(seed)
    frames = []
    for _ in range(count):
        frame = rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)
        x, y = rng.integers(0, 400), rng.integers(0, 300)
        frame[y : y + 180, x : x + 240] = rng.integers(0, 256, 3)
        frames.append(frame)
    return frames


def percentiles_ms(samples_s) -> dict[str, float]:
    values = np.asarray(samples_s, dtype=float) * 1e3
    return {
        "p50": float(np.percentile(values, 50)),
        "p99": float(np.percentile(values, 99)),
        "max": float(values.max()),
    }


# Expect the node's figure above the back-to-back compute of measure_compute: at 10 Hz each frame meets cold caches
# and a CPU that has idled for 100 ms.
def measure_compute(model_dir: Path | str, frames: int = 300, warmup: int = 10) -> dict[str, float]:
    """probability_of_image (preprocess + network) per raw frame in this process with one torch thread."""
    classifier = RewardClassifier.load(model_dir)
    images = camera_frames()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        samples = []
        for i in range(warmup + frames):
            start = time.perf_counter()
            classifier.probability_of_image(images[i % len(images)])
            if i >= warmup:
                samples.append(time.perf_counter() - start)
    finally:
        torch.set_num_threads(threads)
    return percentiles_ms(samples)


def measure_node_latency(
    model_dir: Path | str | None = None,
    frames: int = 300,
    rate_hz: float = 10.0,
    log_dir: Path | str | None = None,
    domain_id: int | None = None,
    warmup_frames: int = 10,
) -> dict:
    """Run the reward node as a process, feed it ``frames`` images at ``rate_hz``, and measure.

    Returns frames_sent, frames_received, latency_ms {p50, p99, max} (stamp -> signal received); node_processing_ms
    {frames, p50, p99, arrival_age_p50, arrival_age_p99} from the node's shutdown log line (None if it logged none);
    compute_ms {p50, p99, max} in-process; domain_id; log_path (None unless ``log_dir`` was given). The node process
    is always stopped, whatever happens.
    """
    if frames <= 0 or rate_hz <= 0:
        raise ValueError(f"frames ({frames}) and rate_hz ({rate_hz}) must be positive")
    with tempfile.TemporaryDirectory(prefix="so101_reward_bench_") as tmp:
        if model_dir is None:
            model_dir = RewardClassifier(RewardModelConfig()).save(Path(tmp) / "untrained_default")
        keep_log = log_dir is not None
        log_dir = Path(log_dir) if keep_log else Path(tmp) / "logs"
        saved_env = {k: os.environ.get(k) for k in ("ROS_AUTOMATIC_DISCOVERY_RANGE", "ROS_DOMAIN_ID")}
        try:
            # This process's probe and the node process both read these when they create their DDS participants.
            os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
            if domain_id is not None:
                os.environ["ROS_DOMAIN_ID"] = str(domain_id)
            elif not os.environ.get("ROS_DOMAIN_ID"):
                from so101_testing.domain import claim_private_domain

                os.environ["ROS_DOMAIN_ID"] = str(claim_private_domain())
            result = _run_node_and_measure(Path(model_dir), frames, rate_hz, log_dir, warmup_frames)
            result["domain_id"] = int(os.environ["ROS_DOMAIN_ID"])
        finally:
            for key, value in saved_env.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
        result["compute_ms"] = measure_compute(model_dir, frames)
        if not keep_log:
            result["log_path"] = None  # deleted with the temporary directory
    return result


def _run_node_and_measure(model_dir: Path, frames: int, rate_hz: float, log_dir: Path, warmup_frames: int) -> dict:
    from sensor_msgs.msg import Image

    from so101_contract import qos
    from so101_driver.vision.image_messages import WRIST_CAMERA_FRAME, array_to_image_msg
    from so101_hilserl_interfaces.msg import RewardSignal
    from so101_testing.graph import GraphProbe, wait_until
    from so101_testing.processes import ProcessGroup

    images = camera_frames()
    messages = [array_to_image_msg(image, "rgb8", frame_id=WRIST_CAMERA_FRAME) for image in images]
    received: dict[int, int] = {}  # image stamp (ns) -> receive time (ns), both ROS system time of this process

    with ProcessGroup(log_dir) as group, GraphProbe("so101_reward_bench") as probe:
        node = group.start_module(
            "so101_reward.reward_node",
            "--ros-args",
            "-p",
            f"model_path:={model_dir}",
            "-p",
            "torch_threads:=1",
            "-p",
            "stats_period_s:=0.0",  # no periodic summary: the shutdown line then covers every frame
            name="reward_node",
        )
        clock = probe.node.get_clock()

        def on_signal(msg: RewardSignal) -> None:
            now = clock.now().nanoseconds
            received[stamp_to_ns(msg.header.stamp)] = now

        probe.node.create_subscription(RewardSignal, "reward/signal", on_signal, qos.EVENTS)
        publisher = probe.publisher(Image, "wrist_camera/image_raw", qos.SENSOR_DATA)

        def alive_or_raise() -> bool:
            if not node.alive():
                raise RuntimeError(f"the reward node exited (code {node.popen.returncode}):\n{node.output()[-2000:]}")
            return True

        wait_until(
            lambda: alive_or_raise() and publisher.get_subscription_count() > 0,
            STARTUP_S,
            "the reward node's image subscription",
        )
        probe.wait_for_publishers("reward/signal", timeout_s=STARTUP_S)

        def first_answer() -> bool:  # both directions matched: an image went in and its signal came back
            alive_or_raise()
            if received:
                return True
            # Stamped now, like every frame: the node's summary counts the image age on arrival of these too.
            publisher.publish(array_to_image_msg(images[0], "rgb8", clock.now().to_msg(), "warm_up"))
            return False

        wait_until(first_answer, STARTUP_S, "the first reward/signal", period_s=0.5)

        period_s = 1.0 / rate_hz
        sent: list[int] = []
        next_time = time.monotonic()
        for i in range(warmup_frames + frames):
            delay = next_time - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            next_time += period_s
            msg = messages[i % len(messages)]
            stamp = clock.now()
            msg.header.stamp = stamp.to_msg()
            publisher.publish(msg)
            if i >= warmup_frames:
                sent.append(stamp.nanoseconds)
            if i % 50 == 0:
                alive_or_raise()
        try:
            wait_until(lambda: all(s in received for s in sent[-5:]), 5.0, "the last signals")
        except AssertionError:
            pass  # lost frames are reported as frames_received < frames_sent
        node.stop()
        log = node.output()

    latencies_s = [(received[s] - s) * 1e-9 for s in sent if s in received]
    if not latencies_s:
        raise RuntimeError(f"no reward/signal came back for {len(sent)} images; node log:\n{log[-2000:]}")
    match = NODE_SUMMARY.search(log)
    processing = None
    if match:
        processing = {
            "frames": int(match.group(1)),
            "p50": float(match.group(2)),
            "p99": float(match.group(3)),
            "arrival_age_p50": float(match.group(4)),
            "arrival_age_p99": float(match.group(5)),
        }
    return {
        "frames_sent": len(sent),
        "frames_received": len(latencies_s),
        "rate_hz": rate_hz,
        "latency_ms": percentiles_ms(latencies_s),
        "node_processing_ms": processing,
        "log_path": str(node.log_path),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m so101_bench.reward_latency",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--model", type=Path, default=None, help="reward model directory (default: untrained default)")
    parser.add_argument("--frames", type=int, default=300, help="measured images (default 300: 30 s at 10 Hz)")
    parser.add_argument("--rate", type=float, default=10.0, help="image rate in Hz (default 10, the camera's)")
    parser.add_argument("--log-dir", type=Path, default=None, help="keep the node's log here (default: discarded)")
    parser.add_argument(
        "--domain-id", type=int, default=None, help="ROS domain (default: ROS_DOMAIN_ID or a private one)"
    )
    parser.add_argument("--budget-ms", type=float, default=15.0, help="p99 goal of the latency (default 15 ms)")
    args = parser.parse_args(argv)

    result = measure_node_latency(args.model, args.frames, args.rate, args.log_dir, args.domain_id)
    text, ok = format_latency(result, args.budget_ms)
    print(text)
    return 0 if ok else 1


def format_latency(result: dict, budget_ms: float = 15.0) -> tuple[str, bool]:
    """The benchmark's printed lines for a measure_node_latency result, and whether p99 meets ``budget_ms``."""
    lat, comp, proc = result["latency_ms"], result["compute_ms"], result["node_processing_ms"]
    ok = lat["p99"] <= budget_ms
    lines = [
        f"reward node latency (image stamp -> reward/signal received) over {result['frames_received']}/"
        f"{result['frames_sent']} frames at {result['rate_hz']:g} Hz: p50 {lat['p50']:.2f} ms, "
        f"p99 {lat['p99']:.2f} ms, max {lat['max']:.2f} ms ({'meets' if ok else 'MISSES'} the {budget_ms:g} ms goal)"
    ]
    if proc is not None:
        lines.append(
            f"in the node over {proc['frames']} frames: processing p50 {proc['p50']:.2f} ms, p99 {proc['p99']:.2f} ms; "
            f"image age on arrival p50 {proc['arrival_age_p50']:.2f} ms, p99 {proc['arrival_age_p99']:.2f} ms"
        )
    lines.append(f"in-process compute (1 torch thread): p50 {comp['p50']:.2f} ms, p99 {comp['p99']:.2f} ms")
    if result["log_path"]:
        lines.append(f"node log: {result['log_path']}")
    return "\n".join(lines), ok


if __name__ == "__main__":
    raise SystemExit(main())
