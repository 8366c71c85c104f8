"""wrist_camera: the USB wrist camera (or a video file / image folder standing in for it) as a ROS node.

Publishes exactly what the simulation publishes for its camera: ``wrist_camera/image_raw`` (rgb8, sensor-data QoS)
and ``wrist_camera/camera_info`` with the same stamp, plus a camera status on ``/diagnostics`` once a second
(capture and publish fps, dropped frames, watchdog timeouts and reconnects).

The capture logic lives in so101_driver.hardware.camera (sources, the reader thread with its one-frame buffer and
watchdog, camera-info files); this node only declares its settings (CameraConfig), turns frames into messages in
its publishing thread and reports. Each image is published as soon as it is captured, stamped with the capture
time; a frame the publisher could not keep up with is dropped, never sent late.
"""

from __future__ import annotations

import so101_contract.quiet_interrupt  # noqa: F401  (first: Ctrl-C during the heavy imports below is quiet)

# isort: split
import threading
from dataclasses import dataclass, field

from diagnostic_msgs.msg import DiagnosticArray
from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, Image

from so101_contract import diagnostics, qos
from so101_contract.diagnostics import diagnostic_array
from so101_contract.node_main import EXIT_REFUSED, run_node
from so101_contract.parameters import ParameterError, declare_config
from so101_contract.settings import setting
from so101_driver.hardware.camera.camera_info import (
    DEFAULT_HORIZONTAL_FOV_DEG,
    CalibrationFileError,
    CameraCalibration,
    load_camera_calibration,
    pinhole_from_fov,
)
from so101_driver.hardware.camera.reader import RECONNECT_TIMEOUT_S, CameraReader, RateMeter
from so101_driver.hardware.camera.sources import CaptureSettings, make_source_factory
from so101_driver.vision.image_messages import WRIST_CAMERA_FRAME, array_to_image_msg, pinhole_camera_info

DIAGNOSTICS_PERIOD_S = 1.0
LOW_FPS_FRACTION = 0.8  # diagnostics warn below this fraction of the asked frame rate
THREAD_JOIN_TIMEOUT_S = 1.0  # per thread at shutdown; node_main ends the process 4 s after the stop anyway


@dataclass(frozen=True)
class CameraConfig:
    """The wrist camera node's settings (its parameters); ``capture`` is what the camera is asked for."""

    source: str = setting(
        "0", "camera device index (0 = /dev/video0), a device path (better: /dev/v4l/by-id/usb-...-video-index0, "
        "stable across USB ports), a video file or an image folder (played at fps, looping)"
    )  # fmt: skip
    capture: CaptureSettings = field(default_factory=CaptureSettings)
    camera_info_file: str = setting(
        "", "ROS camera calibration YAML; '' = uncalibrated pinhole from horizontal_fov_deg"
    )
    horizontal_fov_deg: float = setting(
        DEFAULT_HORIZONTAL_FOV_DEG, "horizontal field of view of the uncalibrated pinhole (degrees)", (1.0, 179.0)
    )
    frame_id: str = setting(WRIST_CAMERA_FRAME, "header.frame_id of images and info")
    reconnect_timeout_s: float = setting(
        RECONNECT_TIMEOUT_S, "reopen the camera when no frame came for this long (s)", (0.1, 60.0)
    )


CONFIG = CameraConfig


