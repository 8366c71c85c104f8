"""The learner's checkpoints under faults, over real DDS (issue 15): a diverged run (NaN weights) exits 1 without
writing a NaN checkpoint; a restart refuses a checkpoint with one changed float and falls back to the previous good
one, saying which and why; a LATEST naming a checkpoint that is gone stops the start with the fix (exit 2)."""

from __future__ import annotations

import signal

from std_srvs.srv import Trigger
from test_checkpoint import change_one_float
from test_learner_node import episode_messages, latest, learner_args, send_episodes

from so101_contract import qos
from so101_hilserl_interfaces.msg import LearnerStats, PolicyWeights
from so101_hilserl_learner.checkpoint import load_checkpoint
from so101_testing.graph import wait_until

LEARNER = "so101_hilserl_learner.learner_node"


def checkpoint_at(probe, stats, updates: int) -> str:
    """Wait until the learner has done ``updates`` (nothing owed), then have it write a checkpoint."""
    wait_until(lambda: latest(stats) and latest(stats).updates == updates and latest(stats).update_backlog == 0,
               120, f"{updates} updates")  # fmt: skip
    reply = probe.call(Trigger, "learner/checkpoint", Trigger.Request(), timeout_s=90)
    assert reply.success, reply.message
    return f"ckpt-{updates:09d}"


def test_divergence_fallback_and_dangling_latest(processes, probe, tmp_path):
    run_dir = tmp_path / "run"
    checkpoints = run_dir / "checkpoints"
    stats = probe.subscribe(LearnerStats, "hilserl/learner_stats", qos.EVENTS)
    weights = probe.subscribe(PolicyWeights, "hilserl/policy_weights", qos.LATCHED)

    # 1. Two good checkpoints (UTD 1, warm-up 20: episodes 1-2 owe 15 updates, episode 3 15 more), then the critic
    #    goes NaN after update 35 (episode 4): the next update's loss is NaN and the process must end, not idle.
    learner = processes.start_module(LEARNER, *learner_args(run_dir, debug_poison_after_updates=35), name="diverges")
    publisher = send_episodes(probe, [1, 2])
    first = checkpoint_at(probe, stats, 15)
    for msg in episode_messages(3):
        publisher.publish(msg)
    second = checkpoint_at(probe, stats, 30)
    for msg in episode_messages(4):
        publisher.publish(msg)
    code = learner.wait_exit(120)
    output = learner.output()
    assert code == 1, f"exit code {code}\n{output}"
    assert "training diverged at update 36" in output and "not written" in output, output
    assert sorted(p.name for p in checkpoints.glob("ckpt-*")) == [first, second]  # no NaN checkpoint on disk
    assert (checkpoints / "LATEST").read_text().strip() == second
    load_checkpoint(checkpoints / second)  # the last good one is whole and finite

    # 2. One changed float in the newest: refused (checksum), the previous good one is used, and the log says so.
    change_one_float(checkpoints / second / "state.safetensors")
    seen = len(weights)
    learner = processes.start_module(LEARNER, *learner_args(run_dir), name="falls-back")
    wait_until(lambda: len(weights) > seen, 90, "the restarted learner's first weights")
    assert weights.messages[-1].learner_updates == 15  # the networks of the older checkpoint
    output = learner.output()
    assert f"checkpoint {second} refused ({second}: state.safetensors does not match its SHA-256" in output, output
    assert f"falling back to checkpoint {first} (15 updates)" in output, output
    assert (checkpoints / f"refused-{second}").is_dir() and (checkpoints / "LATEST").read_text().strip() == first
    learner.send_signal(signal.SIGINT)
    assert learner.wait_exit(60) == 0, learner.output()

    # 3. LATEST names a checkpoint that is gone: exit 2 with one line that says how to go on, not a fresh start.
    (checkpoints / first).rename(tmp_path / "moved-away")
    learner = processes.start_module(LEARNER, *learner_args(run_dir), name="dangling")
    code = learner.wait_exit(90)
    output = learner.output()
    assert code == 2, f"exit code {code}\n{output}"
    (line,) = [text for text in output.splitlines() if "LATEST" in text]
    assert f"parameter run_dir='{run_dir}'" in line and f"names {first}, which is not there" in line
    assert "delete LATEST" in line and "Traceback" not in output
