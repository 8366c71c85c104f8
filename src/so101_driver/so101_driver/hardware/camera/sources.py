"""Wrist camera frame sources without ROS: a UVC/V4L2 device (resolution, fps and MJPG applied and verified), a video
file and an image folder, and the factory that picks one from the node's ``source`` parameter.

A source is used by one thread only (open, then grab/retrieve in a loop, then close): the ``reader`` thread. Video
files and image folders play at the configured rate, looping by default like a camera that never ends, so the node
runs (and is tested) without hardware; a file renamed away and back behaves like a camera unplugged and plugged in.
"""

from __future__ import annotations

import math
import os
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from so101_contract.settings import setting

IMAGE_SUFFIXES = (".bmp", ".jpeg", ".jpg", ".pgm", ".png", ".ppm", ".tif", ".tiff", ".webp")


class SourceUnavailable(RuntimeError):
    """The source cannot be opened now (missing, busy, not a camera); the reader retries with backoff."""


class SourceLost(RuntimeError):
    """The source went away while streaming (unplugged, file removed or replaced); the reader reopens it."""


class EndOfSource(Exception):
    """A video file or image folder reached its end and ``loop`` is off: the reader stops, nothing is reopened."""


@dataclass(frozen=True)
class CaptureSettings:
    """What the camera is asked for. ``fps`` also paces files and folders; 0 means the camera's or file's own rate.
    ``fourcc`` '' leaves the camera's pixel format alone; MJPG is what makes 640x480 at 30 fps fit USB 2.0."""

    width: int = setting(640, "image width asked of the camera (px)", (16, 8192))
    height: int = setting(480, "image height asked of the camera (px)", (16, 8192))
    fps: float = setting(30.0, "frame rate asked of the camera, and the playback rate of files (Hz)", (0.1, 1000.0))
    fourcc: str = setting("MJPG", "pixel format asked of the camera; MJPG fits 640x480@30 in USB 2")
    loop: bool = setting(True, "play video files and image folders again from the start at their end")

    def __post_init__(self):
        if self.width <= 0 or self.height <= 0:
            raise ValueError(f"capture size must be positive, got width={self.width} height={self.height}")
        if not math.isfinite(self.fps) or self.fps < 0:
            raise ValueError(f"capture fps must be >= 0 (0 = the source's own rate), got {self.fps}")
        if self.fourcc and len(self.fourcc) != 4:
            raise ValueError(
                f"fourcc must be 4 characters such as 'MJPG' or 'YUYV' ('' = default), got {self.fourcc!r}"
            )


class FrameSource:
    """One opened capture. Used by one thread only: open, then grab/retrieve in a loop, then close.

    ``grab`` captures a frame (blocking until one is due) and returns False when none came this time; ``retrieve``
    decodes the grabbed frame to a BGR (or grey) uint8 array, or None if it cannot be decoded. The split lets the
    reader stamp a frame between the two, before the decoding cost.
    """

    description = "source"

    def __init__(self):
        self.achieved: dict[str, str] = {}  # what the source really delivers, for diagnostics
        self.warnings: list[str] = []  # settings the source refused, with the values it gives instead

    def open(self) -> None:
        raise NotImplementedError

    def grab(self) -> bool:
        raise NotImplementedError

    def retrieve(self) -> np.ndarray | None:
        raise NotImplementedError

    def close(self) -> None:
        pass


class _Pacer:
    """Sleeps until the next frame is due at ``fps``; after falling behind it restarts the schedule (no burst)."""

    def __init__(self, fps: float):
        self.period_s = 1.0 / fps
        self._next: float | None = None

    def wait(self) -> None:
        now = time.monotonic()
        if self._next is None or now - self._next > self.period_s:
            self._next = now
        elif self._next > now:
            time.sleep(self._next - now)
        self._next += self.period_s


def fourcc_text(code: float | int) -> str:
    """OpenCV's FOURCC number -> its four characters ('' when the backend reports none)."""
    value = int(code)
    if value <= 0:
        return ""
    return "".join(chr((value >> (8 * i)) & 0xFF) for i in range(4)).strip("\x00")


class _OpenCvSource(FrameSource):
    """A source read through one cv2.VideoCapture (a camera or a video file): retrieve and close are the capture's."""

    def __init__(self):
        super().__init__()
        self._cap: cv2.VideoCapture | None = None

    def retrieve(self) -> np.ndarray | None:
        ok, image = self._cap.retrieve()
        return image if ok else None

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None


