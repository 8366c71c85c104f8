"""The reward CLIs end every expected failure with exit status 2 and one line naming the file or flag and the fix:
damaged dataset files (cut short, not a zip, a flipped byte, arrays missing or of the wrong shape or dtype, bad
metadata) for training, --test, --append and the preview; a device that cannot be used; an --out that is a file;
numeric flags outside their range (refused by argparse before any work). Never a traceback, and --append leaves a
damaged file as it was.
"""

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from so101_driver.vision.preprocessing import DEFAULT_PREPROCESSING as PRE
from so101_reward.make_dataset import main as make_dataset_main
from so101_reward.preview import main as preview_main
from so101_reward.train import main as train_main
from so101_testing.cli import refusal_line

S = PRE.output_size
META = json.dumps({"format_version": 1, "preprocessing": PRE.to_dict()})


def good_arrays() -> dict[str, np.ndarray]:
    frames = np.random.default_rng(0).integers(0, 256, (8, S, S, 3), dtype=np.uint8)
    return {
        "frames": frames,
        "labels": np.array([0, 1] * 4, np.uint8),
        "episodes": np.repeat(np.arange(4, dtype=np.int32), 2),
        "episode_names": np.array(["a", "b", "c", "d"]),
        "meta": np.array(META),
    }


def write_arrays(path: Path, **changes) -> Path:
    arrays = {**good_arrays(), **changes}
    np.savez(path, **{name: value for name, value in arrays.items() if value is not None})
    return path


