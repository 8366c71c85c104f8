import os
import subprocess
import sys
import textwrap
import time

import pytest
import torch

from so101_hilserl_learner.checkpoint import (
    CheckpointError,
    flatten_state,
    load_latest_checkpoint,
    save_checkpoint,
    unflatten_state,
)


def optimiser_state():
    net = torch.nn.Linear(3, 2)
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3)
    net(torch.ones(1, 3)).sum().backward()
    opt.step()
    return {"net": net.state_dict(), "opt": opt.state_dict(), "counters": {"updates": 7, "version": 2}}


def test_nested_state_round_trip_without_pickle(tmp_path):
    state = optimiser_state()
    tensors, skeleton = flatten_state(state)
    back = unflatten_state(tensors, skeleton)
    assert back["counters"] == {"updates": 7, "version": 2}
    assert back["opt"]["param_groups"][0]["lr"] == 1e-3
    assert set(back["opt"]["state"]) == set(state["opt"]["state"])  # int keys survive
    torch.testing.assert_close(back["opt"]["state"][0]["exp_avg"], state["opt"]["state"][0]["exp_avg"])

    save_checkpoint(tmp_path, 7, state)
    step, loaded = load_latest_checkpoint(tmp_path)
    assert step == 7
    restored = torch.optim.AdamW(torch.nn.Linear(3, 2).parameters(), lr=0.5)
    restored.load_state_dict(loaded["opt"])  # the optimiser accepts what comes back
    assert restored.param_groups[0]["lr"] == 1e-3


def test_objects_that_would_need_pickle_are_refused(tmp_path):
    with pytest.raises(CheckpointError, match="without pickling"):
        save_checkpoint(tmp_path, 1, {"bad": object()})


def test_keeps_the_newest_and_falls_back_from_a_corrupt_latest(tmp_path):
    for step in (1, 2, 3, 4):
        save_checkpoint(tmp_path, step, {"w": torch.full((4,), float(step))}, keep=2)
    assert sorted(p.name for p in tmp_path.glob("ckpt-*")) == ["ckpt-000000003", "ckpt-000000004"]
    (tmp_path / "ckpt-000000004" / "state.safetensors").write_bytes(b"garbage")
    step, state = load_latest_checkpoint(tmp_path)
    assert step == 3 and state["w"][0] == 3.0


def test_sigkill_during_writes_never_leaves_a_checkpoint_that_loads_wrong(tmp_path):
    """Kill a process that writes 8 MB checkpoints back to back, at several moments: what loads is always whole."""
    script = textwrap.dedent(
        f"""
        import torch
        from so101_hilserl_learner.checkpoint import load_latest_checkpoint, save_checkpoint
        latest = load_latest_checkpoint({str(tmp_path)!r})
        step = latest[0] if latest else 0  # resume, as the learner does
        while True:
            step += 1
            save_checkpoint({str(tmp_path)!r}, step, {{"w": torch.full((2_000_000,), float(step)), "step": step}})
            print(step, flush=True)
        """
    )
    seen = 0
    for delay in (0.05, 0.17, 0.29):
        writer = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
        writer.stdout.readline()  # at least one checkpoint exists
        time.sleep(delay)
        os.kill(writer.pid, 9)
        writer.wait(timeout=10)
        step, state = load_latest_checkpoint(tmp_path)
        assert state["step"] == step and bool((state["w"] == float(step)).all())  # consistent, whole
        assert step >= seen  # never goes back past what was completed before
        seen = step
        assert not list(tmp_path.glob(".tmp-*"))  # interrupted writes are cleaned at load


# ---- integrity (issue 15): checksums, non-finite state, dangling LATEST ----


def change_one_float(path, index=1, value=123.5):
    """Overwrite one float32 of the first tensor in a safetensors file, in place (header and size untouched)."""
    import json
    import struct

    data = bytearray(path.read_bytes())
    header_size = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8 : 8 + header_size])
    start = min(v["data_offsets"][0] for k, v in header.items() if k != "__metadata__" and v["dtype"] == "F32")
    offset = 8 + header_size + start + 4 * index
    data[offset : offset + 4] = struct.pack("<f", value)
    path.write_bytes(bytes(data))


def test_one_changed_float_is_detected_and_the_previous_checkpoint_is_used(tmp_path):
    from so101_hilserl_learner.checkpoint import load_checkpoint, load_newest_good

    save_checkpoint(tmp_path, 1, {"w": torch.full((8,), 1.0)})
    newest = save_checkpoint(tmp_path, 2, {"w": torch.full((8,), 2.0)})
    change_one_float(newest / "state.safetensors")
    with pytest.raises(CheckpointError, match=r"ckpt-000000002: state.safetensors does not match its SHA-256"):
        load_checkpoint(newest)
    loaded = load_newest_good(tmp_path, set_aside=True)
    assert loaded.step == 1 and bool((loaded.state["w"] == 1.0).all())
    assert [name for name, _ in loaded.refused] == ["ckpt-000000002"] and "SHA-256" in loaded.refused[0][1]
    # the refused one is kept for inspection, out of rotation, and LATEST names the one in use
    assert (tmp_path / "refused-ckpt-000000002").is_dir() and not newest.exists()
    assert (tmp_path / "LATEST").read_text().strip() == "ckpt-000000001"
    assert load_latest_checkpoint(tmp_path)[0] == 1


def test_a_changed_counter_in_the_json_is_detected(tmp_path):
    path = save_checkpoint(tmp_path, 5, {"w": torch.ones(2), "counters": {"updates": 5}})
    meta = path / "state.json"
    meta.write_text(meta.read_text().replace('"updates", 5', '"updates", 6'))
    with pytest.raises(CheckpointError, match="state.json does not match"):
        load_latest_checkpoint(tmp_path)