class DeviceSource(_OpenCvSource):
    """A camera through OpenCV (V4L2 on Linux): a device index (0 = /dev/video0) or a path such as
    /dev/v4l/by-id/usb-...-video-index0, which stays the same whichever USB port the camera is in."""

    def __init__(self, device: int | str, settings: CaptureSettings, api_preference: int | None = None):
        super().__init__()
        self.device = device
        self.settings = settings
        linux = sys.platform.startswith("linux")
        self.api_preference = (cv2.CAP_V4L2 if linux else cv2.CAP_ANY) if api_preference is None else api_preference
        # The device node to watch: gone = unplugged (an index names /dev/videoN on Linux only).
        self.node_path = str(device) if isinstance(device, str) else (f"/dev/video{device}" if linux else None)
        self.description = f"camera {device}"

    def open(self) -> None:
        if self.node_path is not None and not os.path.exists(self.node_path):
            raise SourceUnavailable(
                f"{self.description} is not there: check the USB cable; `ls -l /dev/v4l/by-id/` lists the cameras"
            )
        cap = cv2.VideoCapture(self.device, self.api_preference)
        if not cap.isOpened():
            cap.release()
            raise SourceUnavailable(
                f"OpenCV cannot open {self.description}: it is busy (another process has it), the user may not read "
                "it (add the user to group 'video'), or it is not a capture device"
            )
        self._cap = cap
        self.achieved, self.warnings = apply_capture_settings(cap, self.settings, self.description)

    def grab(self) -> bool:
        if self._cap.grab():
            return True
        if self.node_path is not None and not os.path.exists(self.node_path):
            raise SourceLost(f"{self.description} disappeared ({self.node_path} is gone: unplugged?)")
        return False


def apply_capture_settings(
    cap: cv2.VideoCapture, settings: CaptureSettings, description: str
) -> tuple[dict[str, str], list[str]]:
    """Ask ``cap`` for the settings, read back what it really does, and describe every refusal.

    The FOURCC is set first: many UVC cameras offer 640x480 at 30 fps only in MJPG, so the size and rate are
    negotiated within the compressed format. The driver's queue is shortened to one frame where the backend allows.
    """
    if settings.fourcc:
        cap.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter_fourcc(*settings.fourcc))
    cap.set(cv2.CAP_PROP_FRAME_WIDTH, settings.width)
    cap.set(cv2.CAP_PROP_FRAME_HEIGHT, settings.height)
    if settings.fps > 0:
        cap.set(cv2.CAP_PROP_FPS, settings.fps)
    cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)
    width, height = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
    fps, fourcc = float(cap.get(cv2.CAP_PROP_FPS)), fourcc_text(cap.get(cv2.CAP_PROP_FOURCC))
    achieved = {"width": str(width), "height": str(height), "fps": f"{fps:g}", "fourcc": fourcc or "unknown"}
    refused = []
    if (width, height) != (settings.width, settings.height):
        refused.append(f"size {settings.width}x{settings.height} (gives {width}x{height})")
    if settings.fps > 0 and abs(fps - settings.fps) > 0.5:
        refused.append(f"{settings.fps:g} fps (gives {fps:g} fps)")
    if settings.fourcc and fourcc.upper() != settings.fourcc.upper():
        refused.append(f"FOURCC {settings.fourcc} (gives {fourcc or 'unknown'!r})")
    warnings = []
    if refused:
        warnings.append(
            f"{description} refused {', '.join(refused)}; it streams {width}x{height} {fourcc or '?'} at {fps:g} "
            "fps. `v4l2-ctl --list-formats-ext` lists the modes it offers"
        )
    return achieved, warnings


