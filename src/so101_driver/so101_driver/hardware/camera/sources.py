"""Wrist camera capture without ROS: the frame sources (a UVC/V4L2 device, a video file, an image folder), the
one-frame buffer, the reader thread with its watchdog, and the ROS camera calibration file.

Why a reader thread and a one-frame buffer: a USB camera delivers frames at its own rate whether anyone reads them
or not, and the driver queues a few; a consumer that reads on demand gets frames hundreds of milliseconds old (the
seed system's actor saw stale images and 1-3 s stalls from a blocking camera read). Here one thread grabs
continuously and keeps only the newest frame; the consumer takes that one or waits for the next. A frame nobody
took before the next one arrived is counted as dropped, never queued.

Why a watchdog: real cameras stall (firmware hangs, USB drop-outs, a pulled cable), and the seed system needed a
force-reconnect. When no frame arrives for ``timeout_s`` the source is closed and reopened, with exponential
backoff while it stays away. A grab that hangs inside the driver cannot be interrupted from Python, so the watchdog
abandons that worker thread (it closes its capture once the grab returns) and starts a fresh one.

Stamps: each frame carries ``clock()`` read right after the grab returned, i.e. the capture time, not the time the
frame was decoded or published.

Video files and image folders play at the configured rate, looping by default like a camera that never ends, so
the node runs (and is tested) without hardware; a file renamed away and back behaves like a camera unplugged and
plugged in again.
"""

from __future__ import annotations

import logging
import math
import os
import re
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import yaml

IMAGE_SUFFIXES = (".bmp", ".jpeg", ".jpg", ".pgm", ".png", ".ppm", ".tif", ".tiff", ".webp")

# The seed system's camera (innoMaker UVC, 103 deg horizontal in its 16:9 mode) sees 70.5 deg vertically in both of
# its modes; 640x480 is a 4:3 crop of it, 2*atan(tan(70.5/2) * 4/3) = 86.6 deg horizontally. The simulation's wrist
# camera uses the same vertical 70.5 deg.
DEFAULT_HORIZONTAL_FOV_DEG = 86.6


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

    width: int = 640
    height: int = 480
    fps: float = 30.0
    fourcc: str = "MJPG"
    loop: bool = True

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


# ---- the one-frame buffer and the reader ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Frame:
    image: np.ndarray  # HxWx3 uint8, RGB
    stamp: Any  # clock() right after the grab: the capture time
    seq: int  # 1, 2, ... over the reader's life; a gap between two taken frames = frames dropped
    monotonic_s: float  # time.monotonic() of the capture


class LatestFrame:
    """A one-frame buffer: ``put`` replaces the frame, ``take`` returns the newest frame not taken yet."""

    def __init__(self):
        self._cond = threading.Condition()
        self._frame: Frame | None = None
        self._taken_seq = 0
        self.dropped = 0  # frames replaced before anyone took them

    def put(self, frame: Frame) -> None:
        with self._cond:
            if self._frame is not None and self._frame.seq > self._taken_seq:
                self.dropped += 1
            self._frame = frame
            self._cond.notify_all()

    def take(self, timeout_s: float) -> Frame | None:
        """The newest frame not taken before, waiting up to ``timeout_s`` for one; None if none came."""
        with self._cond:
            fresh = lambda: self._frame is not None and self._frame.seq > self._taken_seq  # noqa: E731
            if not self._cond.wait_for(fresh, timeout=timeout_s):
                return None
            self._taken_seq = self._frame.seq
            return self._frame

    def peek(self) -> Frame | None:
        """The newest frame, taken or not (for tests and status)."""
        with self._cond:
            return self._frame


