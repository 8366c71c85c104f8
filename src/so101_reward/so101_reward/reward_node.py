"""reward_classifier: judges every wrist image with the reward classifier and publishes reward/signal.

    wrist_camera/image_raw (sensor data) --preprocess + network, in the callback--> reward/signal (reliable)

Each signal carries the classified image's header (stamp and frame_id), so the actor pairs it with exactly the image
it judged, plus the probability, the verdict at the threshold, the threshold and the model id.

The node refuses to start (fatal log naming the fix, exit code 2) when it cannot be right: no model, a model that
does not load, or a model trained with another image preprocessing than the actor's. A classifier fed frames cropped
differently from its training frames still outputs confident numbers; they are just wrong.

Work per frame is one 640x480 crop + resize and a small CNN on one torch thread (p50 about 5 ms, p99 about 10 ms on
a busy 2-core machine at 10 Hz; ``python -m so101_bench.reward_latency`` measures it); the callback runs it directly
in the single-threaded executor, so frames are judged in order and nothing is shared between threads. Processing
times and image ages on arrival are summarised in the log every ``stats_period_s`` and at shutdown.

    ros2 run so101_reward reward_node --ros-args -p model_path:=runs/reward/model
"""

from __future__ import annotations

import so101_contract.quiet_interrupt  # noqa: F401  (first: Ctrl-C during the heavy imports below is quiet)

# isort: split
import time
from collections import deque
from dataclasses import dataclass

import numpy as np
import torch
from rclpy.node import Node
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from so101_contract import qos
from so101_contract.node_main import EXIT_REFUSED, run_node
from so101_contract.parameters import declare_config
from so101_contract.settings import setting
from so101_contract.stamps import stamp_to_ns
from so101_driver.vision.image_messages import ImageConversionError, image_msg_to_array
from so101_driver.vision.preprocessing import ImagePreprocessing, PreprocessingError
from so101_hilserl_interfaces.msg import RewardSignal
from so101_reward.classifier import RewardClassifier
from so101_reward.model_config import RewardModelConfigError, check_same_preprocessing


def classify_image(classifier: RewardClassifier, msg: Image, threshold: float) -> RewardSignal:
    """One camera Image -> its RewardSignal (the node's whole per-frame logic, callable without a graph).

    Raises ImageConversionError or PreprocessingError for an image the model cannot judge (encoding, size).
    """
    image = image_msg_to_array(msg)
    if image.ndim != 3:
        raise ImageConversionError(f"image encoding {msg.encoding!r} has no colour; the classifier needs rgb8 or bgr8")
    probability = classifier.probability_of_image(image, msg.encoding)
    signal = RewardSignal()
    signal.header = Header(stamp=msg.header.stamp, frame_id=msg.header.frame_id)
    signal.probability = probability
    signal.success = bool(probability >= threshold)
    signal.threshold = threshold
    signal.model_id = classifier.model_id
    return signal


class ProcessingStats:
    """Per-frame processing times and image ages on arrival since the last summary, and the count since start.

    The age (node clock at the callback - image stamp) is the camera-to-node delay: transport and executor wake-up
    on one machine, plus any clock offset between machines. Processing is the callback's own work.
    """

    def __init__(self):
        # Bounded even with the summary switched off.
        self.processing_s: deque[float] = deque(maxlen=100_000)
        self.age_s: deque[float] = deque(maxlen=100_000)
        self.total_frames = 0

    def add(self, processing_s: float, age_s: float) -> None:
        self.processing_s.append(processing_s)
        self.age_s.append(age_s)
        self.total_frames += 1

    def summary(self, window: str) -> str:
        """One line for the log about the frames ``window`` ("in the last 30 s"); starts a new window."""
        processing, age = np.asarray(self.processing_s) * 1e3, np.asarray(self.age_s) * 1e3
        self.processing_s.clear()
        self.age_s.clear()
        if processing.size == 0:
            return f"no images {window} (total {self.total_frames}): is wrist_camera/image_raw publishing?"
        p50, p99 = np.percentile(processing, (50, 99))
        age50, age99 = np.percentile(age, (50, 99))
        return (
            f"{processing.size} frames {window} (total {self.total_frames}), processing "
            f"p50 {p50:.2f} ms, p99 {p99:.2f} ms, max {processing.max():.2f} ms; image age on arrival "
            f"p50 {age50:.2f} ms, p99 {age99:.2f} ms"
        )


OWN_THRESHOLD = -1.0  # the threshold parameter's value that means the model's own (model.json)


