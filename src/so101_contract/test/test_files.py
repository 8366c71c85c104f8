"""Atomic writes: the new file whole, or the old one untouched, never half; no temporary file left behind."""

import os
import stat

import pytest

from so101_contract.files import atomic_write, atomic_write_bytes, atomic_write_text


def test_writes_replace_the_file_with_usual_permissions(tmp_path):
    path = tmp_path / "weights.bin"
    atomic_write_bytes(path, b"old")
    atomic_write_bytes(path, b"new")
    assert path.read_bytes() == b"new"
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask  # not mkstemp's private 0600
    atomic_write_text(tmp_path / "run_id", "abc\n")
    assert (tmp_path / "run_id").read_text() == "abc\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run_id", "weights.bin"]


def test_a_failing_writer_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "model.json"
    path.write_text("old")

    def half_then_crash(tmp: str) -> None:
        with open(tmp, "w") as handle:
            handle.write("{half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic_write(path, half_then_crash)
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["model.json"]


def test_a_path_without_a_directory_part_writes_in_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    atomic_write_bytes("plain.bin", b"x")
    assert (tmp_path / "plain.bin").read_bytes() == b"x"
