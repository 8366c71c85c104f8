"""Camera streams of a LeRobot dataset with PyAV: one mp4 holds many episodes back to back at a constant rate.

Frame k of an episode that starts at ``from_s`` in its file is the decoded frame whose time is ``from_s + k / fps``
(within LeRobot's 1e-4 s). The writer gives frame n of a file the pts n in a 1/fps time base, so that holds exactly;
its defaults are LeRobot's encoder's (AV1 by SVT-AV1, yuv420p, a keyframe every 2 frames, crf 30).
"""

from __future__ import annotations

import os
from pathlib import Path

import av
import numpy as np

from so101_bringup.lerobot_datasets.layout import TIMESTAMP_TOLERANCE_S, DatasetError

# SVT-AV1 prints its whole configuration to stderr on every file unless told otherwise; errors only.
os.environ.setdefault("SVT_LOG", "1")
ENCODER = {"codec": "libsvtav1", "pix_fmt": "yuv420p", "g": 2, "crf": 30, "preset": 12}


class VideoWriter:
    """One mp4 file being written: ``append(frames)`` adds an episode and returns its (from_s, to_s) in the file."""

    def __init__(self, path: Path, fps: int, width: int, height: int):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path, self.fps, self.frames = path, int(fps), 0
        self.container = av.open(str(path), "w")
        options = {"g": str(ENCODER["g"]), "crf": str(ENCODER["crf"]), "preset": str(ENCODER["preset"])}
        self.stream = self.container.add_stream(ENCODER["codec"], rate=self.fps, options=options)
        self.stream.width, self.stream.height, self.stream.pix_fmt = width, height, ENCODER["pix_fmt"]

    def append(self, frames) -> tuple[float, float]:
        start = self.frames
        for image in frames:
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
            frame.pts = self.frames
            self.frames += 1
            self.container.mux(self.stream.encode(frame))
        return start / self.fps, self.frames / self.fps

    def size_bytes(self) -> int:
        return self.path.stat().st_size if self.path.exists() else 0

    def close(self) -> None:
        self.container.mux(self.stream.encode())
        self.container.close()

    @staticmethod
    def info(fps: int, width: int, height: int) -> dict:
        """The video feature's ``info`` as LeRobot records it (its probe of the file plus its encoder settings)."""
        return {
            "video.height": height, "video.width": width, "video.codec": "av1", "video.pix_fmt": ENCODER["pix_fmt"],
            "video.is_depth_map": False, "video.fps": int(fps), "video.channels": 3, "has_audio": False,
            "video.g": ENCODER["g"], "video.crf": ENCODER["crf"], "video.preset": ENCODER["preset"],
        }  # fmt: skip


def read_frames(path: Path, from_s: float, fps: float, count: int, wanted, where: str) -> dict[int, np.ndarray]:
    """The frames at indices ``wanted`` (sorted, in [0, count)) of the episode that starts at ``from_s`` in ``path``,
    as HxWx3 uint8 RGB. A missing frame (a short, cut or corrupt file) is a DatasetError naming ``where``."""
    wanted = sorted(set(int(k) for k in wanted))
    if not wanted:
        return {}
    last = wanted[-1]
    found: dict[int, np.ndarray] = {}
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            first_s = from_s + wanted[0] / fps
            if first_s > 0:  # to the keyframe at or before the first wanted frame
                container.seek(int(first_s / stream.time_base), stream=stream, backward=True)
            targets = set(wanted)
            for frame in container.decode(stream):
                if frame.time is None:
                    continue
                k = round((frame.time - from_s) * fps)
                if k > last:
                    break
                if k in targets and abs(frame.time - (from_s + k / fps)) <= TIMESTAMP_TOLERANCE_S:
                    found[k] = frame.to_ndarray(format="rgb24")
    except FileNotFoundError:
        raise DatasetError(f"{path}: missing ({where}); download the dataset again") from None
    except (av.FFmpegError, IndexError, ValueError) as err:
        reason = getattr(err, "strerror", None) or " ".join(str(err).split())[:100] or type(err).__name__
        raise DatasetError(f"{path}: corrupt video ({where}: {reason}); download the dataset again") from None
    missing = [k for k in wanted if k not in found]
    if missing:
        raise DatasetError(
            f"{path}: {where}: {len(missing)} of {len(wanted)} frames missing (first: frame {missing[0]} at "
            f"{from_s + missing[0] / fps:.4f} s); the video is short or corrupt, download the dataset again"
        )
    return found
