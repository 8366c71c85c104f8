"""A worker thread that dies takes its process down, and the runner stops the whole graph with the cause (issue 15).

The real simulation graph runs under the runner; the learner's training thread diverges (its critic set to NaN
after the first update by debug_poison_after_updates, as a diverged update leaves it). Before issue 15 such a
thread died and left a process that looked alive; now the learner exits 1, the runner reports which node, its exit
code and the end of its log (naming the failure), stops every other node and exits 1 itself.
"""

from __future__ import annotations

import subprocess
import sys

from test_runner import processes_of

from so101_testing.graph import wait_until

DIVERGES = """
/**/actor:
  ros__parameters:
    max_steps: 15
    reset_pause_s: 0.0
/**/learner:
  ros__parameters:
    warmup_transitions: 10
    batch_size: 8
    checkpoint_period_s: 600.0
    debug_poison_after_updates: 1
"""


def test_a_dead_training_thread_stops_the_graph_with_its_cause(tmp_path):
    (tmp_path / "diverges.yaml").write_text(DIVERGES)
    run_dir = tmp_path / "run"
    runner = subprocess.Popen(
        [sys.executable, "-m", "so101_bringup.runner", "--run-dir", str(run_dir),
         "--params-file", str(tmp_path / "diverges.yaml"), "--no-status"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )  # fmt: skip
    try:
        out, _ = runner.communicate(timeout=300)
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.wait(timeout=10)
    assert runner.returncode == 1, out
    report = out[out.index("node learner exited with code 1") :]
    # the cause, on one line near the end of the learner's log (node_main's thread hook writes it)
    assert "thread learner-train died (FloatingPointError: training diverged at update 2" in report, out
    assert "stopping: actor, then the learner" in out
    wait_until(lambda: not processes_of(run_dir), 10.0, "no process of the run left")
