"""The reward node: its per-frame logic without a graph, then the node as a real process on a private ROS domain.

The model is a saved RewardClassifier whose weights are drawn with a fixed seed (wide enough that different images
get visibly different probabilities), so "the node publishes the classifier's probability" cannot pass by accident.
"""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np
import pytest
import torch
from builtin_interfaces.msg import Time
from sensor_msgs.msg import Image

from so101_contract import qos, settings
from so101_driver.vision.image_messages import ImageConversionError, array_to_image_msg
from so101_driver.vision.preprocessing import PreprocessingError
from so101_hilserl_interfaces.msg import RewardSignal
from so101_reward.classifier import RewardClassifier
from so101_reward.model_config import RewardModelConfig
from so101_reward.reward_node import RewardNodeConfig, classify_image, refusal
from so101_testing.graph import wait_until

STARTUP_S = 60.0  # torch + rclpy import and first discovery on a loaded 2-core machine
WAIT_S = 10.0
ENCODINGS = ("rgb8", "rgb8", "rgb8", "rgb8", "bgr8")  # the last image is bgr8: the node must honour the encoding


def synthetic_frames(count: int, seed: int = 0) -> list[np.ndarray]:
    """640x480 frames: a coloured background, a coloured block somewhere, noise."""
    rng = np.random.default_rng(seed)
    frames = []
    for _ in range(count):
        frame = np.full((480, 640, 3), rng.integers(0, 256, 3), np.int16)
        x, y = rng.integers(0, 400), rng.integers(0, 300)
        frame[y : y + 180, x : x + 240] = rng.integers(0, 256, 3)
        frame += rng.integers(-20, 21, frame.shape, dtype=np.int16)
        frames.append(np.clip(frame, 0, 255).astype(np.uint8))
    return frames


def as_sent(frame: np.ndarray, encoding: str) -> np.ndarray:
    """The pixel array of the camera message: the same scene in the message's channel order."""
    return np.ascontiguousarray(frame[:, :, ::-1]) if encoding == "bgr8" else frame


def threshold_between(probabilities) -> float:
    """A threshold halfway across the widest gap between the probabilities: some frames each side, none near it."""
    p = np.sort(np.asarray(probabilities, dtype=float))
    i = int(np.argmax(np.diff(p)))
    return float((p[i] + p[i + 1]) / 2)


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """(model directory, frames, expected probabilities, the model's threshold)."""
    torch.manual_seed(3)
    classifier = RewardClassifier(RewardModelConfig())
    with torch.no_grad():
        for parameter in classifier.net.parameters():
            parameter.normal_(0.0, 0.3)
    frames = synthetic_frames(len(ENCODINGS))
    probabilities = [classifier.probability_of_image(as_sent(f, e), e) for f, e in zip(frames, ENCODINGS, strict=True)]
    assert np.ptp(probabilities) > 0.02, f"the randomised model is too flat to test with: {probabilities}"
    # The model's own threshold is not the default 0.7, so a node ignoring model.json would be caught.
    config = replace(classifier.config, threshold=threshold_between(probabilities))
    directory = RewardClassifier(config, classifier.net).save(tmp_path_factory.mktemp("reward_model") / "model")
    loaded = RewardClassifier.load(directory)
    expected = [loaded.probability_of_image(as_sent(f, e), e) for f, e in zip(frames, ENCODINGS, strict=True)]
    return directory, frames, expected, config.threshold


def image_message(frame: np.ndarray, index: int, encoding: str) -> Image:
    stamp = Time(sec=1000 + index, nanosec=123_456_789 + index)
    return array_to_image_msg(as_sent(frame, encoding), encoding, stamp, f"cam_{index}")


# ---- the per-frame logic, no graph ----------------------------------------------------------------------------------
def test_parameters_that_cannot_work_are_refused_before_any_model_is_loaded():
    assert settings.table(RewardNodeConfig)["threshold"][2] == (-1.0, 1.0)  # ROS refuses values outside
    config = RewardNodeConfig(model_path="runs/reward/model")
    assert refusal(config) == "" and refusal(replace(config, threshold=0.5)) == ""
    assert "threshold=0.0 must be in (0, 1)" in refusal(replace(config, threshold=0.0))  # in ROS's range, not usable
    assert "threshold=-0.5 must be in (0, 1), or -1" in refusal(replace(config, threshold=-0.5))
    assert "model_path is empty" in refusal(RewardNodeConfig())


