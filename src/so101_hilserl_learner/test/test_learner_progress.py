"""The learner over real DDS in simulated time: LearnerProgress tells a lockstep sim what is owed, the stats keep
coming while simulated time stands still, stamps are simulated time, and the outcome rates are honest (training
success split autonomous/assisted, evaluation apart) in learner_stats and TensorBoard, next to Q and Monte-Carlo
returns per kind of row."""

import math

import pytest
from builtin_interfaces.msg import Time
from rosgraph_msgs.msg import Clock
from test_learner_node import latest, learner_args, send_episodes

from so101_contract import qos
from so101_contract.sim_time import CLOCK_TOPIC, PROGRESS_TOPIC
from so101_hilserl_interfaces.msg import EpisodeSummary, LearnerProgress, LearnerStats
from so101_testing.graph import wait_until


def summary(episode_id, success, intervention_steps, steps=15, evaluation=False, episode_return=0.0):
    msg = EpisodeSummary(actor_id="test", episode_id=episode_id, steps=steps, intervention_steps=intervention_steps)
    msg.success, msg.evaluation, msg.episode_return = success, evaluation, episode_return
    return msg


def read_tensorboard(run_dir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"scalars": 0})
    accumulator.Reload()
    return {tag: [e.value for e in accumulator.Scalars(tag)] for tag in accumulator.Tags()["scalars"]}


def test_progress_stats_and_outcomes_in_simulated_time(processes, probe, tmp_path):
    run_dir = tmp_path / "run"
    stats = probe.subscribe(LearnerStats, "hilserl/learner_stats", qos.EVENTS)
    progress = probe.subscribe(LearnerProgress, PROGRESS_TOPIC, qos.LATCHED)
    args = [*learner_args(run_dir, utd_ratio=2.0), "-p", "use_sim_time:=true"]
    learner = processes.start_module("so101_hilserl_learner.learner_node", *args, name="learner")

    # No /clock yet: simulated time stands at 0, and the stats (on the steady clock) come all the same.
    stats.wait_for(3, 60, "stats while simulated time stands still")
    s = latest(stats)
    assert s.header.stamp.sec == 0 and s.header.stamp.nanosec == 0
    # no episode yet: no rate (NaN), not a 0 % one
    assert math.isnan(s.success_rate) and math.isnan(s.evaluation_success_rate) and s.evaluation_episodes == 0
    assert math.isnan(s.q_online_policy) and math.isnan(s.mc_return_demo)  # no update yet: no Q, not a 0
    first = progress.wait_for(1, 30, "the progress published at start")[0]
    assert first.updates == 0 and first.update_backlog == 0 and first.requested_utd == pytest.approx(2.0)
    assert first.learner_epoch == latest(stats).learner_epoch

    clock = probe.publisher(Clock, CLOCK_TOPIC, qos.COMMAND)

    def stamped_at_sim_time():
        clock.publish(Clock(clock=Time(sec=42, nanosec=500_000_000)))  # volatile: repeated until it is heard
        s = latest(stats)
        return s.header.stamp.sec == 42 and s.header.stamp.nanosec == 500_000_000

    wait_until(stamped_at_sim_time, 30, "stats stamped with the simulated time", period_s=0.1)

    # UTD 2: episode 1 fills the warm-up (20), episodes 2 and 3 owe 2 x 30 = 60 updates, each reported.
    send_episodes(probe, [1, 2, 3], terminated=True)  # ended in a terminal state: their returns are exact
    wait_until(lambda: latest(progress).updates == 60 and latest(progress).update_backlog == 0, 120, "60 updates")
    msgs = progress.messages
    assert max(m.update_backlog for m in msgs) >= 30  # a commit owed a whole episode's updates before they ran
    assert [m.updates for m in msgs] == sorted(m.updates for m in msgs)
    assert len({m.updates for m in msgs}) > 10  # reported per update, not per stats period
    final = latest(progress)
    assert final.training_transitions == 45 and final.update_to_data_ratio == pytest.approx(2.0, abs=0.1)
    assert final.header.stamp.sec == 42  # simulated time, which stood still all along

    # Q next to the Monte-Carlo returns per kind of row. The returns are known: -0.05 a step, discount 0.99, 15-step
    # episodes that terminate, interventions at steps 3-5 (in both buffers).
    def to_go(t):
        return -0.05 * (1 - 0.99 ** (15 - t)) / 0.01

    bounds = {"online_policy": (to_go(0), to_go(14)), "online_intervention": (to_go(3), to_go(5))}
    bounds["demo"] = bounds["online_intervention"]
    for group, (low, high) in bounds.items():
        reported = [(getattr(m, f"q_{group}"), getattr(m, f"mc_return_{group}")) for m in stats.messages]
        reported = [(q, g) for q, g in reported if not math.isnan(g)]
        assert reported and all(math.isfinite(q) and low - 1e-6 <= g <= high + 1e-6 for q, g in reported), group

    episodes = probe.publisher(EpisodeSummary, "hilserl/episodes", qos.EVENTS)
    probe.wait_for_subscribers(episodes, timeout_s=30)
    for msg in (
        summary(1, True, 0, episode_return=2.0),  # autonomous success
        summary(2, True, 6),  # assisted success
        summary(3, False, 9),
        summary(4, False, 0, evaluation=True),
        summary(5, True, 0, evaluation=True),
        summary(6, True, 0, evaluation=True),
    ):
        episodes.publish(msg)
    wait_until(lambda: latest(stats).evaluation_episodes == 3, 30, "the evaluation episodes counted")
    s = latest(stats)
    assert s.success_rate == pytest.approx(2 / 3) and s.autonomous_success_rate == pytest.approx(1 / 3)
    assert s.assisted_success_rate == pytest.approx(1 / 3)
    assert s.intervention_fraction == pytest.approx(15 / 45)
    assert s.evaluation_success_rate == pytest.approx(2 / 3)
    learner.stop()  # the TensorBoard writer is flushed on a clean shutdown

    scalars = read_tensorboard(run_dir)
    assert scalars["evaluation/success"] == [0.0, 1.0, 1.0]
    assert scalars["evaluation/success_rate"] == pytest.approx([0.0, 0.5, 2 / 3])
    assert scalars["episodes/autonomous_success_rate"][-1] == pytest.approx(1 / 3)
    assert scalars["episodes/assisted_success_rate"][-1] == pytest.approx(1 / 3)
    assert scalars["episodes/intervention_rate"][-1] == pytest.approx(15 / 45)
    assert scalars["episodes/return"][-1] == pytest.approx(2 / 3)
    assert "episodes/success_rate" in scalars and "utd/achieved" in scalars
    assert sum(scalars["rows/demo"]) == 60 * 4  # batch 8, demo fraction 0.5: 4 demonstration rows every update
    online_rows = sum(scalars["rows/online_policy"]) + sum(scalars["rows/online_intervention"])
    assert 0 < sum(scalars["rows/online_intervention"]) and online_rows <= 60 * 4  # rows of an open episode: none
    for group, (low, high) in bounds.items():
        assert all(low - 1e-6 <= g <= high + 1e-6 for g in scalars[f"mc_return/{group}"]), group
        assert len(scalars[f"q/{group}"]) == len(scalars[f"mc_return/{group}"]) > 0, group
