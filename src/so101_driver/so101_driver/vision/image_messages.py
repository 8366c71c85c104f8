"""sensor_msgs/Image and CameraInfo <-> numpy, in one place.

On a ROS install cv_bridge does the conversion; without one (PyPI ROS wheels have no cv_bridge) the same raw
encodings are converted with numpy, byte for byte what cv_bridge produces for rgb8/bgr8/mono8.
"""

from __future__ import annotations

import numpy as np
from sensor_msgs.msg import CameraInfo, Image

try:  # a ROS install
    from cv_bridge import CvBridge

    _BRIDGE: CvBridge | None = CvBridge()
except ImportError:  # PyPI wheels: no cv_bridge
    _BRIDGE = None

WRIST_CAMERA_FRAME = "wrist_camera_optical_frame"  # the URDF's optical frame of the wrist camera: the images' frame
_CHANNELS = {"rgb8": 3, "bgr8": 3, "mono8": 1}


class ImageConversionError(ValueError):
    pass


def array_to_image_msg(array: np.ndarray, encoding: str = "rgb8", stamp=None, frame_id: str = "") -> Image:
    """HxWx3 (or HxW for mono8) uint8 array -> Image."""
    if encoding not in _CHANNELS:
        raise ImageConversionError(f"unsupported encoding {encoding!r}; use one of {sorted(_CHANNELS)}")
    if array.dtype != np.uint8:
        raise ImageConversionError(f"image array must be uint8, got {array.dtype}")
    if _BRIDGE is not None:
        msg = _BRIDGE.cv2_to_imgmsg(np.ascontiguousarray(array), encoding=encoding)
    else:
        channels = _CHANNELS[encoding]
        expected_ndim = 2 if channels == 1 else 3
        if array.ndim != expected_ndim or (channels == 3 and array.shape[2] != 3):
            raise ImageConversionError(f"{encoding} needs an array of {expected_ndim} dims, got shape {array.shape}")
        msg = Image()
        msg.height, msg.width = int(array.shape[0]), int(array.shape[1])
        msg.encoding = encoding
        msg.is_bigendian = 0
        msg.step = msg.width * channels
        msg.data = np.ascontiguousarray(array).tobytes()
    if stamp is not None:
        msg.header.stamp = stamp
    msg.header.frame_id = frame_id
    return msg


def image_msg_to_array(msg: Image) -> np.ndarray:
    """Image (rgb8, bgr8 or mono8) -> uint8 array view in the message's own encoding and channel order."""
    if msg.encoding not in _CHANNELS:
        raise ImageConversionError(f"unsupported image encoding {msg.encoding!r}; the project reads rgb8, bgr8, mono8")
    if _BRIDGE is not None:
        return _BRIDGE.imgmsg_to_cv2(msg, desired_encoding="passthrough")
    channels = _CHANNELS[msg.encoding]
    row_bytes = msg.width * channels
    if msg.step < row_bytes or len(msg.data) < msg.step * msg.height:
        raise ImageConversionError(
            f"image data is {len(msg.data)} bytes with step {msg.step}; {msg.width}x{msg.height} {msg.encoding} "
            f"needs step >= {row_bytes} and {msg.step * msg.height} bytes"
        )
    flat = np.frombuffer(msg.data, np.uint8, count=msg.step * msg.height).reshape(msg.height, msg.step)
    pixels = flat[:, :row_bytes]
    return pixels.reshape(msg.height, msg.width) if channels == 1 else pixels.reshape(msg.height, msg.width, 3)


def pinhole_camera_info(
    width: int, height: int, fx: float, fy: float, cx: float, cy: float, frame_id: str, stamp=None
) -> CameraInfo:
    """CameraInfo of an undistorted pinhole camera (the simulation's, or a calibrated camera after rectification)."""
    info = CameraInfo()
    info.width, info.height = int(width), int(height)
    info.distortion_model = "plumb_bob"
    info.d = [0.0] * 5
    info.k = [fx, 0.0, cx, 0.0, fy, cy, 0.0, 0.0, 1.0]
    info.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    info.p = [fx, 0.0, cx, 0.0, 0.0, fy, cy, 0.0, 0.0, 0.0, 1.0, 0.0]
    info.header.frame_id = frame_id
    if stamp is not None:
        info.header.stamp = stamp
    return info
