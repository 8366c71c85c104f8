"""The CI version of bench-hil: the product graph in lockstep (sim with the simulated operator correcting,
intervention node, actor, learner), started by the runner as `make sim` starts it, for a few hundred steps.

With a learner slower than the 10 Hz data (batch 128 on this CPU), only lockstep keeps the requested
update-to-data ratio: without it the learner's budget sheds updates at its cap and the achieved ratio falls to the
learner's speed. The test checks what a learning claim rests on: the ratio is kept (within 5 %), every actor step is
exactly one control period after the previous in simulated time, and every episode is logged with its success
(autonomous or assisted) and intervention, evaluation episodes included."""

import csv
import math
from collections import defaultdict

from so101_bench import hil
from so101_contract import qos
from so101_contract.control import CONTROL_PERIOD_S
from so101_contract.sim_time import PROGRESS_TOPIC
from so101_hilserl_interfaces.msg import EpisodeSummary, LearnerProgress, Transition

STEPS = 330  # training steps the graph runs for


def test_lockstep_graph_trains_at_the_requested_utd_and_logs_every_episode(tmp_path, probe):
    import os

    config = hil.CONFIGS["ci"]
    transitions = probe.subscribe(Transition, "hilserl/transitions", qos.TRANSITIONS)
    progress = probe.subscribe(LearnerProgress, PROGRESS_TOPIC, qos.EVENTS)
    episodes = probe.subscribe(EpisodeSummary, "hilserl/episodes", qos.EVENTS)
    run_dir = hil.fresh_dir(tmp_path / "hil", overwrite=False)
    params = hil.write_params(tmp_path / "params.yaml", config, "correct")
    # A budget in environment steps, not wall time: a loaded machine takes longer, never trains less. The wall
    # limit only guards against a hang.
    hil.run_graph(run_dir, params, "", 4 * config.minutes, int(os.environ["ROS_DOMAIN_ID"]), step_budget=STEPS)

    # every step one control period after the previous one, in simulated time (not wall-clock stamps)
    steps = defaultdict(dict)
    for msg in transitions.messages:
        steps[msg.episode_id][msg.step] = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
    assert len(steps) >= 4, f"only {len(steps)} episodes"
    gaps = [by_step[k + 1] - by_step[k] for by_step in steps.values() for k in sorted(by_step) if k + 1 in by_step]
    assert len(gaps) > 100
    assert max(abs(g - CONTROL_PERIOD_S) for g in gaps) < 1e-3, sorted(gaps)[:3] + sorted(gaps)[-3:]
    assert max(max(s.values()) for s in steps.values()) < 1e5, "stamps must be simulated time, not the wall clock"

    # the requested update-to-data ratio, kept: the newest report once the learner caught up with the data
    caught_up = [m for m in progress.messages if m.update_backlog <= config.max_backlog_updates]
    assert caught_up, "no LearnerProgress"
    last = caught_up[-1]
    assert last.training_transitions >= 0.9 * STEPS, f"only {last.training_transitions} training transitions"
    assert math.isclose(last.update_to_data_ratio, config.utd_ratio, rel_tol=0.05), (
        f"achieved UTD {last.update_to_data_ratio:.3f}, requested {config.utd_ratio} "
        f"({last.updates} updates, {last.training_transitions} transitions)"
    )

    # every episode a row: success split, intervention, evaluation episodes apart
    rows = hil.read_episodes(run_dir)
    assert len(rows) >= len(episodes.messages) - 1 >= 3  # the one ending at the stop may miss the CSV
    train = [r for r in rows if not r.evaluation]
    evaluation = [r for r in rows if r.evaluation]
    assert train and evaluation, "evaluation episodes every 2 training episodes"
    assert any(r.intervention_steps > 0 for r in train), "the simulated operator corrects a random policy"
    assert all(r.intervention_steps == 0 for r in evaluation), [(r.episode_id, r.intervention_steps) for r in rows]
    with open(run_dir / "episodes.csv", newline="") as handle:  # the split as written, not only as re-derived
        for cells in csv.DictReader(handle):
            success, autonomous, assisted = (cells[k] in ("1", "True", "true") for k in
                                             ("success", "autonomous_success", "assisted_success"))  # fmt: skip
            assert success == (autonomous or assisted) and not (autonomous and assisted)
            assert assisted == (success and int(cells["intervention_steps"]) > 0)