class RateMeter:
    """Events per second over a sliding window; 0 when fewer than two events fell in the window."""

    def __init__(self, window_s: float = 2.0):
        self.window_s = window_s
        self._times: deque[float] = deque()
        self._lock = threading.Lock()

    def tick(self, t: float | None = None) -> None:
        with self._lock:
            self._times.append(time.monotonic() if t is None else t)
            self._trim(self._times[-1])

    def _trim(self, now: float) -> None:
        while self._times and self._times[0] < now - self.window_s:
            self._times.popleft()

    def rate(self, now: float | None = None) -> float:
        with self._lock:
            self._trim(time.monotonic() if now is None else now)
            if len(self._times) < 2 or self._times[-1] <= self._times[0]:
                return 0.0
            return (len(self._times) - 1) / (self._times[-1] - self._times[0])


@dataclass
class ReaderStats:
    """A snapshot of the reader for diagnostics."""

    source: str = ""
    state: str = "starting"  # starting, opening, streaming, reconnecting, ended, stopped
    frames: int = 0  # frames captured
    dropped: int = 0  # frames replaced in the buffer before the consumer took them
    grab_failures: int = 0  # grabs that returned nothing, frames that did not decode
    watchdog_timeouts: int = 0  # times no frame came for timeout_s
    losses: int = 0  # times the source went away while open
    open_failures: int = 0
    reconnects: int = 0  # successful opens after the first
    capture_fps: float = 0.0
    last_frame_age_s: float = math.inf
    last_error: str = ""
    achieved: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


REPEAT_LOG_PERIOD_S = 60.0  # the same open failure is logged once, then once a minute while it lasts


class _Worker:
    """One opened source in its own thread. Retired by setting ``stop``; it closes its source when it sees it."""

    def __init__(self, generation: int):
        self.generation = generation
        self.stop = threading.Event()
        self.started_at = time.monotonic()
        self.opened_at: float | None = None
        self.last_frame_at: float | None = None
        self.frames = 0
        self.outcome: tuple[str, str] = ("stopped", "")  # (open_failed | lost | ended | stopped, detail)
        self.thread: threading.Thread | None = None


