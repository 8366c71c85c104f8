"""Camera intrinsics without ROS: the ROS camera calibration YAML (what ``cameracalibrator`` writes) and, without
one, an ideal pinhole from the horizontal field of view."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import yaml

# The seed system's camera (innoMaker UVC, 103 deg horizontal in its 16:9 mode) sees 70.5 deg vertically in both of
# its modes; 640x480 is a 4:3 crop of it, 2*atan(tan(70.5/2) * 4/3) = 86.6 deg horizontally. The simulation's wrist
# camera uses the same vertical 70.5 deg.
DEFAULT_HORIZONTAL_FOV_DEG = 86.6


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