class VideoFileSource(_OpenCvSource):
    """A video file played at the configured fps (the file's own rate when fps is 0), looping by default.

    The file is watched like a device node: once it is removed, renamed away or replaced by another file, grab
    raises SourceLost (an open file would otherwise keep playing from the vanished inode), and the reader reopens
    it when it is back.
    """

    def __init__(self, path: str | Path, settings: CaptureSettings):
        super().__init__()
        self.path = Path(path)
        self.settings = settings
        self.description = f"video file {self.path}"
        self._identity: tuple[int, int] | None = None
        self._pacer: _Pacer | None = None

    def _open_capture(self) -> cv2.VideoCapture:
        cap = cv2.VideoCapture(str(self.path), cv2.CAP_FFMPEG)
        if not cap.isOpened():
            cap.release()
            raise SourceUnavailable(f"OpenCV cannot open {self.description}: not a video, or its codec is missing")
        return cap

    def open(self) -> None:
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            raise SourceUnavailable(f"{self.description} does not exist (renamed or not mounted?)") from None
        self._identity = (stat.st_dev, stat.st_ino)
        self._cap = self._open_capture()
        file_fps = float(self._cap.get(cv2.CAP_PROP_FPS))
        fps = self.settings.fps or (file_fps if file_fps > 0 else 30.0)
        self._pacer = _Pacer(fps)
        width, height = int(self._cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(self._cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        self.achieved = {"width": str(width), "height": str(height), "fps": f"{fps:g}", "file_fps": f"{file_fps:g}"}
        if (width, height) != (self.settings.width, self.settings.height):
            self.warnings = [
                f"{self.description} is {width}x{height}, not the configured {self.settings.width}x"
                f"{self.settings.height}; frames are published at the file's size"
            ]

    def _check_still_there(self) -> None:
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            raise SourceLost(f"{self.description} disappeared") from None
        if (stat.st_dev, stat.st_ino) != self._identity:
            raise SourceLost(f"{self.description} was replaced by another file")

    def grab(self) -> bool:
        self._check_still_there()
        self._pacer.wait()
        if self._cap.grab():
            return True
        if not self.settings.loop:
            raise EndOfSource(f"{self.description} ended (loop is off)")
        # End of the file: start again, as a camera would keep streaming. Seeking can fail on some containers.
        self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
        if self._cap.grab():
            return True
        self._cap.release()
        self._cap = self._open_capture()
        return self._cap.grab()


def _natural_key(path: Path) -> list:
    """Sort key that orders frame_2.png before frame_10.png."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", path.name)]


class ImageFolderSource(FrameSource):
    """The images of a folder (natural name order: 2 before 10) played at the configured fps, looping by default.

    The list is read at open; each grab reads that image's bytes from disk (the "capture"), retrieve decodes them.
    """

    def __init__(self, folder: str | Path, settings: CaptureSettings):
        super().__init__()
        self.folder = Path(folder)
        self.settings = settings
        self.description = f"image folder {self.folder}"
        self.files: list[Path] = []
        self._index = 0
        self._data: np.ndarray | None = None
        self._pacer: _Pacer | None = None

    def open(self) -> None:
        if not self.folder.is_dir():
            raise SourceUnavailable(f"{self.description} does not exist (renamed or not mounted?)")
        files = [p for p in self.folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()]
        if not files:
            raise SourceUnavailable(f"{self.description} holds no images ({', '.join(IMAGE_SUFFIXES)})")
        self.files = sorted(files, key=_natural_key)
        self._index = 0
        fps = self.settings.fps or 30.0
        self._pacer = _Pacer(fps)
        self.achieved = {"images": str(len(self.files)), "fps": f"{fps:g}"}

    def grab(self) -> bool:
        if not self.folder.is_dir():
            raise SourceLost(f"{self.description} disappeared")
        self._pacer.wait()
        if self._index >= len(self.files):
            if not self.settings.loop:
                raise EndOfSource(f"{self.description} ended after {len(self.files)} images (loop is off)")
            self._index = 0
        path = self.files[self._index]
        self._index += 1
        try:
            self._data = np.fromfile(path, np.uint8)
        except FileNotFoundError:
            raise SourceLost(f"{path} disappeared from {self.description}") from None
        return True

    def retrieve(self) -> np.ndarray | None:
        if self._data is None or self._data.size == 0:
            return None
        return cv2.imdecode(self._data, cv2.IMREAD_COLOR)


def source_kind(source: int | str) -> str:
    """'device', 'video' or 'folder' for a source parameter.

    An integer (or digits) or a path under /dev is a camera; an existing folder is an image folder and an existing
    file a video. A path that does not exist yet is a video if it has a suffix and a folder otherwise, so a source
    that is away at start-up keeps its kind when it comes back.
    """
    if isinstance(source, int) or (isinstance(source, str) and source.strip().isdigit()):
        return "device"
    text = str(source).strip()
    if not text:
        raise ValueError("the camera source is empty: give a device index, a /dev path, a video file or a folder")
    path = Path(text).expanduser()
    if text.startswith("/dev/"):
        return "device"
    if path.is_dir():
        return "folder"
    if path.is_file() or path.suffix:
        return "video"
    return "folder"


def make_source_factory(source: int | str, settings: CaptureSettings) -> Callable[[], FrameSource]:
    """A function that builds a fresh, unopened FrameSource for ``source`` (the reader calls it on every reopen)."""
    kind = source_kind(source)
    if kind == "device":
        device = int(source) if isinstance(source, int) or str(source).strip().isdigit() else str(source).strip()
        return lambda: DeviceSource(device, settings)
    path = Path(str(source).strip()).expanduser()
    if kind == "folder":
        return lambda: ImageFolderSource(path, settings)
    return lambda: VideoFileSource(path, settings)