class CameraNode(Node):
    def __init__(self):
        super().__init__("wrist_camera")
        try:
            self.config = config = declare_config(self, CONFIG)  # CaptureSettings refuses a bad fourcc (ValueError)
            source, self.settings = config.source, config.capture
            width, height, fps, fourcc = (getattr(self.settings, k) for k in ("width", "height", "fps", "fourcc"))
            self.fov_deg, self.frame_id = config.horizontal_fov_deg, config.frame_id
            factory = make_source_factory(source, self.settings)
            pinhole_from_fov(width, height, self.fov_deg)  # validates the field of view at start-up
            info_file = config.camera_info_file
            self.calibration: CameraCalibration | None = load_camera_calibration(info_file) if info_file else None
        except ParameterError:
            raise  # node_main's one line and exit code 2
        except (ValueError, CalibrationFileError) as err:
            self.get_logger().fatal(str(err))
            raise SystemExit(EXIT_REFUSED) from None  # a refused configuration: exit 2, as for a bad parameter
        self._infos: dict[tuple[int, int], CameraInfo] = {}
        self._info_mismatch_warned: set[tuple[int, int]] = set()

        self.image_pub = self.create_publisher(Image, "wrist_camera/image_raw", qos.SENSOR_DATA)
        self.info_pub = self.create_publisher(CameraInfo, "wrist_camera/camera_info", qos.SENSOR_DATA)
        self.diagnostics_pub = self.create_publisher(DiagnosticArray, diagnostics.TOPIC, diagnostics.DEPTH)
        self.source = str(source)
        self.reader = CameraReader(
            factory,
            clock=self.get_clock().now,
            timeout_s=config.reconnect_timeout_s,
            logger=self.get_logger(),
            description="wrist camera",
        )
        self._publish_rate = RateMeter()
        self._published = 0
        self._running = True
        self.reader.start()
        self._thread = threading.Thread(target=self._publish_loop, name="wrist-camera-publish", daemon=True)
        self._thread.start()
        self.create_timer(DIAGNOSTICS_PERIOD_S, self._publish_diagnostics)
        calibration = f"calibration {self.calibration.path}" if self.calibration else f"pinhole {self.fov_deg:g} deg"
        self.get_logger().info(
            f"wrist camera on {source}: {width}x{height} {fourcc or 'default format'} at {fps:g} fps, {calibration}, "
            f"frame {self.frame_id}"
        )

    # ---- camera info ----
    def _camera_info(self, width: int, height: int) -> CameraInfo:
        """The CameraInfo for frames of this size: the calibration file's, or the pinhole from the field of view."""
        key = (width, height)
        info = self._infos.get(key)
        if info is not None:
            return info
        if self.calibration is not None:
            c = self.calibration
            info = CameraInfo(width=c.width, height=c.height, distortion_model=c.distortion_model)
            info.k, info.d, info.r, info.p = list(c.k), list(c.d), list(c.r), list(c.p)
            if key != (c.width, c.height):
                self.get_logger().error(
                    f"frames are {width}x{height} but {c.path} calibrates {c.width}x{c.height}: camera_info does "
                    "not fit the images; set width/height to the calibrated size or recalibrate"
                )
                self._info_mismatch_warned.add(key)
        else:
            fx, fy, cx, cy = pinhole_from_fov(width, height, self.fov_deg)
            info = pinhole_camera_info(width, height, fx, fy, cx, cy, self.frame_id)
        info.header.frame_id = self.frame_id
        self._infos[key] = info
        return info

    # ---- publishing thread ----
    def _publish_loop(self) -> None:
        while self._running:
            frame = self.reader.latest.take(timeout_s=0.1)
            if frame is None:
                continue
            stamp = frame.stamp.to_msg()
            height, width = frame.image.shape[:2]
            image = array_to_image_msg(frame.image, "rgb8", stamp, self.frame_id)
            info = self._camera_info(width, height)
            info.header.stamp = stamp
            if not self._running:  # never after destroy_node asked the thread to stop
                break
            self.image_pub.publish(image)
            self.info_pub.publish(info)
            self._published += 1
            self._publish_rate.tick()

    # ---- diagnostics ----
    def _publish_diagnostics(self) -> None:
        stats = self.reader.stats()
        publish_fps = self._publish_rate.rate()
        values = {
            "source": self.source,
            "state": stats.state,
            "capture_fps": f"{stats.capture_fps:.2f}",
            "publish_fps": f"{publish_fps:.2f}",
            "target_fps": f"{self.settings.fps:g}",
            "frames_captured": str(stats.frames),
            "frames_published": str(self._published),
            "frames_dropped": str(stats.dropped),
            "grab_failures": str(stats.grab_failures),
            "watchdog_timeouts": str(stats.watchdog_timeouts),
            "source_losses": str(stats.losses),
            "open_failures": str(stats.open_failures),
            "reconnects": str(stats.reconnects),
            "last_frame_age_s": f"{stats.last_frame_age_s:.3f}",
            "last_error": stats.last_error or "none",
            "camera_info": f"calibration {self.calibration.path}" if self.calibration else "uncalibrated pinhole",
        }
        values.update({f"achieved_{k}": v for k, v in stats.achieved.items()})
        level, message = diagnostics.OK, "streaming"
        if stats.warnings:
            level, message = diagnostics.WARN, "; ".join(stats.warnings)
        if self._info_mismatch_warned:
            level, message = diagnostics.WARN, "camera_info is for another image size than the frames"
        if (
            stats.state == "streaming"
            and self.settings.fps > 0
            and stats.capture_fps < LOW_FPS_FRACTION * self.settings.fps
        ):
            level = diagnostics.WARN
            message = f"capturing at {stats.capture_fps:.1f} fps, asked {self.settings.fps:g}"
        if stats.state == "ended":
            level, message = diagnostics.WARN, f"source ended: {stats.last_error}"
        elif stats.state in ("opening", "reconnecting", "starting"):
            level, message = diagnostics.ERROR, f"no frames ({stats.state}): {stats.last_error or 'opening'}"
        stamp = self.get_clock().now().to_msg()
        name = f"{self.get_name()}: camera"
        self.diagnostics_pub.publish(diagnostic_array(stamp, name, self.source, level, message, values))

    def destroy_node(self) -> None:
        """Threads first, within node_main's shutdown bound (a grab stuck in a driver is left behind)."""
        self._running = False
        reader = getattr(self, "reader", None)
        if reader is not None:
            reader.stop(timeout_s=THREAD_JOIN_TIMEOUT_S)
        thread = getattr(self, "_thread", None)
        if thread is not None:
            thread.join(timeout=THREAD_JOIN_TIMEOUT_S)
        super().destroy_node()


def main(args=None) -> None:
    run_node(CameraNode, args)


if __name__ == "__main__":
    main()
