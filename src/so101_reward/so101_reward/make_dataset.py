"""Command line: make a reward-classifier dataset (.npz) from image folders, labelled bags or the simulation.

    python -m so101_reward.make_dataset folders ~/grasp_images --out data/reward.npz
    python -m so101_reward.make_dataset bags ~/bags/labels.json --out data/reward.npz --append
    python -m so101_reward.make_dataset sim --episodes 60 --steps 60 --out data/sim_reward.npz

--append adds to an existing dataset made with the same preprocessing; bad input ends with exit status 2 and a
one-line error. ``SOURCE --help`` shows each source's format, from the docstrings of the functions that read it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from so101_contract.cli import positive_int
from so101_driver.vision.preprocessing import DEFAULT_PREPROCESSING, ImagePreprocessing, PreprocessingError
from so101_reward.dataset import DatasetError, RewardDataset, concatenate

EXIT_BAD_INPUT = 2


def _doc_section(reader: str) -> str:
    """The format part (after the summary line) of a so101_reward.sources reader's docstring: the formats are
    described once, next to the code that reads them, and shown by --help."""
    import inspect

    from so101_reward import sources

    text = inspect.getdoc(getattr(sources, reader)) or ""
    body = text.split("\n\n", 1)[1]
    body = "\n".join(line for line in body.splitlines() if line.strip() != "::")
    return body.replace("::\n", ":\n").strip("\n")


def _sim_help() -> str:
    """The recording paragraph of so101_reward.sim_dataset's docstring and the scenarios of its ``Scenario`` class,
    read without importing MuJoCo for --help."""
    import ast
    import importlib.util

    origin = importlib.util.find_spec("so101_reward.sim_dataset").origin
    tree = ast.parse(Path(origin).read_text())
    recording = (ast.get_docstring(tree) or "").split("\n\n")[1]
    scenario = next(node for node in tree.body if isinstance(node, ast.ClassDef) and node.name == "Scenario")
    scenarios = (ast.get_docstring(scenario) or "").split("\n\n", 1)[1]
    return f"{recording}\n\n{scenarios}".strip()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m so101_reward.make_dataset",
        description=(
            "Make a reward-classifier dataset: raw wrist-camera frames through the project's one preprocessing, "
            "a 0/1 success label per frame and the episode each frame belongs to, saved as one .npz. "
            "Sources: 'folders' (labelled image folders), 'bags' (rosbag2 bags + a JSON label file), 'sim' "
            "(auto-labelled simulation). 'python -m so101_reward.make_dataset SOURCE --help' explains each format."
        ),
    )
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--out", required=True, type=Path, help="the dataset file to write (.npz)")
    common.add_argument(
        "--append",
        action="store_true",
        help="add the new frames to the dataset already at --out (same preprocessing required) instead of replacing it",
    )
    common.add_argument(
        "--preprocessing",
        type=Path,
        help="JSON file with ImagePreprocessing fields (crop_x, crop_y, crop_width, crop_height, output_size, "
        "source_width, source_height); default: the project's DEFAULT_PREPROCESSING",
    )
    common.add_argument("--no-progress", action="store_true", help="no progress bar")
    sub = parser.add_subparsers(dest="source", required=True, metavar="{folders,bags,sim}")
    fmt = argparse.RawDescriptionHelpFormatter

    folders = sub.add_parser(
        "folders",
        parents=[common],
        formatter_class=fmt,
        help="labelled image folders root/success/** and root/failure/**",
        description=_doc_section("from_image_folders"),
    )
    folders.add_argument("root", type=Path, help="the folder holding success/ and failure/ (or positive/, negative/)")

    bags = sub.add_parser(
        "bags",
        parents=[common],
        formatter_class=fmt,
        help="rosbag2 bags (MCAP or sqlite3) labelled by a JSON file",
        description=_doc_section("from_labelled_bags"),
    )
    bags.add_argument("label_file", type=Path, help="the JSON label file; bag paths in it are relative to it")
    bags.add_argument(
        "--topic", help="image topic, overriding the label file's 'topic' (default /wrist_camera/image_raw)"
    )

    sim = sub.add_parser(
        "sim",
        parents=[common],
        formatter_class=fmt,
        help="auto-labelled frames from the MuJoCo simulation",
        description=_sim_help(),
    )
    sim.add_argument("--episodes", type=positive_int, default=60, help="episodes to record (default 60)")
    sim.add_argument(
        "--steps", type=positive_int, default=60, help="control steps (= frames) per episode at 10 Hz (default 60)"
    )
    sim.add_argument("--seed", type=int, default=0, help="seed of the run; each episode gets its own (default 0)")
    sim.add_argument(
        "--scenarios",
        help="comma-separated cycle of scenarios (grasp, near_miss, air_close, touch, no_cube); "
        "default grasp,near_miss,air_close,grasp,touch,no_cube",
    )
    return parser


def _load_preprocessing(path: Path | None) -> ImagePreprocessing:
    if path is None:
        return DEFAULT_PREPROCESSING
    try:
        return ImagePreprocessing.from_dict(json.loads(path.read_text()))
    except (OSError, ValueError, TypeError) as err:
        raise DatasetError(f"--preprocessing {path}: {err}") from None


def _make(args: argparse.Namespace, preprocessing: ImagePreprocessing) -> RewardDataset:
    progress = not args.no_progress
    if args.source == "folders":
        from so101_reward.sources import from_image_folders

        return from_image_folders(args.root, preprocessing, progress=progress)
    if args.source == "bags":
        from so101_reward.sources import from_labelled_bags

        return from_labelled_bags(args.label_file, preprocessing, topic=args.topic, progress=progress)
    from so101_reward.sim_dataset import DEFAULT_CYCLE, record_sim_dataset

    if args.episodes < 1 or args.steps < 1:
        raise DatasetError(f"--episodes and --steps must be >= 1, got {args.episodes} and {args.steps}")
    scenarios = DEFAULT_CYCLE if not args.scenarios else tuple(s.strip() for s in args.scenarios.split(","))
    return record_sim_dataset(args.episodes, args.steps, args.seed, scenarios, progress, preprocessing)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.out.suffix != ".npz":
            raise DatasetError(f"--out {args.out}: a reward dataset file ends in .npz")
        if args.out.is_dir():  # found now, not after the frames were made
            raise DatasetError(f"--out {args.out}: is a folder; give the .npz file to write")
        preprocessing = _load_preprocessing(args.preprocessing)
        existing = None
        if args.append and args.out.exists():
            existing = RewardDataset.load(args.out)
            if existing.preprocessing != preprocessing:
                raise DatasetError(
                    f"--append: {args.out} was made with preprocessing {existing.preprocessing.to_dict()}, this run "
                    f"uses {preprocessing.to_dict()}; pass the same --preprocessing or write a new file"
                )
        dataset = _make(args, preprocessing)
        if existing is not None:
            print(f"existing {args.out}: {existing.summary()}")
            print(f"new: {dataset.summary()}")
            dataset = concatenate([existing, dataset])
        try:
            dataset.save(args.out)
        except OSError as err:
            cause = f"{err.strerror}: {err.filename}" if err.strerror and err.filename else str(err)
            raise DatasetError(f"--out {args.out}: cannot write it ({cause}); give a writable path") from None
    except (DatasetError, PreprocessingError, ValueError, OSError) as err:
        print(f"make_dataset: error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(f"wrote {args.out}: {dataset.summary()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