@dataclass(frozen=True)
class RewardNodeConfig:
    model_path: str = setting("", "reward model directory (model.safetensors + model.json); required")
    preprocessing: str = setting(
        "",
        "the ACTOR's image preprocessing as JSON of ImagePreprocessing fields ('' = project default); the node "
        "refuses a model trained with a different one",
    )
    threshold: float = setting(
        OWN_THRESHOLD, "success threshold on P(success) in (0, 1); -1 = the model's own", (-1.0, 1.0)
    )
    torch_threads: int = setting(1, "torch CPU threads for inference (1 keeps latency predictable)", (1, 256))
    stats_period_s: float = setting(30.0, "log a timing summary this often (s); 0 = only at shutdown", (0.0, 86400.0))


CONFIG = RewardNodeConfig


def refusal(config: RewardNodeConfig) -> str:
    """Why the node cannot start with these parameters, before any model is loaded ('' when it can)."""
    if config.threshold != OWN_THRESHOLD and not 0.0 < config.threshold < 1.0:
        return f"parameter threshold={config.threshold} must be in (0, 1), or -1 for the model's own"
    if not config.model_path:
        return (
            "parameter model_path is empty: pass the trained model directory, e.g. "
            "--ros-args -p model_path:=runs/reward/model (written by python -m so101_reward.train)"
        )
    return ""


class RewardNode(Node):
    def __init__(self):
        super().__init__("reward_classifier")
        self.config = c = declare_config(self, CONFIG)
        self.stats_period_s = c.stats_period_s
        if problem := refusal(c):  # checked before the model is loaded
            self._refuse(problem)
        try:
            actor_preprocessing = ImagePreprocessing.from_parameter(c.preprocessing)
        except PreprocessingError as err:
            self._refuse(
                f"{err}. Pass the actor's preprocessing as a JSON object of the ImagePreprocessing fields it changes, "
                "or '' for the project default"
            )
        torch.set_num_threads(max(1, int(c.torch_threads)))
        try:
            self.classifier = RewardClassifier.load(c.model_path)
        except RewardModelConfigError as err:  # RewardModelError included
            self._refuse(f"cannot load the reward model: {err}")
        try:
            check_same_preprocessing(self.classifier.config.preprocessing, actor_preprocessing)
        except RewardModelConfigError as err:
            self._refuse(f"refusing model {self.classifier.model_id}: {err}")
        self.threshold = float(self.classifier.threshold if c.threshold == OWN_THRESHOLD else c.threshold)

        self._warm_up()
        self.stats = ProcessingStats()
        self.signal_pub = self.create_publisher(RewardSignal, "reward/signal", qos.EVENTS)
        self.create_subscription(Image, "wrist_camera/image_raw", self._on_image, qos.SENSOR_DATA)
        if self.stats_period_s > 0:
            self.create_timer(self.stats_period_s, self._log_stats)
        self.get_logger().info(
            f"reward classifier {self.classifier.model_id} ({self.classifier.config.architecture}) up: threshold "
            f"{self.threshold:.3f}, {torch.get_num_threads()} torch thread(s)"
        )

    def _refuse(self, message: str) -> None:
        self.get_logger().fatal(message)
        raise SystemExit(EXIT_REFUSED)

    def _warm_up(self) -> None:
        """One forward pass before subscribing: torch's first call allocates and is slow, the first frame must not."""
        prep = self.classifier.config.preprocessing
        self.classifier.probability_of_image(np.zeros((prep.source_height, prep.source_width, 3), np.uint8))

    def _on_image(self, msg: Image) -> None:
        start = time.perf_counter()
        arrival_ns = self.get_clock().now().nanoseconds
        try:
            signal = classify_image(self.classifier, msg, self.threshold)
        except (ImageConversionError, PreprocessingError) as err:
            self.get_logger().error(f"image not classified: {err}", throttle_duration_sec=5.0)
            return
        self.signal_pub.publish(signal)
        stamp = msg.header.stamp
        self.stats.add(time.perf_counter() - start, (arrival_ns - stamp_to_ns(stamp)) * 1e-9)

    def _log_stats(self) -> None:
        self.get_logger().info(self.stats.summary(f"in the last {self.stats_period_s:g} s"))

    def destroy_node(self) -> None:
        """The frames since the last summary are logged too (so101_bench.reward_latency reads this line)."""
        stats = getattr(self, "stats", None)  # None when the constructor refused to start
        if stats is not None and stats.processing_s:
            self.get_logger().info(f"at shutdown: {stats.summary('since the last summary')}")
        super().destroy_node()


def main(args=None) -> None:
    run_node(RewardNode, args)


if __name__ == "__main__":
    main()
