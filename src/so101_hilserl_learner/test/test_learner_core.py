"""The Learner without ROS nodes: a fresh run dir starts empty; committed training transitions owe utd_ratio updates
each after warm-up, capped by the backlog rule; update() trains while owed and moves the counts; a checkpoint
restored by a new Learner goes on with its update count, weight version and data; a journal shorter than its
checkpoint stops the start with one line; refused bytes are quarantined, never journaled."""

import math
import shutil

import pytest
import torch
from rclpy.serialization import serialize_message
from test_learner_node import TINY, episode_messages

from so101_contract import settings
from so101_contract.outcomes import Outcome
from so101_contract.parameters import ParameterError
from so101_hilserl_core import exploration
from so101_hilserl_learner.checkpoint import load_newest_good
from so101_hilserl_learner.learner import Learner, LearnerConfig
from so101_hilserl_learner.sequencer import Verdict

EPISODE = 15  # transitions per episode of episode_messages, steps 3-5 interventions


class Log:
    """Records what the Learner logs (a logging.Logger's info/warning/error)."""

    def __init__(self):
        self.lines: list[tuple[str, str]] = []

    def info(self, text):
        self.lines.append(("info", text))

    def warning(self, text):
        self.lines.append(("warning", text))

    def error(self, text):
        self.lines.append(("error", text))

    def said(self, level: str, part: str) -> bool:
        return any(lv == level and part in text for lv, text in self.lines)


def make_config(run_dir, **overrides) -> LearnerConfig:
    values = {"run_dir": str(run_dir), "network": TINY, "device": "cpu", "batch_size": 8, "warmup_transitions": 20,
              "online_capacity": 1000, "demo_capacity": 500, **overrides}  # fmt: skip
    return settings.build(LearnerConfig, values)


def start(run_dir, progress=None, log=None, **overrides) -> Learner:
    on_progress = progress.append if progress is not None else None
    return Learner(make_config(run_dir, **overrides), log if log is not None else Log(), on_progress)


def feed(learner: Learner, episodes, evaluation=()) -> list:
    return [
        learner.receive(serialize_message(msg))
        for episode_id in episodes
        for msg in episode_messages(episode_id, evaluation=episode_id in evaluation)
    ]


def train_all(learner: Learner) -> int:
    """Run update() until nothing is owed; the number of updates it ran."""
    done = 0
    while learner.update() is not None:
        done += 1
    return done


@pytest.fixture
def opened():
    learners: list[Learner] = []
    yield learners
    for learner in learners:
        learner.close()


def test_a_fresh_run_dir_starts_empty_and_publishes_version_1(tmp_path, opened):
    progress = []
    learner = start(tmp_path / "run", progress)
    opened.append(learner)
    assert (learner.updates, learner.weights_version, len(learner.online), len(learner.demo)) == (0, 0, 0, 0)
    assert learner.schedule_step() == 0 and learner.stddev_schedule == exploration.DEFAULT_SCRATCH_SCHEDULE
    assert learner.updates_due() == 0 and learner.update() is None
    for name in ("run_id", "journal", "tensorboard"):
        assert (tmp_path / "run" / name).exists(), name
    weights = learner.weights()
    assert weights.version == 1 and weights.learner_updates == 0 and weights.environment_steps == 0
    assert weights.learner_epoch.split(":")[0] == learner.run_id and len(weights.data) > 0
    learner.heartbeat()
    assert (
        progress[-1].updates == 0 and progress[-1].update_backlog == 0 and math.isnan(progress[-1].update_to_data_ratio)
    )


def test_committed_training_transitions_owe_utd_updates_capped_by_the_backlog(tmp_path, opened):
    progress = []
    # UTD 2, cap 2 x 20 = 40 updates; warm-up 20 online transitions.
    learner = start(tmp_path / "run", progress, utd_ratio=2.0, max_backlog_transitions=20)
    opened.append(learner)
    feed(learner, [1])  # 15 online: before warm-up, pre-training data, owes nothing
    assert learner.updates_due() == 0 and not progress
    feed(learner, [2])  # committed at its last step, online 30 >= 20: 2 x 15
    assert learner.updates_due() == 30 and progress[-1].update_backlog == 30 and not learner.budget.behind
    feed(learner, [3], evaluation={3})  # an evaluation episode is not trained on: owes nothing
    assert learner.updates_due() == 30 and learner.schedule_step() == 30
    feed(learner, [4])  # 30 + 30 owed > 40: capped, 20 shed, behind
    assert learner.updates_due() == 40 and learner.budget.shed == pytest.approx(20.0) and learner.budget.behind
    assert progress[-1].update_backlog == 40 and progress[-1].training_transitions == 45
    stats = learner.statistics()
    assert stats["utd_behind"] and stats["update_backlog"] == 40 and stats["requested_utd"] == pytest.approx(2.0)
    assert stats["transitions_received"] == 60 and stats["online_buffer_size"] == 45