def test_a_checkpoint_without_manifest_is_refused(tmp_path):
    path = save_checkpoint(tmp_path, 5, {"w": torch.ones(2)})
    (path / "manifest.json").unlink()
    with pytest.raises(CheckpointError, match="no manifest.json"):
        load_latest_checkpoint(tmp_path)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_state_is_not_written_and_the_previous_one_stays(tmp_path, bad):
    from so101_hilserl_learner.checkpoint import NonFiniteStateError

    state = optimiser_state()
    save_checkpoint(tmp_path, 7, state)
    state["opt"]["state"][0]["exp_avg_sq"][0, 1] = bad  # one poisoned optimiser moment, as after a diverged update
    with pytest.raises(NonFiniteStateError, match=r"opt\.state\.0\.exp_avg_sq: 1 non-finite value"):
        save_checkpoint(tmp_path, 8, state)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["LATEST", "ckpt-000000007"]  # nothing else on disk
    assert load_latest_checkpoint(tmp_path)[0] == 7
    with pytest.raises(NonFiniteStateError, match="lr"):  # a plain number counts too
        save_checkpoint(tmp_path, 9, {"w": torch.ones(1), "lr": bad})


def test_a_nan_checkpoint_on_disk_is_refused_and_the_previous_good_one_used(tmp_path):
    """A NaN written by some other path (an older version, a hand edit with a valid checksum) is refused at load."""
    import hashlib
    import json

    from safetensors.torch import save_file

    from so101_hilserl_learner.checkpoint import load_newest_good

    save_checkpoint(tmp_path, 1, {"w": torch.full((4,), 1.0)})
    path = save_checkpoint(tmp_path, 2, {"w": torch.full((4,), 2.0)})
    save_file({"w": torch.tensor([2.0, float("nan"), 2.0, 2.0])}, str(path / "state.safetensors"))
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["sha256"]["state.safetensors"] = hashlib.sha256((path / "state.safetensors").read_bytes()).hexdigest()
    (path / "manifest.json").write_text(json.dumps(manifest))
    loaded = load_newest_good(tmp_path)
    assert loaded.step == 1 and loaded.refused[0][0] == "ckpt-000000002"
    assert "w: 1 non-finite value(s)" in loaded.refused[0][1]
    assert path.is_dir()  # without set_aside (inspect), nothing on disk changes


def test_dangling_latest_is_an_error_with_the_fix(tmp_path):
    from so101_hilserl_learner.checkpoint import DanglingLatestError

    save_checkpoint(tmp_path, 1, {"w": torch.ones(2)})
    newest = save_checkpoint(tmp_path, 2, {"w": torch.ones(2)})
    shutil_rmtree(newest)
    with pytest.raises(DanglingLatestError) as err:
        load_latest_checkpoint(tmp_path)
    text = str(err.value)
    assert "\n" not in text and "names ckpt-000000002, which is not there" in text
    assert "checkpoints present: ckpt-000000001" in text and "delete LATEST" in text
    shutil_rmtree(tmp_path / "ckpt-000000001")  # all deleted: still an error, not a fresh start
    with pytest.raises(DanglingLatestError, match="checkpoints present: none"):
        load_latest_checkpoint(tmp_path)
    (tmp_path / "LATEST").unlink()  # the documented fix
    assert load_latest_checkpoint(tmp_path) is None


def test_all_checkpoints_bad_is_an_error_and_nothing_is_moved(tmp_path):
    from so101_hilserl_learner.checkpoint import load_newest_good

    for step in (1, 2):
        (save_checkpoint(tmp_path, step, {"w": torch.ones(4)}) / "manifest.json").write_text("{")
    with pytest.raises(CheckpointError, match="no good checkpoint.*move the directory aside"):
        load_newest_good(tmp_path, set_aside=True)
    assert sorted(p.name for p in tmp_path.glob("ckpt-*")) == ["ckpt-000000001", "ckpt-000000002"]


def test_pruning_never_removes_the_checkpoint_just_written(tmp_path):
    """After a fall-back to step 1 (a refused step 5 still named higher), the new step 2 is kept, not step 5."""
    for step in (1, 5):
        save_checkpoint(tmp_path, step, {"w": torch.ones(1)})
    save_checkpoint(tmp_path, 2, {"w": torch.ones(1)}, keep=1)
    assert [p.name for p in tmp_path.glob("ckpt-*")] == ["ckpt-000000002"]
    assert load_latest_checkpoint(tmp_path)[0] == 2


def shutil_rmtree(path):
    import shutil

    shutil.rmtree(path)


def test_inspect_reports_refused_checkpoints_and_a_dangling_latest(tmp_path, capsys):
    from so101_hilserl_learner.weight_files.checkpoint_tool import main

    directory = tmp_path / "checkpoints"
    state = {"w": torch.ones(3), "counters": {"updates": 1}, "policy_config": "{}"}
    save_checkpoint(directory, 1, state)
    change_one_float(save_checkpoint(directory, 2, state) / "state.safetensors", index=0)
    assert main(["inspect", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "newest: 1 updates (ckpt-000000001, what the learner loads)" in out
    assert "refused: ckpt-000000002: state.safetensors does not match its SHA-256" in out
    assert (directory / "ckpt-000000002").is_dir()  # inspect reads only
    shutil_rmtree(directory / "ckpt-000000002")
    assert main(["inspect", str(tmp_path)]) == 0
    assert "checkpoints: " + str(directory / "LATEST") + " names ckpt-000000002, which is not there" in (
        capsys.readouterr().out
    )
