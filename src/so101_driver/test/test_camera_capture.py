"""Camera capture without ROS (hardware/camera): sources, the one-frame buffer, the watchdog, camera info.

Videos and images are written here with OpenCV; frame i of a test video has green = 10 + 10 i and red = 200 (blue
0), so a frame's index and the channel order can be read back from its pixels.
"""

from __future__ import annotations

import itertools
import math
import os
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from so101_driver.hardware.camera.camera_info import (
    DEFAULT_HORIZONTAL_FOV_DEG,
    CalibrationFileError,
    load_camera_calibration,
    pinhole_from_fov,
)
from so101_driver.hardware.camera.reader import CameraReader, Frame, LatestFrame
from so101_driver.hardware.camera.sources import (
    CaptureSettings,
    DeviceSource,
    EndOfSource,
    FrameSource,
    ImageFolderSource,
    SourceUnavailable,
    VideoFileSource,
    make_source_factory,
    source_kind,
)

TIMEOUT_S = 10.0


def frame_bgr(index: int, red: int = 200, size: tuple[int, int] = (640, 480)) -> np.ndarray:
    image = np.zeros((size[1], size[0], 3), np.uint8)
    image[..., 1] = 10 + 10 * index
    image[..., 2] = red
    return image


def write_video(path: Path, frames: int, fps: float = 30.0, red: int = 200) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (640, 480))
    assert writer.isOpened()
    for i in range(frames):
        writer.write(frame_bgr(i, red))
    writer.release()
    return path


def index_of(rgb: np.ndarray) -> int:
    return round((float(rgb[..., 1].mean()) - 10.0) / 10.0)


def wait_until(predicate, timeout_s: float, what: str):
    deadline = time.monotonic() + timeout_s
    while not (value := predicate()):
        assert time.monotonic() < deadline, f"timed out after {timeout_s} s waiting for {what}"
        time.sleep(0.01)
    return value


def take_frames(reader: CameraReader, count: int) -> list:
    frames = []
    for _ in range(count):
        frame = reader.latest.take(timeout_s=TIMEOUT_S)
        assert frame is not None, f"no frame from the reader: {reader.stats()}"
        frames.append(frame)
    return frames


def test_video_file_plays_at_the_configured_rate_in_order_looping_as_rgb(tmp_path):
    video = write_video(tmp_path / "clip.avi", frames=12, fps=10.0)  # the file says 10 fps; the camera asks 40
    reader = CameraReader(make_source_factory(str(video), CaptureSettings(fps=40.0)), clock=time.monotonic)
    with reader:
        frames = take_frames(reader, 60)
    stamps = np.array([f.stamp for f in frames])
    assert np.all(np.diff(stamps) > 0)
    seqs = np.array([f.seq for f in frames])
    rate = (seqs[-1] - seqs[0]) / (stamps[-1] - stamps[0])
    assert rate == pytest.approx(40.0, rel=0.1)
    consecutive = [(a, b) for a, b in itertools.pairwise(frames) if b.seq == a.seq + 1]
    assert len(consecutive) > 30
    for a, b in consecutive:  # the file's frames in order, 11 followed by 0 again
        assert index_of(b.image) == (index_of(a.image) + 1) % 12
    assert {index_of(f.image) for f in frames} == set(range(12))
    for frame in frames:
        assert frame.image.shape == (480, 640, 3) and frame.image.dtype == np.uint8
        assert frame.image[..., 0].mean() == pytest.approx(200, abs=4)  # red first: RGB
        assert frame.image[..., 2].mean() == pytest.approx(0, abs=4)
    stats = reader.stats()
    assert stats.achieved["fps"] == "40" and stats.achieved["file_fps"] == "10"
    assert stats.reconnects == 0 and stats.watchdog_timeouts == 0


def test_slow_consumer_gets_the_newest_frame_and_the_rest_are_counted_dropped(tmp_path):
    video = write_video(tmp_path / "clip.avi", frames=20)
    reader = CameraReader(make_source_factory(str(video), CaptureSettings(fps=50.0)), clock=time.monotonic)
    taken, ages = [], []
    with reader:
        take_frames(reader, 1)
        for _ in range(8):
            time.sleep(0.15)  # the consumer is 7x slower than the camera
            frame = reader.latest.take(timeout_s=TIMEOUT_S)
            ages.append(time.monotonic() - frame.monotonic_s)
            taken.append(frame)
    gaps = np.diff([f.seq for f in taken])
    assert np.all(gaps >= 4), gaps  # frames in between were skipped, not queued
    assert np.median(ages) < 0.06 and max(ages) < 0.15, ages  # never a backlog: at most about one period old
    stats = reader.stats()
    newest = reader.latest.peek()
    untaken = 1 if newest.seq > taken[-1].seq else 0
    assert stats.dropped == stats.frames - len(taken) - 1 - untaken  # every other frame was dropped and counted