def test_update_trains_while_owed_and_moves_the_counts(tmp_path, opened):
    progress = []
    learner = start(tmp_path / "run", progress)
    opened.append(learner)
    verdicts = feed(learner, [1, 2])
    assert set(verdicts) == {Verdict.ACCEPT}
    assert train_all(learner) == 15  # UTD 1: episode 1 fills the warm-up, episode 2 owes 15
    assert learner.updates == 15 and learner.updates_due() == 0 and learner.budget.achieved == pytest.approx(1.0)
    assert all(math.isfinite(v) for v in learner.metrics.values()) and "critic_loss" in learner.metrics
    updates = [p.updates for p in progress]
    assert updates == sorted(updates) and updates[-1] == 15 and progress[-1].update_backlog == 0
    learner.add_episode(Outcome(success=True, evaluation=True, steps=EPISODE, intervention_steps=0))
    stats = learner.statistics()
    assert stats["updates"] == 15 and stats["training_transitions"] == 30 and stats["update_backlog"] == 0
    assert stats["online_buffer_size"] == 30 and stats["demo_buffer_size"] == 6  # interventions at steps 3-5
    assert math.isfinite(stats["critic_loss"]) and stats["evaluation_episodes"] == 1
    weights = learner.weights()
    assert weights.learner_updates == 15 and weights.environment_steps == 30


def test_a_checkpoint_restores_in_a_new_learner_that_goes_on(tmp_path, opened):
    run_dir = tmp_path / "run"
    first = start(run_dir, stddev_schedule="linear(0.4,0.2,100)")
    feed(first, [1, 2])
    train_all(first)
    first.weights(), first.weights()
    assert first.checkpoint() is None
    policy = {k: v.clone() for k, v in first.agent.policy().state_dict().items()}
    epoch = first.learner_epoch
    first.close()

    second = start(run_dir)  # no schedule given: the checkpoint's is kept
    opened.append(second)
    assert second.updates == 15 and second.weights_version == 2 and second.weights().version == 3
    assert len(second.online) == 30 and len(second.demo) == 6 and second.schedule_step() == 30  # the journal's
    assert second.stddev_schedule == "linear(0.4,0.2,100)"
    assert second.run_id == epoch.split(":")[0] and second.learner_epoch != epoch
    restored = second.agent.policy().state_dict()
    assert all(torch.equal(restored[k], v) for k, v in policy.items())
    assert second.updates_due() == 0  # the journal's transitions were trained on before the restart
    feed(second, [3])
    assert train_all(second) == 15 and second.updates == 30


def test_a_journal_shorter_than_its_checkpoint_is_refused_in_one_line(tmp_path, opened):
    run_dir = tmp_path / "run"
    first = start(run_dir)
    feed(first, [1, 2])
    assert first.checkpoint() is None
    first.close()
    shutil.rmtree(run_dir / "journal")
    with pytest.raises(ParameterError) as refused:
        start(run_dir)
    text = str(refused.value)
    assert "\n" not in text and f"parameter run_dir='{run_dir}'" in text
    assert "yields 0 training transitions, fewer than the 30 its checkpoint ckpt-000000000 counts" in text
    assert "accept_short_journal:=true" in text
    log = Log()  # the refused start released the run's lock: accepting the loss starts, warned
    accepted = start(run_dir, log=log, accept_short_journal=True)
    opened.append(accepted)
    assert len(accepted.online) == 0 and log.said("warning", "starting with the 0 it holds")


def test_refused_bytes_are_quarantined_not_journaled(tmp_path, opened):
    learner = start(tmp_path / "run")
    opened.append(learner)
    assert learner.receive(b"\x00\x01 not a transition") is None
    assert learner.ingest.counters.invalid == 1 and any((tmp_path / "run" / "quarantine").iterdir())
    learner.close()
    opened.clear()
    again = start(tmp_path / "run")
    opened.append(again)
    assert again.ingest.counters.invalid == 0 and again.ingest.counters.accepted == 0  # nothing was journaled


def test_a_second_learner_on_the_same_run_dir_is_refused(tmp_path, opened):
    opened.append(start(tmp_path / "run"))
    with pytest.raises(ParameterError, match="parameter run_dir="):
        start(tmp_path / "run")


def test_a_diverged_update_raises_and_no_checkpoint_is_written(tmp_path, opened):
    learner = start(tmp_path / "run", debug_poison_after_updates=3)
    opened.append(learner)
    feed(learner, [1, 2])
    with pytest.raises(FloatingPointError, match="training diverged at update 4"):
        train_all(learner)
    assert learner.checkpoint() is not None and load_newest_good(tmp_path / "run" / "checkpoints") is None