class CameraReader:
    """Reads a source in a thread into a one-frame buffer, reopening it when frames stop (see the module doc).

    ``source_factory`` builds a fresh unopened FrameSource (called on every (re)open, in the worker thread);
    ``clock`` gives the stamp of a frame (the node passes its ROS clock's ``now``); ``logger`` is anything with
    info/warning/error methods (a logging.Logger or a ROS node's logger).
    """

    def __init__(
        self,
        source_factory: Callable[[], FrameSource],
        clock: Callable[[], Any] = time.time,
        timeout_s: float = 2.0,
        backoff_initial_s: float = 0.25,
        backoff_max_s: float = 1.0,
        logger: Any = None,
        description: str = "camera",
    ):
        if timeout_s <= 0:
            raise ValueError(f"reconnect timeout must be > 0 s, got {timeout_s}")
        self._factory = source_factory
        self._clock = clock
        self.timeout_s = float(timeout_s)
        self.backoff_initial_s = float(backoff_initial_s)
        self.backoff_max_s = float(max(backoff_max_s, backoff_initial_s))
        self._log = logger if logger is not None else logging.getLogger(__name__)
        self.latest = LatestFrame()
        self._lock = threading.Lock()
        self._stats = ReaderStats(source=description)
        self._rate = RateMeter()
        self._seq = 0
        self._opens = 0
        self._last_frame_at: float | None = None
        self._stop = threading.Event()
        self._supervisor: threading.Thread | None = None
        self._workers: list[_Worker] = []  # the current one last; retired ones until they exit

    # ---- public ----
    def start(self) -> CameraReader:
        self._supervisor = threading.Thread(target=self._supervise, name="camera-watchdog", daemon=True)
        self._supervisor.start()
        return self

    def stop(self, timeout_s: float = 3.0) -> None:
        self._stop.set()
        if self._supervisor is not None:
            self._supervisor.join(timeout=timeout_s)
        with self._lock:
            workers = list(self._workers)
        for worker in workers:
            worker.stop.set()
            if worker.thread is not None:
                worker.thread.join(timeout=timeout_s)
        with self._lock:
            if self._stats.state != "ended":
                self._stats.state = "stopped"

    def stats(self) -> ReaderStats:
        with self._lock:
            snapshot = ReaderStats(**{**self._stats.__dict__})
            snapshot.achieved = dict(self._stats.achieved)
            snapshot.warnings = list(self._stats.warnings)
            last = self._last_frame_at
        snapshot.dropped = self.latest.dropped
        snapshot.capture_fps = self._rate.rate()
        snapshot.last_frame_age_s = math.inf if last is None else time.monotonic() - last
        return snapshot

    def __enter__(self) -> CameraReader:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ---- the watchdog (supervisor thread) ----
    def _supervise(self) -> None:
        backoff = self.backoff_initial_s
        next_attempt = 0.0
        worker: _Worker | None = None
        generation = 0
        last_detail, last_logged, repeats = "", 0.0, 0
        description = self._stats.source
        while not self._stop.is_set():
            now = time.monotonic()
            with self._lock:  # forget retired workers once they have exited
                self._workers = [w for w in self._workers if w is worker or w.thread.is_alive()]
            if worker is not None and worker.frames > 0:
                backoff = self.backoff_initial_s
            if worker is not None and not worker.thread.is_alive():
                kind, detail = worker.outcome
                worker = None
                if kind == "ended":
                    self._log.info(f"{description}: {detail}; the reader stops")
                    self._set(state="ended", last_error=detail)
                    return
                with self._lock:
                    self._stats.state = "reconnecting"
                    self._stats.last_error = detail
                    if kind == "open_failed":
                        self._stats.open_failures += 1
                    else:
                        self._stats.losses += 1
                repeats = repeats + 1 if detail == last_detail else 0
                last_detail = detail
                if repeats == 0 or now - last_logged > REPEAT_LOG_PERIOD_S:  # an outage of hours: a line a minute
                    what = "cannot open it" if kind == "open_failed" else "lost it"
                    again = f" ({repeats + 1} attempts)" if repeats else ""
                    self._log.warning(f"{description}: {what}{again}: {detail}; retrying in {backoff:.2f} s")
                    last_logged = now
                next_attempt = now + backoff
                backoff = min(2.0 * backoff, self.backoff_max_s)
            elif worker is not None:
                last = max(worker.started_at, worker.opened_at or 0.0, worker.last_frame_at or 0.0)
                if now - last > self.timeout_s:
                    detail = f"no frame for {now - last:.1f} s"
                    self._log.warning(f"{description}: {detail} (watchdog): reopening in {backoff:.2f} s")
                    with self._lock:
                        self._stats.watchdog_timeouts += 1
                        self._stats.state = "reconnecting"
                        self._stats.last_error = detail
                    worker.stop.set()  # a grab stuck in the driver returns later; the worker then closes its source
                    worker = None
                    next_attempt = now + backoff
                    backoff = min(2.0 * backoff, self.backoff_max_s)
            if worker is None and now >= next_attempt:
                generation += 1
                worker = _Worker(generation)
                worker.thread = threading.Thread(
                    target=self._read, args=(worker,), name=f"camera-reader-{generation}", daemon=True
                )
                with self._lock:
                    self._workers.append(worker)
                    if self._stats.state != "reconnecting":
                        self._stats.state = "opening"
                worker.thread.start()
            self._stop.wait(0.02)
        if worker is not None:
            worker.stop.set()

    def _set(self, **values) -> None:
        with self._lock:
            for key, value in values.items():
                setattr(self._stats, key, value)

    # ---- a worker (reader thread) ----
    def _read(self, worker: _Worker) -> None:
        try:
            source = self._factory()
            source.open()
        except SourceUnavailable as err:
            worker.outcome = ("open_failed", str(err))
            return
        except Exception as err:  # a driver error while opening is a failed open, retried like the others
            worker.outcome = ("open_failed", f"{type(err).__name__}: {err}")
            return
        try:
            worker.opened_at = time.monotonic()
            self._opened(source)
            while not worker.stop.is_set():
                if not source.grab():
                    self._count_failure()
                    time.sleep(0.005)  # a failing device answers at once: do not spin
                    continue
                stamp = self._clock()  # the capture time: right after the grab, before decoding
                captured_at = time.monotonic()
                image = source.retrieve()
                if image is None:
                    self._count_failure()
                    continue
                if worker.stop.is_set():  # retired while grabbing: this frame is stale
                    break
                self._deliver(worker, _to_rgb(image), stamp, captured_at)
        except EndOfSource as err:
            worker.outcome = ("ended", str(err))
        except SourceLost as err:
            worker.outcome = ("lost", str(err))
        except Exception as err:  # cv2.error and the like: treat as a lost source, the watchdog reopens it
            worker.outcome = ("lost", f"{type(err).__name__}: {err}")
        finally:
            source.close()

    def _opened(self, source: FrameSource) -> None:
        with self._lock:
            self._opens += 1
            reconnect = self._opens > 1
            if reconnect:
                self._stats.reconnects += 1
            self._stats.achieved = dict(source.achieved)
            self._stats.warnings = list(source.warnings)
            count = self._stats.reconnects
        settings = ", ".join(f"{k} {v}" for k, v in source.achieved.items())
        if reconnect:
            self._log.info(f"{source.description}: reopened (reconnect {count}): {settings}")
        else:
            self._log.info(f"{source.description}: opened: {settings}")
        for warning in source.warnings:
            self._log.warning(warning)

    def _count_failure(self) -> None:
        with self._lock:
            self._stats.grab_failures += 1

    def _deliver(self, worker: _Worker, image: np.ndarray, stamp: Any, captured_at: float) -> None:
        with self._lock:
            self._seq += 1
            seq = self._seq
            self._stats.frames += 1
            self._stats.state = "streaming"
            self._last_frame_at = captured_at
        worker.frames += 1
        worker.last_frame_at = captured_at
        self._rate.tick(captured_at)
        self.latest.put(Frame(image=image, stamp=stamp, seq=seq, monotonic_s=captured_at))