def test_latest_frame_take_waits_only_for_a_frame_not_taken_before():
    slot = LatestFrame()
    assert slot.take(timeout_s=0.05) is None
    slot.put(Frame(np.zeros((1, 1, 3), np.uint8), stamp=1.0, seq=1, monotonic_s=0.0))
    assert slot.take(timeout_s=0.05).seq == 1
    assert slot.take(timeout_s=0.05) is None  # the same frame is never handed out twice
    later = threading.Timer(0.05, slot.put, [Frame(np.zeros((1, 1, 3), np.uint8), 2.0, 2, 0.0)])
    later.start()
    assert slot.take(timeout_s=2.0).seq == 2
    slot.put(Frame(np.zeros((1, 1, 3), np.uint8), 3.0, 3, 0.0))
    slot.put(Frame(np.zeros((1, 1, 3), np.uint8), 4.0, 4, 0.0))
    assert slot.take(timeout_s=0.05).seq == 4 and slot.dropped == 1


def test_image_folder_plays_in_natural_order_loops_and_ends_without_loop(tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    for i in (3, 10, 1, 2):  # written out of order; "10" sorts before "2" as text
        cv2.imwrite(str(folder / f"frame_{i}.png"), frame_bgr(i))
    (folder / "notes.txt").write_text("not an image")
    source = ImageFolderSource(folder, CaptureSettings(fps=200.0))
    source.open()
    order = []
    for _ in range(6):
        assert source.grab()
        order.append(index_of(cv2.cvtColor(source.retrieve(), cv2.COLOR_BGR2RGB)))
    assert order == [1, 2, 3, 10, 1, 2]

    reader = CameraReader(
        make_source_factory(str(folder), CaptureSettings(fps=20.0, loop=False)), clock=time.monotonic, timeout_s=0.5
    )
    with reader:
        wait_until(lambda: reader.stats().state == "ended", TIMEOUT_S, "the folder to end")
        time.sleep(0.7)  # longer than the watchdog timeout: an ended source is not reopened
        stats = reader.stats()
    assert stats.frames == 4 and stats.reconnects == 0 and stats.watchdog_timeouts == 0
    assert "4 images" in stats.last_error

    with pytest.raises(EndOfSource):
        source = ImageFolderSource(folder, CaptureSettings(fps=200.0, loop=False))
        source.open()
        for _ in range(5):
            source.grab()


def test_empty_or_missing_sources_are_refused_with_the_reason(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(SourceUnavailable, match="holds no images"):
        ImageFolderSource(tmp_path / "empty", CaptureSettings()).open()
    with pytest.raises(SourceUnavailable, match="does not exist"):
        VideoFileSource(tmp_path / "missing.avi", CaptureSettings()).open()
    (tmp_path / "junk.avi").write_bytes(b"no video in here")
    with pytest.raises(SourceUnavailable, match="cannot open"):
        VideoFileSource(tmp_path / "junk.avi", CaptureSettings()).open()
    with pytest.raises(SourceUnavailable, match="by-id"):
        DeviceSource(str(tmp_path / "usb-camera-video-index0"), CaptureSettings()).open()


def test_reader_reopens_a_video_that_disappears_returns_and_is_replaced(tmp_path):
    video = write_video(tmp_path / "clip.avi", frames=10)
    away = tmp_path / "away.avi"
    reader = CameraReader(
        make_source_factory(str(video), CaptureSettings(fps=30.0)),
        clock=time.monotonic,
        timeout_s=0.5,
        backoff_initial_s=0.1,
        backoff_max_s=0.4,
    )
    with reader:
        take_frames(reader, 5)
        os.rename(video, away)  # unplugged
        wait_until(lambda: reader.stats().losses == 1, 2.0, "the loss to be noticed")
        frames_when_lost = reader.stats().frames
        reader.latest.take(timeout_s=0.0)  # the last frame before the loss, if nobody took it
        time.sleep(1.0)
        stats = reader.stats()
        assert stats.frames == frames_when_lost  # nothing captured while away
        assert stats.state == "reconnecting" and "does not exist" in stats.last_error
        assert stats.open_failures >= 2  # retried with backoff while away

        os.rename(away, video)  # plugged in again
        returned = time.monotonic()
        frame = reader.latest.take(timeout_s=TIMEOUT_S)
        assert frame is not None and frame.monotonic_s > returned
        assert time.monotonic() - returned < 1.5
        stats = reader.stats()
        assert stats.reconnects == 1 and stats.state == "streaming"

        os.replace(write_video(tmp_path / "other.avi", frames=10, red=60), video)  # another file in its place
        wait_until(
            lambda: (f := reader.latest.take(timeout_s=0.1)) is not None and f.image[..., 0].mean() < 100,
            TIMEOUT_S,
            "frames of the replacing file",
        )
        assert reader.stats().reconnects == 2


class StallingCamera(FrameSource):
    """Stands in for a camera whose driver stalls: after ``good`` frames its grab hangs until released ("hang")
    or keeps returning nothing ("fail"). Every later instance (a reopened camera) streams normally."""

    def __init__(self, video: Path, mode: str, good: int, release: threading.Event):
        super().__init__()
        self.inner = VideoFileSource(video, CaptureSettings(fps=50.0))
        self.description = f"stalling camera ({mode})"
        self.mode, self.good, self.release = mode, good, release
        self.grabs = 0
        self.closed = threading.Event()

    def open(self):
        self.inner.open()

    def grab(self):
        self.grabs += 1
        if self.good is not None and self.grabs > self.good:
            if self.mode == "hang":
                self.release.wait()
            else:
                time.sleep(0.01)
                return False
        return self.inner.grab()

    def retrieve(self):
        return self.inner.retrieve()

    def close(self):
        self.inner.close()
        self.closed.set()


@pytest.mark.parametrize("mode", ["hang", "fail"])
def test_watchdog_reopens_a_camera_that_stops_delivering(tmp_path, mode):
    video = write_video(tmp_path / "clip.avi", frames=10)
    release = threading.Event()
    cameras: list[StallingCamera] = []

    def factory():
        cameras.append(StallingCamera(video, mode, good=5 if not cameras else None, release=release))
        return cameras[-1]

    reader = CameraReader(factory, clock=time.monotonic, timeout_s=0.4, backoff_initial_s=0.1)
    try:
        reader.start()
        take_frames(reader, 5)
        stalled = time.monotonic()
        wait_until(lambda: reader.stats().watchdog_timeouts == 1, 2.0, "the watchdog")
        assert time.monotonic() - stalled == pytest.approx(0.4, abs=0.3)
        frame = reader.latest.take(timeout_s=TIMEOUT_S)
        assert frame is not None and frame.monotonic_s > stalled + 0.4
        stats = reader.stats()
        assert len(cameras) == 2 and stats.reconnects == 1 and stats.state == "streaming"
        if mode == "fail":
            assert stats.grab_failures > 5
        release.set()  # the hung grab returns: the abandoned worker closes its camera
        assert cameras[0].closed.wait(2.0)
        assert not cameras[1].closed.is_set()
    finally:
        release.set()
        reader.stop()
    assert cameras[1].closed.is_set()


def test_device_settings_are_verified_and_refusals_name_the_achieved_values(tmp_path):
    # OpenCV's FFMPEG backend refuses every setting, like a camera without the asked mode: the wire is replaced,
    # the settings code is the real one.
    video = str(write_video(tmp_path / "clip.avi", frames=5, fps=30.0))
    refused = DeviceSource(video, CaptureSettings(320, 240, 60.0, "YUYV"), api_preference=cv2.CAP_FFMPEG)
    refused.open()
    try:
        assert refused.achieved == {"width": "640", "height": "480", "fps": "30", "fourcc": "MJPG"}
        (warning,) = refused.warnings
        for text in ("320x240 (gives 640x480)", "60 fps (gives 30 fps)", "FOURCC YUYV", "streams 640x480 MJPG"):
            assert text in warning
        assert refused.grab() and refused.retrieve().shape == (480, 640, 3)
    finally:
        refused.close()
    fine = DeviceSource(video, CaptureSettings(640, 480, 30.0, "MJPG"), api_preference=cv2.CAP_FFMPEG)
    fine.open()
    fine.close()
    assert fine.warnings == []


def test_source_kind_and_settings_validation(tmp_path):
    (tmp_path / "folder").mkdir()
    (tmp_path / "clip.mp4").write_bytes(b"")
    assert source_kind(0) == source_kind("2") == source_kind("/dev/v4l/by-id/usb-cam-video-index0") == "device"
    assert source_kind(str(tmp_path / "folder")) == "folder"
    assert source_kind(str(tmp_path / "clip.mp4")) == "video"
    assert source_kind(str(tmp_path / "not_yet.avi")) == "video"  # away at start-up, keeps its kind
    assert source_kind(str(tmp_path / "not_yet_folder")) == "folder"
    with pytest.raises(ValueError, match="empty"):
        source_kind(" ")
    with pytest.raises(ValueError, match="fourcc"):
        CaptureSettings(fourcc="MJPEG")
    with pytest.raises(ValueError, match="fps"):
        CaptureSettings(fps=-1.0)


CALIBRATION = """\
image_width: 640
image_height: 480
camera_name: wrist_camera
camera_matrix:
  rows: 3
  cols: 3
  data: [412.5, 0.0, 318.2, 0.0, 411.9, 242.7, 0.0, 0.0, 1.0]
distortion_model: plumb_bob
distortion_coefficients:
  rows: 1
  cols: 5
  data: [-0.31, 0.09, 0.001, -0.002, 0.0]
rectification_matrix:
  rows: 3
  cols: 3
  data: [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
projection_matrix:
  rows: 3
  cols: 4
  data: [300.1, 0.0, 320.4, 0.0, 0.0, 350.2, 241.0, 0.0, 0.0, 0.0, 1.0, 0.0]
"""


def test_calibration_yaml_is_read_field_by_field(tmp_path):
    path = tmp_path / "wrist.yaml"
    path.write_text(CALIBRATION)
    calibration = load_camera_calibration(path)
    assert (calibration.width, calibration.height, calibration.camera_name) == (640, 480, "wrist_camera")
    assert calibration.k == (412.5, 0.0, 318.2, 0.0, 411.9, 242.7, 0.0, 0.0, 1.0)
    assert calibration.distortion_model == "plumb_bob"
    assert calibration.d == (-0.31, 0.09, 0.001, -0.002, 0.0)
    assert calibration.r == (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)
    assert calibration.p[0] == 300.1 and calibration.p[5] == 350.2 and len(calibration.p) == 12
    assert calibration.path == str(path)


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        ("image_width: 640\n", "", "image_width"),
        ("image_height: 480", "image_height: -480", "image_height"),
        ("  rows: 3\n  cols: 3\n  data: [412.5", "  rows: 2\n  cols: 3\n  data: [412.5", "camera_matrix"),
        ("242.7, 0.0, 0.0, 1.0]", "242.7, 0.0, 0.0]", "camera_matrix.data"),
        ("[-0.31, 0.09, 0.001, -0.002, 0.0]", "[-0.31, 0.09, x, -0.002, 0.0]", "distortion_coefficients.data"),
        ("cols: 5\n  data: [-0.31, 0.09, 0.001, -0.002, 0.0]", "cols: 4\n  data: [-0.31, 0.09, 0.001, -0.002]", "4"),
        ("distortion_model: plumb_bob\n", "", "distortion_model"),
        ("data: [412.5", "data: [-412.5", "fx=-412.5"),
        ("projection_matrix:\n  rows: 3\n  cols: 4", "projection_matrix:\n  rows: 4\n  cols: 3", "projection_matrix"),
        ("rectification_matrix:", "rectification:", "rectification_matrix"),
    ],
)
def test_calibration_errors_name_the_file_and_the_field(tmp_path, old, new, field):
    assert old in CALIBRATION
    path = tmp_path / "broken.yaml"
    path.write_text(CALIBRATION.replace(old, new, 1))
    with pytest.raises(CalibrationFileError) as error:
        load_camera_calibration(path)
    assert str(path) in str(error.value) and field in str(error.value)


