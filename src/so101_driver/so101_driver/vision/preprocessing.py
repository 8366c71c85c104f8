"""The one image preprocessing of the project: camera frame -> policy/classifier frame.

Used identically by the actor, the reward classifier (training and node), the learner tools and the simulation
(docs/architecture.md, "The observation and action contract"): crop one box out of the 640x480 camera frame,
resize it with INTER_AREA to 84x84, keep uint8 RGB, HWC. Nobody else scales pixels; the encoder alone does
(x/255 - 0.5).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

import cv2
import numpy as np


class PreprocessingError(ValueError):
    pass


@dataclass(frozen=True)
class ImagePreprocessing:
    """Crop box (pixels of the raw frame) and output size. Defaults: centre square of a 640x480 frame -> 84x84."""

    crop_x: int = 80
    crop_y: int = 0
    crop_width: int = 480
    crop_height: int = 480
    output_size: int = 84
    source_width: int = 640
    source_height: int = 480

    def __post_init__(self) -> None:
        for name in ("crop_width", "crop_height", "output_size", "source_width", "source_height"):
            if getattr(self, name) <= 0:
                raise PreprocessingError(f"{name} must be positive, got {getattr(self, name)}")
        if self.crop_x < 0 or self.crop_y < 0:
            raise PreprocessingError(f"crop origin must be >= 0, got ({self.crop_x}, {self.crop_y})")
        if self.crop_x + self.crop_width > self.source_width or self.crop_y + self.crop_height > self.source_height:
            raise PreprocessingError(
                f"crop box x={self.crop_x} y={self.crop_y} {self.crop_width}x{self.crop_height} does not fit in a "
                f"{self.source_width}x{self.source_height} frame"
            )

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> ImagePreprocessing:
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise PreprocessingError(f"unknown preprocessing field(s): {sorted(unknown)}")
        return cls(**data)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_parameter(cls, text: str, name: str = "preprocessing") -> ImagePreprocessing:
        """The value of a node's ``preprocessing`` parameter: '' = the project default, else a JSON object of
        fields to change from it (the actor and the reward node take the same value from one parameter file)."""
        if not text.strip():
            return cls()
        try:
            overrides = json.loads(text)
        except json.JSONDecodeError as err:
            raise PreprocessingError(f"parameter {name}={text!r} is not JSON ({err})") from err
        if not isinstance(overrides, dict):
            raise PreprocessingError(f"parameter {name} must be a JSON object of ImagePreprocessing fields")
        try:
            return cls.from_dict({**cls().to_dict(), **overrides})
        except (TypeError, PreprocessingError) as err:
            raise PreprocessingError(f"parameter {name}: {err}") from err

    def apply(self, frame: np.ndarray, encoding: str = "rgb8") -> np.ndarray:
        """Raw camera frame (HxWx3 uint8, ``encoding`` rgb8 or bgr8) -> output_size x output_size x 3 uint8 RGB."""
        if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
            raise PreprocessingError(f"expected an HxWx3 uint8 frame, got shape {frame.shape} dtype {frame.dtype}")
        height, width = frame.shape[:2]
        if (width, height) != (self.source_width, self.source_height):
            raise PreprocessingError(
                f"frame is {width}x{height} but the preprocessing expects {self.source_width}x{self.source_height}: "
                "set the camera resolution or the preprocessing source size so they agree"
            )
        crop = frame[self.crop_y : self.crop_y + self.crop_height, self.crop_x : self.crop_x + self.crop_width]
        out = cv2.resize(crop, (self.output_size, self.output_size), interpolation=cv2.INTER_AREA)
        if encoding == "bgr8":
            out = cv2.cvtColor(out, cv2.COLOR_BGR2RGB)
        elif encoding != "rgb8":
            raise PreprocessingError(f"unsupported image encoding {encoding!r}: use rgb8 or bgr8")
        return np.ascontiguousarray(out)


DEFAULT_PREPROCESSING = ImagePreprocessing()
