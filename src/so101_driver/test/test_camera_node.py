"""wrist_camera in a real graph, fed by a video file written here: rate, image format, stamps, camera_info from a
calibration file, then the file disappears and returns and publishing resumes with the reconnect in diagnostics."""

from __future__ import annotations

import itertools
import os
import time

import cv2
import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from sensor_msgs.msg import CameraInfo, Image

from so101_contract.qos import SENSOR_DATA
from so101_driver.vision.image_messages import image_msg_to_array
from so101_testing.graph import wait_until

TIMEOUT_S = 20.0
FPS = 15.0
OK = DiagnosticStatus.OK
CALIBRATION = """\
image_width: 640
image_height: 480
camera_name: wrist_camera
camera_matrix: {rows: 3, cols: 3, data: [412.5, 0.0, 318.2, 0.0, 411.9, 242.7, 0.0, 0.0, 1.0]}
distortion_model: plumb_bob
distortion_coefficients: {rows: 1, cols: 5, data: [-0.31, 0.09, 0.001, -0.002, 0.0]}
rectification_matrix: {rows: 3, cols: 3, data: [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]}
projection_matrix: {rows: 3, cols: 4, data: [300.1, 0.0, 320.4, 0.0, 0.0, 350.2, 241.0, 0.0, 0.0, 0.0, 1.0, 0.0]}
"""


def write_video(path, frames: int = 30, fps: float = 30.0):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (640, 480))
    for i in range(frames):
        image = np.zeros((480, 640, 3), np.uint8)
        image[..., 1] = 5 * i  # green changes per frame
        image[..., 2] = 200  # red (BGR order on disk)
        writer.write(image)
    writer.release()


def stamp_s(msg) -> float:
    return msg.header.stamp.sec + 1e-9 * msg.header.stamp.nanosec


def camera_status(array: DiagnosticArray) -> DiagnosticStatus | None:
    return next((s for s in array.status if s.name == "wrist_camera: camera"), None)


def values(status: DiagnosticStatus) -> dict[str, str]:
    return {kv.key: kv.value for kv in status.values}


def test_camera_node_publishes_a_video_at_its_rate_and_recovers_when_it_returns(processes, probe, tmp_path):
    video, away = tmp_path / "wrist.avi", tmp_path / "unplugged.avi"
    write_video(video)  # the file says 30 fps; the node plays it at the configured 15
    calibration = tmp_path / "wrist.yaml"
    calibration.write_text(CALIBRATION)
    node = processes.start_module(
        "so101_driver.hardware.camera_node",
        "--ros-args",
        "-p", f"source:={video}",
        "-p", f"fps:={FPS}",
        "-p", f"camera_info_file:={calibration}",
        "-p", "reconnect_timeout_s:=1.0",
        name="camera",
    )  # fmt: skip
    images = probe.subscribe(Image, "wrist_camera/image_raw", SENSOR_DATA)
    infos = probe.subscribe(CameraInfo, "wrist_camera/camera_info", SENSOR_DATA)
    diagnostics = probe.subscribe(DiagnosticArray, "/diagnostics", 10)
    images.wait_for(3, TIMEOUT_S, "first images")
    assert node.alive(), node.output()

    # The rate, measured over 3 s once discovery is done, from arrival times and from the capture stamps.
    start = len(images)
    time.sleep(3.0)
    window = images.messages[start:]
    arrivals = images.times[start:]
    assert len(window) >= 30, node.output()
    arrival_rate = (len(window) - 1) / (arrivals[-1] - arrivals[0])
    stamp_rate = (len(window) - 1) / (stamp_s(window[-1]) - stamp_s(window[0]))
    print(f"publish rate {arrival_rate:.2f} Hz by arrival, {stamp_rate:.2f} Hz by stamp (asked {FPS})")
    assert arrival_rate == pytest.approx(FPS, rel=0.15)
    assert stamp_rate == pytest.approx(FPS, rel=0.15)

    received = images.messages
    assert all(stamp_s(b) > stamp_s(a) for a, b in itertools.pairwise(received))
    for msg in received[-5:]:
        assert (msg.width, msg.height, msg.encoding, msg.step) == (640, 480, "rgb8", 1920)
        assert msg.header.frame_id == "wrist_camera_optical_frame"
        pixels = image_msg_to_array(msg)
        assert pixels[..., 0].mean() == pytest.approx(200, abs=4) and pixels[..., 2].mean() < 4  # RGB order

    info_by_stamp = {stamp_s(i): i for i in infos.messages}
    matched = [info_by_stamp[stamp_s(m)] for m in received[-5:] if stamp_s(m) in info_by_stamp]
    assert len(matched) >= 3, "camera_info carries the stamp of its image"
    for info in matched:
        assert (info.width, info.height, info.distortion_model) == (640, 480, "plumb_bob")
        assert info.header.frame_id == "wrist_camera_optical_frame"
        np.testing.assert_allclose(info.k, [412.5, 0.0, 318.2, 0.0, 411.9, 242.7, 0.0, 0.0, 1.0])
        np.testing.assert_allclose(info.d, [-0.31, 0.09, 0.001, -0.002, 0.0])
        np.testing.assert_allclose(info.p, [300.1, 0.0, 320.4, 0.0, 0.0, 350.2, 241.0, 0.0, 0.0, 0.0, 1.0, 0.0])

    report = wait_until(
        lambda: next(
            (s for a in diagnostics.messages if (s := camera_status(a)) and s.level == DiagnosticStatus.OK), None
        ),
        TIMEOUT_S,
        "an OK camera status on /diagnostics",
    )
    assert float(values(report)["capture_fps"]) == pytest.approx(FPS, rel=0.15)
    assert values(report)["reconnects"] == "0"

    # The camera is unplugged: publishing stops and diagnostics say so.
    os.rename(video, away)
    unplugged = time.monotonic()
    time.sleep(0.5)
    count_while_away = len(images)
    gap_start = len(diagnostics)
    time.sleep(1.5)
    assert len(images) == count_while_away, "images published while the source was away"
    away_reports = [s for a in diagnostics.messages[gap_start:] if (s := camera_status(a))]
    assert away_reports and all(s.level == DiagnosticStatus.ERROR for s in away_reports)
    assert values(away_reports[-1])["state"] == "reconnecting"

    # ... and plugged in again: publishing resumes within a few seconds, the reconnect is reported.
    os.rename(away, video)
    returned = time.monotonic()
    images.wait_for(count_while_away + 5, 5.0, "images after the source returned")
    first_new = next(t for t in images.times[count_while_away:] if t > returned)
    print(f"away {returned - unplugged:.1f} s; publishing resumed {first_new - returned:.2f} s after the file returned")
    assert first_new - returned < 3.0
    assert node.alive(), node.output()
    recovered = wait_until(
        lambda: next(
            (
                s
                for a in diagnostics.messages
                if (s := camera_status(a)) and s.level == OK and values(s)["reconnects"] == "1"
            ),
            None,
        ),
        5.0,
        "diagnostics reporting the reconnect",
    )
    assert int(values(recovered)["source_losses"]) == 1
    assert int(values(recovered)["open_failures"]) >= 1
    assert "reopened (reconnect 1)" in node.output()
