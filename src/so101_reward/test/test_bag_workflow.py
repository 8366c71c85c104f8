"""The labelled-bag workflow end to end, as a user runs it on recorded sessions:

    bags of the wrist camera (written here with rosbags, MCAP, one per episode)
    + a label file of success frame ranges per episode
    -> python -m so101_reward.make_dataset bags labels.json --out data.npz
    -> python -m so101_reward.train data.npz --out model
    -> the model judges the frames of bags it was never trained on.

The frames are the simulation's wrist images, rendered at 160x120 to keep the bags small (the preprocessing names
that source size and crops 120x120 from it), and the ranges are the physics' ground truth written as a person would
write them: runs of success frames.
"""

import json
from pathlib import Path

import numpy as np
import pytest
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore

from so101_contract.control import CONTROL_PERIOD_S
from so101_driver.vision.preprocessing import ImagePreprocessing
from so101_reward.classifier import RewardClassifier
from so101_reward.make_dataset import main as make_dataset
from so101_reward.metrics import binary_metrics
from so101_reward.sim_dataset import DEFAULT_CYCLE, episode_seed, make_world, start_episode
from so101_reward.sources import from_labelled_bags
from so101_reward.train import main as train

TYPESTORE = get_typestore(Stores.ROS2_JAZZY)
Image = TYPESTORE.types["sensor_msgs/msg/Image"]
Header = TYPESTORE.types["std_msgs/msg/Header"]
Time = TYPESTORE.types["builtin_interfaces/msg/Time"]
TOPIC = "/wrist_camera/image_raw"
SMALL = ImagePreprocessing(crop_x=20, crop_y=0, crop_width=120, crop_height=120, source_width=160, source_height=120)
STEPS = 30


def record_raw_episode(world, scenario: str, seed: int) -> tuple[list[np.ndarray], np.ndarray]:
    hand = start_episode(world, scenario, seed)
    frames, labels = [], []
    for _ in range(STEPS):
        world.set_joint_targets(hand.command(world))
        world.step(CONTROL_PERIOD_S)
        frames.append(world.render_wrist())
        labels.append(world.grasp_success())
    return frames, np.array(labels, dtype=np.uint8)


def write_bag(path: Path, frames: list[np.ndarray]) -> None:
    with Writer(path, version=9, storage_plugin=StoragePlugin.MCAP) as writer:
        connection = writer.add_connection(TOPIC, "sensor_msgs/msg/Image", typestore=TYPESTORE)
        for i, rgb in enumerate(frames):
            stamp = Time(sec=1000 + i // 10, nanosec=(i % 10) * 100_000_000)
            height, width = rgb.shape[:2]
            msg = Image(
                header=Header(stamp=stamp, frame_id="wrist_camera_optical_frame"), height=height, width=width,
                encoding="rgb8", is_bigendian=0, step=3 * width, data=np.ascontiguousarray(rgb).reshape(-1),
            )  # fmt: skip
            writer.write(
                connection, 1_000_000_000 * stamp.sec + stamp.nanosec, TYPESTORE.serialize_cdr(msg, Image.__msgtype__)
            )


def success_ranges(labels: np.ndarray) -> list[list[int]]:
    """Runs of 1s as inclusive [start, end] frame ranges, the way a person marks them."""
    edges = np.diff(np.concatenate([[0], labels.astype(int), [0]]))
    return [[int(s), int(e) - 1] for s, e in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1), strict=True)]


def write_session(root: Path, episodes: int, seed: int) -> tuple[Path, np.ndarray]:
    world = make_world(SMALL, seed)
    entries, truth = [], []
    try:
        for i in range(episodes):
            scenario = DEFAULT_CYCLE[i % len(DEFAULT_CYCLE)]
            frames, labels = record_raw_episode(world, scenario, episode_seed(seed, i))
            name = f"episode_{i:03d}"
            write_bag(root / name, frames)
            entries.append({"bag": name, "success": success_ranges(labels)})
            truth.append(labels)
    finally:
        world.close()
    label_file = root / "labels.json"
    label_file.write_text(json.dumps({"topic": TOPIC, "episodes": entries}, indent=1))
    return label_file, np.concatenate(truth)


@pytest.fixture(scope="module")
def sessions(tmp_path_factory):
    train_root, test_root = tmp_path_factory.mktemp("train_bags"), tmp_path_factory.mktemp("test_bags")
    return write_session(train_root, 12, seed=3), write_session(test_root, 6, seed=70_000)


def test_labelled_bags_to_a_model_that_judges_unseen_bags(sessions, tmp_path):
    (train_labels, train_truth), (test_labels, test_truth) = sessions
    assert 0 < train_truth.sum() < len(train_truth) and 0 < test_truth.sum() < len(test_truth)
    preprocessing_file = tmp_path / "preprocessing.json"
    preprocessing_file.write_text(json.dumps(SMALL.to_dict()))
    data = tmp_path / "data.npz"
    args = ["bags", str(train_labels), "--out", str(data), "--preprocessing", str(preprocessing_file), "--no-progress"]
    assert make_dataset(args) == 0
    assert train([str(data), "--out", str(tmp_path / "model"), "--epochs", "25", "--no-progress"]) == 0

    classifier = RewardClassifier.load(tmp_path / "model")
    assert classifier.config.preprocessing == SMALL  # the model carries the bags' preprocessing to the node
    held_out = from_labelled_bags(test_labels, SMALL)
    np.testing.assert_array_equal(held_out.labels, test_truth)  # the label file said what the physics said
    metrics = binary_metrics(held_out.labels, classifier.probabilities(held_out.frames), classifier.threshold)
    assert metrics.f1 > 0.85, metrics