def test_calibration_file_errors_for_missing_and_unreadable_files(tmp_path):
    with pytest.raises(CalibrationFileError, match="does not exist.*cameracalibrator"):
        load_camera_calibration(tmp_path / "none.yaml")
    (tmp_path / "bad.yaml").write_text("image_width: [640\n")
    with pytest.raises(CalibrationFileError, match="not valid YAML"):
        load_camera_calibration(tmp_path / "bad.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(CalibrationFileError, match="mapping"):
        load_camera_calibration(tmp_path / "list.yaml")


def test_uncalibrated_pinhole_from_the_horizontal_field_of_view():
    fx, fy, cx, cy = pinhole_from_fov(640, 480, 90.0)
    assert (fx, fy, cx, cy) == pytest.approx((320.0, 320.0, 319.5, 239.5))
    # The default matches the simulation's wrist camera (MuJoCo fovy 70.5 deg, vertical) at 640x480.
    fx, fy, _, _ = pinhole_from_fov(640, 480, DEFAULT_HORIZONTAL_FOV_DEG)
    assert math.degrees(2 * math.atan(240.0 / fy)) == pytest.approx(70.5, abs=0.1)
    with pytest.raises(ValueError, match="horizontal_fov_deg"):
        pinhole_from_fov(640, 480, 180.0)