def test_classify_image_copies_header_and_applies_threshold(model):
    directory, frames, expected, _ = model
    classifier = RewardClassifier.load(directory)
    for i, encoding in enumerate(ENCODINGS):
        msg = image_message(frames[i], i, encoding)
        for threshold in (0.01, 0.99):
            signal = classify_image(classifier, msg, threshold)
            assert (signal.header.stamp.sec, signal.header.stamp.nanosec) == (1000 + i, 123_456_789 + i)
            assert signal.header.frame_id == f"cam_{i}"
            assert signal.probability == pytest.approx(expected[i], abs=1e-6)
            assert signal.success is (expected[i] >= threshold)
            assert signal.threshold == pytest.approx(threshold)
            assert signal.model_id == classifier.model_id
    mono = array_to_image_msg(frames[0][:, :, 0], "mono8")
    with pytest.raises(ImageConversionError, match="mono8"):
        classify_image(classifier, mono, 0.5)
    small = array_to_image_msg(frames[0][:240, :320], "rgb8")
    with pytest.raises(PreprocessingError, match="320x240"):
        classify_image(classifier, small, 0.5)


# ---- the node in a graph ------------------------------------------------------------------------------------------
def start_node(processes, directory, *params: str, name: str = "reward"):
    args = ["--ros-args", "-p", f"model_path:={directory}"]
    for param in params:
        args += ["-p", param]
    return processes.start_module("so101_reward.reward_node", *args, name=name)


def connect(probe, node):
    """Image publisher and signal recorder, matched with the node both ways: a warm-up image (stamp 0) is sent until
    its signal comes back, so no measured image is lost to discovery."""
    images = probe.publisher(Image, "wrist_camera/image_raw", qos.SENSOR_DATA)
    signals = probe.subscribe(RewardSignal, "reward/signal", qos.EVENTS)
    probe.wait_for_subscribers(images, timeout_s=STARTUP_S)
    probe.wait_for_publishers("reward/signal", timeout_s=STARTUP_S)
    warm_up = array_to_image_msg(np.zeros((480, 640, 3), np.uint8), "rgb8", Time(), "warm_up")

    def answered() -> bool:
        assert node.alive(), "the reward node exited"
        if len(signals):
            return True
        images.publish(warm_up)
        return False

    wait_until(answered, STARTUP_S, "the node's first reward/signal", period_s=0.5)
    return images, signals


def send_and_collect(images, signals, node, frames) -> list[RewardSignal]:
    """Publish each image, waiting for its signal before the next; return the signals of these images only."""
    first = len(signals)
    for i, encoding in enumerate(ENCODINGS):
        images.publish(image_message(frames[i], i, encoding))
        signals.wait_for(first + i + 1, WAIT_S, f"the signal of image {i}")
    time.sleep(0.5)  # a duplicate signal would arrive in this time
    return [s for s in signals.messages if s.header.frame_id != "warm_up"]


def test_node_publishes_one_signal_per_image_with_its_stamp(processes, probe, model):
    directory, frames, expected, model_threshold = model
    node = start_node(processes, directory)
    images, signals = connect(probe, node)
    received = send_and_collect(images, signals, node, frames)
    assert len(received) == len(ENCODINGS)
    model_id = RewardClassifier.load(directory).model_id
    for i, signal in enumerate(received):
        assert (signal.header.stamp.sec, signal.header.stamp.nanosec) == (1000 + i, 123_456_789 + i)
        assert signal.header.frame_id == f"cam_{i}"
        assert signal.probability == pytest.approx(expected[i], abs=1e-5)
        assert signal.threshold == pytest.approx(model_threshold, abs=1e-6)
        assert signal.success is (expected[i] >= model_threshold)
        assert signal.model_id == model_id
    assert {s.success for s in received} == {True, False}  # the threshold really splits this set


def test_threshold_override_and_stats_log(processes, probe, model):
    directory, frames, expected, model_threshold = model
    # A threshold that judges differently from the model's: above every probability, so all frames fail.
    threshold = min(0.999, max(expected) + 0.01)
    assert any(p >= model_threshold for p in expected)
    node = start_node(processes, directory, f"threshold:={threshold}", "stats_period_s:=1.0")
    images, signals = connect(probe, node)
    received = send_and_collect(images, signals, node, frames)
    assert len(received) == len(ENCODINGS)
    assert all(s.threshold == pytest.approx(threshold, abs=1e-6) for s in received)
    assert not any(s.success for s in received)
    wait_until(lambda: "frames in the last" in node.output(), WAIT_S, "the processing-time summary in the log")
    assert "p99" in node.output()


def wait_for_exit(node) -> int:
    wait_until(lambda: not node.alive(), STARTUP_S, "the reward node to exit")
    return node.popen.returncode


def test_refuses_a_model_with_another_preprocessing(processes, model):
    directory = model[0]
    node = start_node(processes, directory, """preprocessing:='{"crop_x": 40}'""")
    assert wait_for_exit(node) == 2
    log = node.output()
    assert "FATAL" in log and "crop_x: model 80 vs actor 40" in log
    assert "crop_y" not in log  # only the differing field is named


def test_refuses_to_start_without_a_model_path(processes):
    node = processes.start_module("so101_reward.reward_node", name="reward_no_model")
    assert wait_for_exit(node) == 2
    log = node.output()
    assert "model_path is empty" in log and "-p model_path:=" in log