def _to_rgb(image: np.ndarray) -> np.ndarray:
    """OpenCV's BGR, BGRA or grey -> RGB, the encoding the project publishes (rgb8)."""
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2RGB)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


# ---- camera calibration (ROS camera_calibration YAML) --------------------------------------------------------------


class CalibrationFileError(ValueError):
    """The camera calibration file is missing or malformed; the message names the file and the field."""


# Distortion coefficient counts of the models ROS tools write; other models are passed through unchecked.
DISTORTION_COEFFICIENTS = {"plumb_bob": (5,), "rational_polynomial": (8,), "equidistant": (4,)}


@dataclass(frozen=True)
class CameraCalibration:
    """The contents of a ROS camera calibration file (what ``cameracalibrator`` writes), as CameraInfo fields."""

    width: int
    height: int
    camera_name: str
    k: tuple[float, ...]  # 3x3 row-major
    distortion_model: str
    d: tuple[float, ...]
    r: tuple[float, ...]  # 3x3 row-major
    p: tuple[float, ...]  # 3x4 row-major
    path: str = ""


def _matrix(data: dict, name: str, rows: int | None, cols: int | None, where: str) -> tuple[float, ...]:
    if name not in data:
        raise CalibrationFileError(f"{where}: field '{name}' is missing (expected rows, cols and data)")
    value = data[name]
    if not isinstance(value, dict) or not {"rows", "cols", "data"} <= set(value):
        raise CalibrationFileError(f"{where}: '{name}' must be a mapping with rows, cols and data, got {value!r}")
    got_rows, got_cols, numbers = value["rows"], value["cols"], value["data"]
    if not isinstance(got_rows, int) or not isinstance(got_cols, int) or got_rows < 1 or got_cols < 0:
        raise CalibrationFileError(f"{where}: '{name}' rows and cols must be integers, got {got_rows!r}x{got_cols!r}")
    if (rows is not None and got_rows != rows) or (cols is not None and got_cols != cols):
        raise CalibrationFileError(f"{where}: '{name}' must be {rows}x{cols}, the file says {got_rows}x{got_cols}")
    if not isinstance(numbers, list) or len(numbers) != got_rows * got_cols:
        size = len(numbers) if isinstance(numbers, list) else type(numbers).__name__
        raise CalibrationFileError(
            f"{where}: '{name}.data' must be a list of rows*cols = {got_rows * got_cols} numbers, got {size}"
        )
    try:
        values = tuple(float(v) for v in numbers)
    except (TypeError, ValueError):
        raise CalibrationFileError(f"{where}: '{name}.data' holds a value that is not a number: {numbers}") from None
    if not all(math.isfinite(v) for v in values):
        raise CalibrationFileError(f"{where}: '{name}.data' holds a non-finite value: {numbers}")
    return values


