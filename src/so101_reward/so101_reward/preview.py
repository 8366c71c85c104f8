"""Preview a reward classifier on frames: what it sees, and what it says, frame by frame.

    python -m so101_reward.preview runs/reward/model data/reward/val.npz --out preview.mp4
    python -m so101_reward.preview runs/reward/model episode.mp4 --out preview/ --max-frames 200

Each output frame shows the preprocessed view the network sees (upscaled), the raw frame beside it when the source has
one, P(success) as text and as a bar (green at or over the threshold, red under it) and the label when it is known.
A one-line summary follows: frames, share at or over the threshold and, with labels, the accuracy at that threshold.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from so101_contract.cli import open_fraction, positive_float, positive_int
from so101_driver.vision.preprocessing import ImagePreprocessing
from so101_reward.classifier import RewardClassifier
from so101_reward.dataset import DatasetError, RewardDataset
from so101_reward.model_config import RewardModelConfigError, check_same_preprocessing

VIDEO_SUFFIXES = {".mp4": "mp4v", ".avi": "MJPG"}
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
VIEW = 336  # side of the upscaled preprocessed view (84 x 4), and the height of the raw view
STRIP = 64  # height of the text-and-bar strip under the views
GREEN, RED, WHITE, GREY = (40, 180, 40), (40, 40, 220), (255, 255, 255), (90, 90, 90)  # BGR


class PreviewError(ValueError):
    """Bad input: reported as one line, exit code 2."""


@dataclass
class Frame:
    preprocessed: np.ndarray  # S x S x 3 uint8 RGB, what the network sees
    raw: np.ndarray | None  # the camera frame, BGR, when the source has one
    label: int | None  # 1 success, 0 failure, None unknown
    name: str


# ---- sources ----------------------------------------------------------------------------------------------------
def open_source(source: Path, classifier: RewardClassifier) -> tuple[Iterator[Frame], int | None, bool]:
    """(frames, frame count if known, whether frames carry a raw view) for a dataset, video or image folder."""
    if not source.exists():
        raise PreviewError(f"{source}: no such file or folder")
    if source.is_dir():
        files = sorted(p for p in source.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise PreviewError(f"{source}: no images ({', '.join(IMAGE_SUFFIXES)}) in this folder")
        return _folder_frames(files, classifier), len(files), True
    if source.suffix == ".npz":
        try:
            dataset = RewardDataset.load(source)
        except DatasetError as err:
            raise PreviewError(str(err)) from err
        try:
            check_same_preprocessing(classifier.config.preprocessing, dataset.preprocessing)
        except RewardModelConfigError as err:
            raise PreviewError(f"{source}: dataset and model differ in preprocessing: {err}") from err
        return _dataset_frames(dataset), len(dataset), False
    capture = cv2.VideoCapture(str(source))
    if not capture.isOpened():
        capture.release()
        raise PreviewError(f"{source}: not a dataset (.npz), a readable video or a folder of images")
    count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    return _video_frames(capture, source, classifier), (count if count > 0 else None), True


def _dataset_frames(dataset: RewardDataset) -> Iterator[Frame]:
    for i in range(len(dataset)):
        name = f"{dataset.episode_names[dataset.episodes[i]]}#{i}"
        yield Frame(dataset.frames[i], None, int(dataset.labels[i]), name)


def _video_frames(capture, source: Path, classifier: RewardClassifier) -> Iterator[Frame]:
    try:
        index = 0
        while True:
            ok, bgr = capture.read()
            if not ok:
                if index == 0:
                    raise PreviewError(f"{source}: the video has no readable frames")
                return
            yield _camera_frame(bgr, classifier, f"{source.name}#{index}")
            index += 1
    finally:
        capture.release()


def _folder_frames(files: list[Path], classifier: RewardClassifier) -> Iterator[Frame]:
    for path in files:
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is None:
            raise PreviewError(f"{path}: not a readable image")
        yield _camera_frame(bgr, classifier, path.name)


def _camera_frame(bgr: np.ndarray, classifier: RewardClassifier, name: str) -> Frame:
    """A BGR frame from OpenCV: preprocessed by the model's preprocessing, or taken as is at the output size."""
    prep = classifier.config.preprocessing
    height, width = bgr.shape[:2]
    if (width, height) == (prep.output_size, prep.output_size):
        return Frame(np.ascontiguousarray(bgr[:, :, ::-1]), None, None, name)
    if (width, height) != (prep.source_width, prep.source_height):
        raise PreviewError(
            f"{name}: frame is {width}x{height}; the model takes {prep.source_width}x{prep.source_height} camera "
            f"frames (or {prep.output_size}x{prep.output_size} preprocessed ones)"
        )
    return Frame(prep.apply(bgr, "bgr8"), bgr, None, name)