def cut_short(path: Path) -> Path:
    write_arrays(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def flipped_byte(path: Path) -> Path:
    write_arrays(path)
    data = bytearray(path.read_bytes())
    data[len(data) // 3] ^= 0xFF  # inside frames.npy: its CRC no longer matches
    path.write_bytes(bytes(data))
    return path


def text_file(path: Path) -> Path:
    path.write_text("frames,labels\n")
    return path


def empty_file(path: Path) -> Path:
    path.write_bytes(b"")
    return path


# (how to damage the file, what the error line must say besides the file's name)
DAMAGED = {
    "cut short": (cut_short, "not an .npz"),
    "text file": (text_file, "not an .npz"),
    "empty file": (empty_file, "empty file"),
    "flipped byte": (flipped_byte, "damaged reward dataset"),
    "arrays missing": (lambda p: write_arrays(p, labels=None, episodes=None), "'labels', 'episodes'"),
    "frames wrong shape": (lambda p: write_arrays(p, frames=np.zeros((8, S, 5, 3), np.uint8)), "frames must be"),
    "frames float": (lambda p: write_arrays(p, frames=np.zeros((8, S, S, 3), np.float32)), "array 'frames'"),
    "labels float": (lambda p: write_arrays(p, labels=np.full(8, 0.5)), "array 'labels'"),
    "labels 256": (lambda p: write_arrays(p, labels=np.full(8, 256)), "array 'labels'"),
    "episodes float": (lambda p: write_arrays(p, episodes=np.zeros(8) + 0.5), "array 'episodes'"),
    "episodes beyond int32": (lambda p: write_arrays(p, episodes=np.full(8, 2**40)), "array 'episodes'"),
    "meta a list": (lambda p: write_arrays(p, meta=np.array("[1, 2]")), "array 'meta'"),
    "preprocessing null": (
        lambda p: write_arrays(p, meta=np.array(json.dumps({"format_version": 1, "preprocessing": None}))),
        "'preprocessing'",
    ),
}


def one_error_line(capsys, prefix: str = "") -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    assert err.count("\n") == 1, err
    assert err.startswith(prefix), err
    return err


@pytest.mark.parametrize("case", DAMAGED)
def test_train_refuses_a_damaged_dataset_in_one_line(case, tmp_path, capsys):
    damage, expected = DAMAGED[case]
    bad = damage(tmp_path / "bad.npz")
    good = write_arrays(tmp_path / "good.npz")
    for argv in (
        [str(bad), "--out", str(tmp_path / "model")],
        [str(good), "--test", str(bad), "--out", str(tmp_path / "model")],
    ):
        assert train_main([*argv, "--epochs", "1", "--no-progress", "--device", "cpu"]) == 2
        line = one_error_line(capsys, "error: ")
        assert str(bad) in line and expected in line, line
    assert not (tmp_path / "model").exists()  # nothing written for a run that never started


@pytest.mark.parametrize("case", DAMAGED)
def test_append_to_a_damaged_dataset_is_refused_and_leaves_it(case, tmp_path, capsys):
    damage, expected = DAMAGED[case]
    bad = damage(tmp_path / "bad.npz")
    before = bad.read_bytes()
    root = tmp_path / "images"  # a valid source, so only the --append target can be wrong
    (root / "success").mkdir(parents=True)
    cv2.imwrite(str(root / "success" / "s.png"), np.zeros((PRE.source_height, PRE.source_width, 3), np.uint8))
    status = make_dataset_main(["folders", str(root), "--out", str(bad), "--append", "--no-progress"])
    assert status == 2
    line = one_error_line(capsys, "make_dataset: error: ")
    assert str(bad) in line and expected in line, line
    assert bad.read_bytes() == before


def test_preview_refuses_a_damaged_dataset(tmp_path, capsys):
    model = tmp_path / "model"
    good = write_arrays(tmp_path / "good.npz")
    assert train_main([str(good), "--out", str(model), "--epochs", "1", "--no-progress", "--device", "cpu"]) == 0
    capsys.readouterr()
    bad = cut_short(tmp_path / "bad.npz")
    assert preview_main([str(model), str(bad), "--out", str(tmp_path / "preview")]) == 2
    line = one_error_line(capsys, "preview: error: ")
    assert str(bad) in line and "not an .npz" in line


def test_train_on_cuda_without_cuda_says_so(tmp_path, capsys, monkeypatch):
    # The machine may have a GPU: the trainer is asked as if it had none (torch's own answer is what it reads).
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    good = write_arrays(tmp_path / "good.npz")
    assert train_main([str(good), "--out", str(tmp_path / "m"), "--device", "cuda", "--no-progress"]) == 2
    line = one_error_line(capsys, "error: ")
    assert "--device cuda" in line and "CUDA is not available" in line and "--device cpu" in line
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize(("device", "expected"), [("foo", "not a torch device"), ("mps", "cpu or cuda")])
def test_train_refuses_an_unknown_device(device, expected, tmp_path, capsys):
    good = write_arrays(tmp_path / "good.npz")
    assert train_main([str(good), "--out", str(tmp_path / "m"), "--device", device, "--no-progress"]) == 2
    line = one_error_line(capsys, "error: ")
    assert f"--device {device!r}" in line and expected in line


@pytest.mark.parametrize("out", ["a_file", "a_file/model"])
def test_train_out_that_cannot_be_a_directory_is_refused_before_training(out, tmp_path, capsys):
    good = write_arrays(tmp_path / "good.npz")
    (tmp_path / "a_file").write_text("not a directory")
    target = tmp_path / out
    assert train_main([str(good), "--out", str(target), "--device", "cpu", "--no-progress"]) == 2
    line = one_error_line(capsys, "error: ")
    assert f"--out {target}" in line


@pytest.mark.parametrize(
    ("main", "argv", "flag"),
    [
        (train_main, ["d.npz", "--out", "m", "--epochs", "-1"], "--epochs"),
        (train_main, ["d.npz", "--out", "m", "--batch-size", "0"], "--batch-size"),
        (train_main, ["d.npz", "--out", "m", "--lr", "nan"], "--lr"),
        (train_main, ["d.npz", "--out", "m", "--val-fraction", "1"], "--val-fraction"),
        (train_main, ["d.npz", "--out", "m", "--patience", "0"], "--patience"),
        (make_dataset_main, ["sim", "--out", "x.npz", "--episodes", "0"], "--episodes"),
        (make_dataset_main, ["sim", "--out", "x.npz", "--steps", "-3"], "--steps"),
        (preview_main, ["m", "d.npz", "--out", "p", "--fps", "0"], "--fps"),
        (preview_main, ["m", "d.npz", "--out", "p", "--max-frames", "-1"], "--max-frames"),
        (preview_main, ["m", "d.npz", "--out", "p", "--threshold", "1.5"], "--threshold"),
    ],
)
def test_numeric_flags_out_of_range_are_refused_by_argparse(main, argv, flag, capsys):
    line = refusal_line(main, argv, capsys)
    assert f"error: argument {flag}: " in line and "not allowed" in line, line


class _RunsCode:
    def __reduce__(self):
        return (print, ("code from a weights file ran",))


@pytest.mark.parametrize(
    ("name", "write", "expected"),
    [
        ("cut.safetensors", lambda p: p.write_bytes(b"\x01\x00"), "not a readable safetensors file"),
        ("objects.pth", lambda p: torch.save({"w": _RunsCode()}, p), "nothing in it was run"),
    ],
)
def test_train_refuses_bad_backbone_weights_in_one_line(tmp_path, capsys, name, write, expected):
    good = write_arrays(tmp_path / "good.npz")
    weights = tmp_path / name
    write(weights)
    argv = [str(good), "--out", str(tmp_path / "m"), "--architecture", "resnet10", "--backbone-weights", str(weights)]
    assert train_main([*argv, "--device", "cpu", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "code from a weights file ran" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {weights}: ") and expected in lines[0], err
