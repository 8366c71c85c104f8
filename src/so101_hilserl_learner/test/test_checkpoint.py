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
