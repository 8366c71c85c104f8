"""Training learns for real: a small CNN trained on simulated episodes must judge held-out episodes it never saw.

The data is the simulation's, labelled by physics, with the hard negatives of sim_dataset (near misses, gripper
closed on air, cube touched but not held, no cube). A model that learned nothing, or learned "cube close = success",
fails the F1 bar on the held-out episodes.
"""

import json

import numpy as np
import pytest

from so101_reward.classifier import RewardClassifier
from so101_reward.metrics import roc_auc
from so101_reward.sim_dataset import record_sim_dataset
from so101_reward.train import TrainConfig, main, train


@pytest.fixture(scope="module")
def sim_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("reward_data")
    train_set = record_sim_dataset(episodes=12, steps_per_episode=40, seed=1, progress=False)
    test_set = record_sim_dataset(episodes=6, steps_per_episode=40, seed=50_000, progress=False)
    train_set.save(root / "train.npz")
    test_set.save(root / "test.npz")
    return root, train_set, test_set


def test_small_cnn_learns_to_judge_held_out_episodes(sim_data, tmp_path):
    _, train_set, test_set = sim_data
    assert train_set.positives > 40 and test_set.positives > 20
    config = TrainConfig(epochs=25, patience=6)
    result = train(train_set, config=config, test=test_set, out_dir=tmp_path, progress=False)
    history = result.history
    assert history[-1]["train_loss"] < 0.6 * history[0]["train_loss"]
    test = result.reports["test"]
    assert test["roc_auc"] > 0.95, test
    assert test["at_threshold"]["f1"] > 0.85, test["at_threshold"]
    # The saved model is the one that was evaluated, threshold included.
    loaded = RewardClassifier.load(tmp_path)
    probabilities = loaded.probabilities(test_set.frames)
    assert roc_auc(test_set.labels, probabilities) == pytest.approx(test["roc_auc"], abs=1e-6)
    assert loaded.threshold == result.classifier.threshold
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["best_epoch"] == result.best_epoch and set(metrics["reports"]) == {"train", "validation", "test"}


def test_labels_carry_the_signal_shuffled_labels_do_not_generalise(sim_data):
    _, train_set, test_set = sim_data
    shuffled = train_set.subset(np.arange(len(train_set)))
    shuffled.labels = np.random.default_rng(0).permutation(shuffled.labels)
    result = train(shuffled, config=TrainConfig(epochs=4, augment=False), test=test_set, progress=False)
    assert result.reports["test"]["roc_auc"] < 0.8


def test_cli_writes_a_model_directory_and_rejects_bad_input(sim_data, tmp_path, capsys):
    root, _, _ = sim_data
    code = main([str(root / "train.npz"), "--out", str(tmp_path / "m"), "--epochs", "2", "--no-progress"])
    assert code == 0
    assert {p.name for p in (tmp_path / "m").iterdir()} >= {"model.safetensors", "model.json", "metrics.json"}
    assert "confusion matrix" in capsys.readouterr().out
    assert main([str(tmp_path / "nope.npz"), "--out", str(tmp_path / "x")]) == 2
    assert "nope.npz: no such dataset file" in capsys.readouterr().err
    assert main([str(root / "train.npz"), "--out", str(tmp_path / "x"), "--architecture", "resnet18"]) == 2
    assert "needs --backbone-weights" in capsys.readouterr().err
