"""Check a dataset written by LeRobot's writer against the ticks it was made from, with LeRobot's formulas.

Runs in the PROJECT venv (numpy only, plus the project's JointConversion as a second opinion). Input: the truth .npz
of tools/lerobot/make_sim_frames.py and the dump of tools/lerobot/read_dataset.py. ``observation.state`` must equal,
bit for bit in float32, LeRobot's normalisation of the ticks with the calibration (mid = (min + max) / 2):
DEGREES (ticks - mid) * 360 / 4095; RANGE_M100_100 (clamp(ticks) - min) / (max - min) * 200 - 100; gripper
RANGE_0_100 (clamp(ticks) - min) / (max - min) * 100 (drive_mode 0; 1 mirrors them); ``action`` is the next frame's
state. It also checks the layout lerobot-record gives an SO-101, the indices and timestamps, the radians the values
stand for, and (with ``--frames``) that the decoded wrist video matches the rendered images.

    python tools/lerobot/check_fixture_values.py --truth truth.npz --dump dump.npz --norm degrees
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

MOTORS = ("shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper")
NAMES = [f"{motor}.pos" for motor in MOTORS]
IMAGE_KEY = "observation.images.wrist"
MIN_PSNR_DB = 30.0  # AV1 at LeRobot's default CRF 30 on the simulated scene gives ~40 dB


def lerobot_values(ticks: np.ndarray, calibration: dict, norm: str) -> np.ndarray:
    """LeRobot's MotorsBus._normalize, written out from its formulas, in float64 then float32 as the dataset stores."""
    out = np.zeros(ticks.shape, dtype=np.float64)
    for j, motor in enumerate(MOTORS):
        cal = calibration[motor]
        low, high, drive = cal["range_min"], cal["range_max"], cal["drive_mode"]
        t = ticks[:, j].astype(np.float64)
        bounded = np.minimum(high, np.maximum(low, t))
        if motor == "gripper":
            value = (bounded - low) / (high - low) * 100
            out[:, j] = 100 - value if drive else value
        elif norm == "degrees":
            out[:, j] = (t - (low + high) / 2) * 360 / 4095
        else:
            value = (bounded - low) / (high - low) * 200 - 100
            out[:, j] = -value if drive else value
    return out.astype(np.float32)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def check(truth: dict, dump: dict, norm: str, frames: dict | None = None) -> list[str]:
    """The list of failures (empty: the dataset is what LeRobot's formulas say it must be)."""
    failures = []
    meta = json.loads(str(dump["meta"]))
    calibration = json.loads(str(truth["calibration_json"]))
    ticks, lengths, fps = truth["ticks"], truth["lengths"], int(truth["fps"])
    n = len(ticks)

    def expect(ok: bool, message: str) -> None:
        if not ok:
            failures.append(message)

    features = meta["features"]
    expect(meta["codebase_version"] == "v3.0", f"codebase_version {meta['codebase_version']}, expected v3.0")
    expect(meta["fps"] == fps, f"fps {meta['fps']}, expected {fps}")
    expect(meta["robot_type"] == "so_follower", f"robot_type {meta['robot_type']!r}, expected 'so_follower'")
    expect(meta["total_frames"] == n and meta["total_episodes"] == len(lengths), "totals differ from the truth")
    for key in ("observation.state", "action"):
        ft = features.get(key, {})
        expect(ft.get("dtype") == "float32" and list(ft.get("shape", [])) == [6], f"{key}: {ft}, expected float32[6]")
        expect(ft.get("names") == NAMES, f"{key} names {ft.get('names')}, expected {NAMES}")
    image = features.get(IMAGE_KEY, {})
    expect(
        image.get("dtype") == "video"
        and list(image.get("shape", [])) == [480, 640, 3]
        and image.get("names") == ["height", "width", "channels"],
        f"{IMAGE_KEY}: {image}, expected video [480, 640, 3] (height, width, channels)",
    )
    if failures:
        return failures

    episode = np.repeat(np.arange(len(lengths)), lengths)
    frame = np.concatenate([np.arange(length) for length in lengths])
    expect(np.array_equal(dump["episode_index"], episode), "episode_index differs from the episode lengths")
    expect(np.array_equal(dump["frame_index"], frame), "frame_index is not 0..T-1 in each episode")
    expect(np.array_equal(dump["index"], np.arange(n)), "index is not 0..N-1")
    expect(
        np.allclose(dump["timestamp"], (frame / fps).astype(np.float32), atol=1e-6), "timestamp != frame_index / fps"
    )
    expect(len(set(dump["task"].tolist())) == 1 and dump["task"][0] != "", f"tasks {set(dump['task'].tolist())}")

    state = dump["observation.state"]
    expected = lerobot_values(ticks, calibration, norm)
    if not np.array_equal(state, expected):
        worst = np.unravel_index(np.argmax(np.abs(state - expected)), state.shape)
        failures.append(
            f"observation.state != LeRobot's {norm} formulas: frame {worst[0]} {NAMES[worst[1]]} "
            f"{state[worst]!r} vs {expected[worst]!r}"
        )
    nxt = np.arange(n) + 1
    ends = np.cumsum(lengths) - 1
    nxt[ends] = ends  # the last frame of an episode holds its own pose
    expect(np.array_equal(dump["action"], expected[nxt]), "action is not the next frame's follower values")

    from so101_driver.hardware.calibration import JointConversion, calibration_from_dict

    conversion = JointConversion(calibration_from_dict(calibration))
    project = np.array(
        [list(conversion.ticks_to_lerobot(t, use_degrees=norm == "degrees").values()) for t in ticks], np.float32
    )
    expect(np.array_equal(project, expected), "the project's JointConversion disagrees with LeRobot's formulas")
    if norm == "degrees":
        radians = np.deg2rad(state.astype(np.float64))  # the project's URDF angles: deg2rad of every value
        half_tick = np.abs(conversion.radians_per_tick) / 2 + 1e-6
        error = np.abs(radians - truth["radians"])
        clamped = truth["radians"][:, 5] < 0  # the gripper's value is clamped at its range_min
        error[clamped, 5] = 0
        expect(bool((error <= half_tick).all()), f"radians off by up to {error.max():.5f} (> half a tick)")

    if frames is not None and IMAGE_KEY in dump:
        quality = psnr(dump[IMAGE_KEY], frames["images"])
        expect(quality >= MIN_PSNR_DB, f"decoded video PSNR {quality:.1f} dB < {MIN_PSNR_DB} dB")
    return failures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--truth", type=Path, required=True, help="truth .npz (make_sim_frames.py)")
    parser.add_argument("--dump", type=Path, required=True, help="read_dataset.py's .npz of the dataset")
    parser.add_argument("--norm", choices=("degrees", "range_m100_100"), required=True)
    parser.add_argument("--frames", type=Path, help="frames .npz with the rendered images to compare the video with")
    args = parser.parse_args(argv)
    with np.load(args.truth) as t, np.load(args.dump) as d:
        truth = {k: t[k] for k in t.files}
        dump = {k: d[k] for k in d.files}
    frames = None
    if args.frames is not None:
        with np.load(args.frames) as f:
            frames = {"images": f["images"]}
    failures = check(truth, dump, args.norm, frames)
    for failure in failures:
        print(f"check_fixture_values: {args.dump.name} ({args.norm}): {failure}", file=sys.stderr)
    if not failures:
        video = f", video PSNR {psnr(dump[IMAGE_KEY], frames['images']):.1f} dB" if frames and IMAGE_KEY in dump else ""
        print(f"check_fixture_values: {args.dump}: {len(truth['ticks'])} frames match LeRobot's {args.norm}{video}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
