"""The preview tool on each kind of source and output, and its refusals of bad input."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace

import cv2
import numpy as np
import pytest
import torch

from so101_driver.vision.preprocessing import DEFAULT_PREPROCESSING
from so101_reward.classifier import RewardClassifier
from so101_reward.dataset import RewardDataset
from so101_reward.model_config import RewardModelConfig
from so101_reward.preview import GREEN, RED, STRIP, VIEW, main

RAW_WIDTH = 448  # 640x480 shown at a height of VIEW


def camera_frames(count: int, seed: int = 0) -> list[np.ndarray]:
    """640x480 BGR frames: a coloured background and a coloured block that moves."""
    rng = np.random.default_rng(seed)
    frames = []
    for i in range(count):
        frame = np.full((480, 640, 3), rng.integers(0, 256, 3), np.uint8)
        frame[100:300, 40 * i : 40 * i + 200] = rng.integers(0, 256, 3)
        frames.append(frame)
    return frames


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """A saved model with seeded random weights, so frames get different probabilities."""
    torch.manual_seed(5)
    classifier = RewardClassifier(RewardModelConfig())
    with torch.no_grad():
        for parameter in classifier.net.parameters():
            parameter.normal_(0.0, 0.3)
    return classifier.save(tmp_path_factory.mktemp("preview_model") / "model")


def probabilities_of(model_dir, frames_bgr) -> np.ndarray:
    classifier = RewardClassifier.load(model_dir)
    return np.array([classifier.probability_of_image(f, "bgr8") for f in frames_bgr])


def split_threshold(probabilities) -> float:
    p = np.sort(probabilities)
    i = int(np.argmax(np.diff(p)))
    return float((p[i] + p[i + 1]) / 2)


def read_video(path) -> list[np.ndarray]:
    capture = cv2.VideoCapture(str(path))
    assert capture.isOpened(), f"cv2 cannot open {path}"
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    return frames


def bar_colour(image: np.ndarray) -> np.ndarray:
    """The colour just right of the bar's left end (always filled: probabilities here are far from 0)."""
    return image[VIEW + 45, 12].astype(int)


def test_dataset_to_video_with_labels_and_accuracy(tmp_path, model_dir, capsys):
    raw = camera_frames(7)
    frames = np.stack([DEFAULT_PREPROCESSING.apply(f, "bgr8") for f in raw])
    probabilities = probabilities_of(model_dir, raw)
    threshold = split_threshold(probabilities)
    labels = np.array([1, 0, 1, 1, 0, 0, 1], np.uint8)
    dataset = RewardDataset(frames, labels, np.zeros(7, np.int32), ["episode"], DEFAULT_PREPROCESSING)
    source = dataset.save(tmp_path / "val.npz")
    out = tmp_path / "preview.mp4"

    assert main([str(model_dir), str(source), "--out", str(out), "--threshold", str(threshold), "--fps", "5"]) == 0

    video = read_video(out)
    assert len(video) == 7
    assert video[0].shape == (VIEW + STRIP, VIEW, 3)  # a dataset has no raw frames: the preprocessed view only
    capture = cv2.VideoCapture(str(out))
    assert capture.get(cv2.CAP_PROP_FPS) == pytest.approx(5.0)
    capture.release()
    accuracy = np.mean((probabilities >= threshold) == labels.astype(bool))
    summary = capsys.readouterr().out.strip().splitlines()[-1]
    share = 100 * np.mean(probabilities >= threshold)
    assert f"7 frames, {share:.1f}% at or over threshold" in summary
    assert f"accuracy {100 * accuracy:.1f}%" in summary


def test_video_source_to_png_folder_with_max_frames(tmp_path, model_dir, capsys):
    raw = camera_frames(8)
    source = tmp_path / "episode.avi"
    writer = cv2.VideoWriter(str(source), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (640, 480))
    for frame in raw:
        writer.write(frame)
    writer.release()
    out = tmp_path / "pngs"

    assert main([str(model_dir), str(source), "--out", str(out), "--max-frames", "5"]) == 0

    pngs = sorted(out.glob("*.png"))
    assert len(pngs) == 5
    image = cv2.imread(str(pngs[0]))
    assert image.shape == (VIEW + STRIP, RAW_WIDTH + VIEW, 3)  # raw view beside the preprocessed view
    summary = capsys.readouterr().out
    assert "5 frames" in summary
    assert "accuracy" not in summary  # no labels in a video


def test_image_folder_bar_is_green_over_threshold_and_red_under(tmp_path, model_dir):
    raw = camera_frames(6, seed=1)
    source = tmp_path / "images"
    source.mkdir()
    for i, frame in enumerate(raw):
        cv2.imwrite(str(source / f"img_{i:02d}.png"), frame)
    probabilities = probabilities_of(model_dir, raw)
    threshold = split_threshold(probabilities)
    out = tmp_path / "pngs"

    assert main([str(model_dir), str(source), "--out", str(out), "--threshold", str(threshold), "--no-raw"]) == 0

    pngs = sorted(out.glob("*.png"))
    assert len(pngs) == 6
    for png, probability in zip(pngs, probabilities, strict=True):
        image = cv2.imread(str(png))
        assert image.shape == (VIEW + STRIP, VIEW, 3)
        expected = GREEN if probability >= threshold else RED
        assert tuple(bar_colour(image)) == expected, f"{png.name}: P={probability:.3f}, threshold {threshold:.3f}"


@pytest.mark.parametrize(
    "case, message",
    [
        ("missing", "no such file or folder"),
        ("not_video", "not a dataset (.npz), a readable video or a folder of images"),
        ("wrong_size", "frame is 320x240"),
        ("empty_folder", "no images"),
        ("bad_model", "no model.safetensors here"),
    ],
)
def test_bad_input_is_one_line_and_exit_code_2(tmp_path, model_dir, capsys, case, message):
    model, source = str(model_dir), tmp_path / "source"
    if case == "not_video":
        source = tmp_path / "notes.mp4"
        source.write_text("not a video\n")
    elif case == "wrong_size":
        source.mkdir()
        cv2.imwrite(str(source / "small.png"), np.zeros((240, 320, 3), np.uint8))
    elif case == "empty_folder":
        source.mkdir()
    elif case == "bad_model":
        model = str(tmp_path)
        source.mkdir()
    assert main([model, str(source), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("preview: error:") and message in err and "\n" not in err


def test_command_line_exit_code(tmp_path, model_dir):
    result = subprocess.run(
        [sys.executable, "-m", "so101_reward.preview", str(model_dir), str(tmp_path / "nothing"), "--out", "x.mp4"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "preview: error:" in result.stderr and "Traceback" not in result.stderr


def test_dataset_with_another_preprocessing_is_refused(tmp_path, model_dir, capsys):
    other = replace(DEFAULT_PREPROCESSING, crop_x=0)
    frames = np.zeros((2, 84, 84, 3), np.uint8)
    source = RewardDataset(frames, np.zeros(2), np.zeros(2), ["e"], other).save(tmp_path / "d.npz")
    assert main([str(model_dir), str(source), "--out", str(tmp_path / "out")]) == 2
    assert "crop_x: model 80 vs actor 0" in capsys.readouterr().err
