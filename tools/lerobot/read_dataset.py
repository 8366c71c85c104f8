"""Read a local LeRobotDataset folder with the real LeRobot and dump every frame to an .npz.

Runs in the LeRobot venv (scripts/lerobot_venv.sh). This is the conformance check of the project's exporter: what
the project writes must open with ``LeRobotDataset(repo_id, root=FOLDER)`` (offline: HF_HUB_OFFLINE=1) and decode.
The .npz holds, in dataset order, every non-visual feature LeRobot returns (``observation.state``, ``action``,
``next.reward``, ``next.done``, ``complementary_info.*``, ``timestamp``, ``frame_index``, ``episode_index``, ``index``,
``task_index``), each visual feature as uint8 [N, H, W, C] under its own key, ``task`` (str [N]) and ``meta``: a JSON
string of the dataset's fps, robot_type, codebase_version, totals, tasks and features.

    .venv-lerobot/bin/python tools/lerobot/read_dataset.py FOLDER --out dump.npz [--no-images]

Exit 0 and a summary on stdout; exit 1 and one line ``read_dataset: LeRobot refused FOLDER: ...`` on stderr when
LeRobot cannot open or decode it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"  # a local folder: a missing file must fail, not be downloaded

import numpy as np

VISUAL = ("video", "image")


def to_numpy(value) -> np.ndarray:
    """A tensor, number or bool from a LeRobot item as a numpy array."""
    if hasattr(value, "numpy"):
        return value.detach().cpu().numpy()
    return np.asarray(value)


def read(folder: Path, repo_id: str, images: bool, video_backend: str | None) -> tuple[dict, dict]:
    """(arrays for the .npz, meta) of every frame of the dataset at ``folder``, as LeRobot returns them."""
    from lerobot.datasets import LeRobotDataset

    dataset = LeRobotDataset(repo_id, root=folder, video_backend=video_backend, return_uint8=True)
    features = dataset.meta.features
    visual = [key for key, ft in features.items() if ft["dtype"] in VISUAL]
    scalar = [key for key, ft in features.items() if ft["dtype"] not in (*VISUAL, "string")]
    columns: dict[str, list] = {key: [] for key in scalar + (visual if images else [])}
    tasks = []
    for i in range(len(dataset)):
        item = dataset[i]
        for key in scalar:
            columns[key].append(to_numpy(item[key]))
        if images:
            for key in visual:
                columns[key].append(np.moveaxis(to_numpy(item[key]), 0, -1))  # CHW -> HWC
        tasks.append(item.get("task", ""))
    arrays = {key: np.stack(values) if values else np.zeros((0,)) for key, values in columns.items()}
    for key in visual if images else []:
        if arrays[key].dtype != np.uint8:
            raise TypeError(f"{key} decoded as {arrays[key].dtype}, expected uint8 with return_uint8=True")
    arrays["task"] = np.array(tasks, dtype=str)
    tasks_table = dataset.meta.tasks
    meta = {
        "codebase_version": dataset.meta.info.get("codebase_version"),
        "fps": dataset.fps,
        "robot_type": dataset.meta.robot_type,
        "total_episodes": dataset.meta.total_episodes,
        "total_frames": dataset.meta.total_frames,
        "tasks": {str(task): int(row["task_index"]) for task, row in tasks_table.iterrows()},
        "features": features,
        "video_backend": getattr(dataset, "_video_backend", video_backend) if visual else None,
    }
    return arrays, meta


def describe(arrays: dict, meta: dict) -> str:
    lines = [
        f"LeRobot {meta['codebase_version']} dataset: robot_type {meta['robot_type']}, fps {meta['fps']}, "
        f"{meta['total_episodes']} episodes, {meta['total_frames']} frames, tasks {list(meta['tasks'])}"
    ]
    for key, ft in meta["features"].items():
        got = arrays.get(key)
        read_as = f"read {got.dtype}{list(got.shape)}" if got is not None else "not dumped"
        lines.append(f"  {key}: {ft['dtype']} {ft['shape']} names={ft.get('names')} -> {read_as}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path, help="the dataset root (holds meta/info.json)")
    parser.add_argument("--out", type=Path, help="the .npz to write")
    parser.add_argument("--repo-id", default=None, help="default: local/<folder name>")
    parser.add_argument("--no-images", action="store_true", help="skip decoding the videos")
    parser.add_argument(
        "--video-backend",
        default="pyav",
        help="LeRobot's video_backend: pyav (default: same decoding everywhere; torchcodec needs a system FFmpeg) "
        "or torchcodec",
    )
    args = parser.parse_args(argv)
    repo_id = args.repo_id or f"local/{args.folder.resolve().name}"
    try:
        arrays, meta = read(args.folder, repo_id, not args.no_images, args.video_backend)
    except Exception as exc:  # whatever LeRobot raises: this tool's answer is "refused, because"
        reason = " ".join(str(exc).split()) or repr(exc)
        print(f"read_dataset: LeRobot refused {args.folder}: {type(exc).__name__}: {reason}", file=sys.stderr)
        return 1
    print(describe(arrays, meta))
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        np.savez(args.out, meta=np.array(json.dumps(meta)), **arrays)
    return 0


if __name__ == "__main__":
    sys.exit(main())