def load_camera_calibration(path: str | Path) -> CameraCalibration:
    """Read a ROS camera calibration YAML (image_width, image_height, camera_name, camera_matrix,
    distortion_model, distortion_coefficients, rectification_matrix, projection_matrix)."""
    path = Path(path).expanduser()
    where = f"camera calibration {path}"
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise CalibrationFileError(
            f"{where} does not exist: calibrate with `ros2 run camera_calibration cameracalibrator` or leave "
            "camera_info_file empty for an uncalibrated pinhole"
        ) from None
    except OSError as err:
        raise CalibrationFileError(f"{where} cannot be read: {err}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise CalibrationFileError(f"{where} is not valid YAML: {err}") from None
    if not isinstance(data, dict):
        raise CalibrationFileError(f"{where} must be a YAML mapping of calibration fields, got {type(data).__name__}")
    size = []
    for name in ("image_width", "image_height"):
        if name not in data:
            raise CalibrationFileError(f"{where}: field '{name}' is missing")
        value = data[name]
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise CalibrationFileError(f"{where}: '{name}' must be a positive integer (pixels), got {value!r}")
        size.append(value)
    model = data.get("distortion_model")
    if not isinstance(model, str) or not model:
        raise CalibrationFileError(f"{where}: field 'distortion_model' is missing or not a name (e.g. plumb_bob)")
    k = _matrix(data, "camera_matrix", 3, 3, where)
    d = _matrix(data, "distortion_coefficients", 1, None, where)
    r = _matrix(data, "rectification_matrix", 3, 3, where)
    p = _matrix(data, "projection_matrix", 3, 4, where)
    expected = DISTORTION_COEFFICIENTS.get(model)
    if expected is not None and len(d) not in expected:
        raise CalibrationFileError(
            f"{where}: distortion model '{model}' takes {' or '.join(map(str, expected))} coefficients, "
            f"'distortion_coefficients' has {len(d)}"
        )
    if k[0] <= 0 or k[4] <= 0:
        raise CalibrationFileError(f"{where}: 'camera_matrix' focal lengths fx={k[0]}, fy={k[4]} must be positive")
    return CameraCalibration(
        width=size[0],
        height=size[1],
        camera_name=str(data.get("camera_name", "")),
        k=k,
        distortion_model=model,
        d=d,
        r=r,
        p=p,
        path=str(path),
    )


def pinhole_from_fov(width: int, height: int, horizontal_fov_deg: float) -> tuple[float, float, float, float]:
    """(fx, fy, cx, cy) in pixels of an ideal pinhole with square pixels and the given horizontal field of view;
    principal point at the image centre in the ROS/OpenCV convention ((w - 1) / 2, as the simulation's camera)."""
    if not 0.0 < horizontal_fov_deg < 180.0:
        raise ValueError(f"horizontal_fov_deg must be in (0, 180), got {horizontal_fov_deg}")
    f = 0.5 * width / math.tan(0.5 * math.radians(horizontal_fov_deg))
    return f, f, 0.5 * (width - 1), 0.5 * (height - 1)