# ---- drawing ----------------------------------------------------------------------------------------------------
def render(frame: Frame, probability: float, threshold: float, show_raw: bool, prep: ImagePreprocessing) -> np.ndarray:
    """One BGR preview image: [raw view with the crop box |] preprocessed view, and the verdict strip under them."""
    view = cv2.resize(frame.preprocessed[:, :, ::-1], (VIEW, VIEW), interpolation=cv2.INTER_NEAREST)
    if show_raw:
        scale = VIEW / prep.source_height
        raw_width = round(prep.source_width * scale)
        if frame.raw is not None:
            raw = cv2.resize(frame.raw, (raw_width, VIEW), interpolation=cv2.INTER_AREA)
            corner = (int(prep.crop_x * scale), int(prep.crop_y * scale))
            far = (int((prep.crop_x + prep.crop_width) * scale) - 1, int((prep.crop_y + prep.crop_height) * scale) - 1)
            cv2.rectangle(raw, corner, far, (0, 200, 255), 1)  # what the network sees of the frame
        else:
            raw = np.full((VIEW, raw_width, 3), 30, np.uint8)
        view = np.hstack([raw, view])
    width = view.shape[1]
    strip = np.zeros((STRIP, width, 3), np.uint8)
    success = probability >= threshold
    colour = GREEN if success else RED
    text = f"P(success) {probability:.3f}  thr {threshold:.2f}  {'SUCCESS' if success else 'failure'}"
    if frame.label is not None:
        verdict = "ok" if success == bool(frame.label) else "WRONG"
        text += f"  label {'success' if frame.label else 'failure'} ({verdict})"
    cv2.putText(strip, text, (8, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.5, WHITE, 1, cv2.LINE_AA)
    left, right, top, bottom = 8, width - 8, 34, 56
    cv2.rectangle(strip, (left, top), (right, bottom), GREY, 1)
    fill = left + round(probability * (right - left))
    if fill > left:
        cv2.rectangle(strip, (left, top), (fill, bottom), colour, -1)
    tick = left + round(threshold * (right - left))
    cv2.line(strip, (tick, top - 4), (tick, bottom + 4), WHITE, 2)
    cv2.putText(view, frame.name[-40:], (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.45, WHITE, 1, cv2.LINE_AA)
    return np.vstack([view, strip])


class Output:
    """A video file (.mp4/.avi) or a folder of numbered PNGs."""

    def __init__(self, path: Path, fps: float):
        self.path, self.fps = path, fps
        self.writer = None
        self.count = 0
        self.is_video = path.suffix.lower() in VIDEO_SUFFIXES
        if not self.is_video:
            if path.exists() and not path.is_dir():
                raise PreviewError(f"{path}: exists and is not a folder; PNGs need a folder, or end OUT in .mp4/.avi")
            path.mkdir(parents=True, exist_ok=True)
        elif not path.parent.is_dir():
            raise PreviewError(f"{path.parent}: no such folder for the video")

    def write(self, image: np.ndarray) -> None:
        if self.is_video:
            if self.writer is None:
                fourcc = cv2.VideoWriter_fourcc(*VIDEO_SUFFIXES[self.path.suffix.lower()])
                height, width = image.shape[:2]
                self.writer = cv2.VideoWriter(str(self.path), fourcc, self.fps, (width, height))
                if not self.writer.isOpened():
                    raise PreviewError(f"{self.path}: OpenCV cannot write this video here; try .avi or a PNG folder")
            self.writer.write(image)
        elif not cv2.imwrite(str(self.path / f"frame_{self.count:06d}.png"), image):
            raise PreviewError(f"{self.path}: cannot write PNGs here")
        self.count += 1

    def close(self) -> None:
        if self.writer is not None:
            self.writer.release()


# ---- the tool ---------------------------------------------------------------------------------------------------
def preview(
    model: Path,
    source: Path,
    out: Path,
    threshold: float | None = None,
    fps: float = 10.0,
    max_frames: int | None = None,
    show_raw: bool = True,
) -> dict:
    """Write the preview; returns the summary figures (frames, over_threshold share, accuracy or None)."""
    try:
        classifier = RewardClassifier.load(model)
    except RewardModelConfigError as err:
        raise PreviewError(str(err)) from err
    threshold = classifier.threshold if threshold is None else threshold
    if not 0.0 < threshold < 1.0:
        raise PreviewError(f"--threshold {threshold} must be in (0, 1)")
    if not fps > 0:  # nan too
        raise PreviewError(f"--fps {fps} must be positive")
    if max_frames is not None and max_frames <= 0:
        raise PreviewError(f"--max-frames {max_frames} must be positive")
    frames, total, has_raw = open_source(source, classifier)
    if max_frames is not None:
        total = max_frames if total is None else min(total, max_frames)
    output = Output(out, fps)
    over = correct = labelled = 0
    try:
        for frame in tqdm(frames, total=total, desc="preview", unit="frame", disable=None):
            probability = float(classifier.probabilities(frame.preprocessed[None])[0])
            output.write(render(frame, probability, threshold, show_raw and has_raw, classifier.config.preprocessing))
            over += probability >= threshold
            if frame.label is not None:
                labelled += 1
                correct += (probability >= threshold) == bool(frame.label)
            if max_frames is not None and output.count >= max_frames:
                break
    finally:
        output.close()
    count = output.count
    return {
        "frames": count,
        "threshold": threshold,
        "over_threshold": over / count if count else 0.0,
        "accuracy": correct / labelled if labelled else None,
        "out": str(out),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m so101_reward.preview", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("model", type=Path, help="reward model directory (model.safetensors + model.json)")
    parser.add_argument(
        "source",
        type=Path,
        help="dataset .npz (preprocessed frames with labels), video file (anything OpenCV reads), or folder of images "
        "(.png, .jpg, .jpeg, .bmp; sorted by name); raw camera frames go through the model's own preprocessing, "
        "frames already at its output size are taken as preprocessed",
    )
    parser.add_argument("--out", type=Path, required=True, help="OUT.mp4 / OUT.avi for a video, else a PNG folder")
    parser.add_argument(
        "--threshold", type=open_fraction, default=None, help="decision threshold (default: the model's)"
    )
    parser.add_argument(
        "--fps", type=positive_float, default=10.0, help="frame rate of a video OUT (default 10, the camera's)"
    )
    parser.add_argument("--max-frames", type=positive_int, default=None, help="stop after this many frames")
    parser.add_argument("--no-raw", action="store_true", help="show only the preprocessed view, not the raw frame")
    args = parser.parse_args(argv)
    try:
        result = preview(
            args.model, args.source, args.out, args.threshold, args.fps, args.max_frames, show_raw=not args.no_raw
        )
    except (PreviewError, OSError) as err:
        print(f"preview: error: {err}", file=sys.stderr)
        return 2
    line = (
        f"preview: {result['frames']} frames, {100 * result['over_threshold']:.1f}% at or over threshold "
        f"{result['threshold']:.2f}"
    )
    if result["accuracy"] is not None:
        line += f", accuracy {100 * result['accuracy']:.1f}% against the labels"
    print(f"{line}; written to {result['out']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
