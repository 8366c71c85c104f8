"""The camera reader thread, its one-frame buffer and its watchdog (no ROS).

A USB camera delivers frames at its own rate whether anyone reads them or not, and the driver queues a few, so a
consumer that reads on demand gets stale frames. Here one thread grabs continuously and keeps only the newest frame
(``LatestFrame``); a frame nobody took before the next one is counted as dropped, never queued. Real cameras stall
(firmware hangs, USB drop-outs, a pulled cable), so a watchdog reopens a source that sends nothing for ``timeout_s``
(``CameraReader``). Each frame is stamped with ``clock()`` read right after the grab returned: the capture time.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from so101_driver.hardware.camera.sources import EndOfSource, FrameSource, SourceLost, SourceUnavailable


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


RECONNECT_TIMEOUT_S = 2.0  # reopen the source when no frame came for this long
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
    """Reads a source in a thread into a one-frame buffer, reopening it when frames stop.

    When no frame arrives for ``timeout_s`` the source is closed and reopened, with exponential backoff while it stays
    away. A grab that hangs inside the driver cannot be interrupted from Python, so the watchdog abandons that worker
    thread (it closes its capture once the grab returns) and starts a fresh one.

    ``source_factory`` builds a fresh unopened FrameSource (called on every (re)open, in the worker thread);
    ``clock`` gives the stamp of a frame (the node passes its ROS clock's ``now``); ``logger`` is anything with
    info/warning/error methods (a logging.Logger or a ROS node's logger).
    """

    def __init__(
        self,
        source_factory: Callable[[], FrameSource],
        clock: Callable[[], Any] = time.time,
        timeout_s: float = RECONNECT_TIMEOUT_S,
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
