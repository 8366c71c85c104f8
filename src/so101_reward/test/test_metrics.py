import itertools

import numpy as np
import pytest

from so101_reward.metrics import binary_metrics, choose_threshold, evaluate, format_report, roc_auc, threshold_sweep


def brute_force_auc(labels, scores) -> float:
    pos = [s for s, y in zip(scores, labels, strict=True) if y == 1]
    neg = [s for s, y in zip(scores, labels, strict=True) if y == 0]
    wins = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p, n in itertools.product(pos, neg))
    return wins / (len(pos) * len(neg))


def test_counts_and_ratios_follow_their_definitions():
    labels = np.array([1, 1, 1, 0, 0, 0, 0, 1])
    probs = np.array([0.9, 0.8, 0.2, 0.7, 0.1, 0.3, 0.6, 0.69])
    m = binary_metrics(labels, probs, threshold=0.65)
    # predicted positive: 0.9, 0.8, 0.7, 0.69 -> TP 3 (0.9, 0.8, 0.69), FP 1 (0.7); FN 1 (0.2); TN 3
    assert (m.true_positives, m.false_positives, m.false_negatives, m.true_negatives) == (3, 1, 1, 3)
    assert m.precision == pytest.approx(3 / 4) and m.recall == pytest.approx(3 / 4)
    assert m.f1 == pytest.approx(0.75) and m.accuracy == pytest.approx(6 / 8)
    assert m.confusion_matrix == [[3, 1], [1, 3]]


def test_roc_auc_equals_pairwise_count_with_ties():
    rng = np.random.default_rng(3)
    for _ in range(20):
        labels = rng.integers(0, 2, 40)
        scores = np.round(rng.random(40), 1)  # many ties
        if labels.min() == labels.max():
            continue
        assert roc_auc(labels, scores) == pytest.approx(brute_force_auc(labels, scores))
    assert np.isnan(roc_auc(np.ones(5), np.linspace(0, 1, 5)))


def test_threshold_choice_prefers_best_f1_then_the_higher_threshold():
    labels = np.array([0, 0, 1, 1])
    probs = np.array([0.1, 0.2, 0.8, 0.9])  # every threshold in (0.2, 0.8] separates perfectly
    best = choose_threshold(threshold_sweep(labels, probs))
    assert best.f1 == 1.0 and best.threshold == pytest.approx(0.8)


def test_report_is_complete_and_readable():
    labels = np.array([0, 1, 0, 1, 1])
    report = evaluate(labels, np.array([0.1, 0.9, 0.6, 0.4, 0.8]), 0.5)
    assert report["frames"] == 5 and report["positives"] == 3 and len(report["sweep"]) == 19
    text = format_report(report, "validation")
    assert "precision" in text and "ROC-AUC" in text and "true 1 (success)" in text


def test_mismatched_inputs_are_refused():
    with pytest.raises(ValueError, match="differ in length"):
        binary_metrics(np.zeros(3), np.zeros(4), 0.5)
    with pytest.raises(ValueError, match="0 or 1"):
        roc_auc(np.array([0, 2]), np.array([0.1, 0.2]))
