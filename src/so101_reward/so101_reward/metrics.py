"""Binary classification metrics of the reward classifier, in numpy: what a training run reports and is judged by.

Accuracy alone hides what matters here: with ~20 % success frames, "never success" scores 80 %. A false positive is
a reward for a failure (the policy learns to hack it), a false negative a missed success, so precision and recall
are reported apart, with the confusion matrix, ROC-AUC (threshold-free) and a sweep over thresholds.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class BinaryMetrics:
    threshold: float
    accuracy: float
    precision: float
    recall: float
    f1: float
    true_positives: int
    false_positives: int
    true_negatives: int
    false_negatives: int

    @property
    def confusion_matrix(self) -> list[list[int]]:
        """[[TN, FP], [FN, TP]]: rows are the true label (0, 1), columns the prediction (0, 1)."""
        return [[self.true_negatives, self.false_positives], [self.false_negatives, self.true_positives]]

    def to_dict(self) -> dict:
        return {**asdict(self), "confusion_matrix": self.confusion_matrix}


def binary_metrics(labels: np.ndarray, probabilities: np.ndarray, threshold: float) -> BinaryMetrics:
    """Metrics of predicting success where probability >= threshold. Undefined ratios (0/0) are 0."""
    labels, probabilities = _check(labels, probabilities)
    predicted = probabilities >= threshold
    truth = labels.astype(bool)
    tp = int(np.sum(predicted & truth))
    fp = int(np.sum(predicted & ~truth))
    fn = int(np.sum(~predicted & truth))
    tn = int(np.sum(~predicted & ~truth))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    accuracy = (tp + tn) / len(labels) if len(labels) else 0.0
    return BinaryMetrics(float(threshold), accuracy, precision, recall, f1, tp, fp, tn, fn)


def roc_auc(labels: np.ndarray, probabilities: np.ndarray) -> float:
    """P(a random success frame scores higher than a random failure frame), ties counting half (Mann-Whitney U).
    NaN when one class is absent."""
    labels, probabilities = _check(labels, probabilities)
    positives = int(labels.sum())
    negatives = len(labels) - positives
    if positives == 0 or negatives == 0:
        return float("nan")
    order = np.argsort(probabilities, kind="mergesort")
    ranks = np.empty(len(probabilities), dtype=float)
    sorted_scores = probabilities[order]
    # average ranks over ties (1-based)
    boundaries = np.flatnonzero(np.diff(sorted_scores)) + 1
    starts = np.concatenate([[0], boundaries])
    ends = np.concatenate([boundaries, [len(sorted_scores)]])
    for start, end in zip(starts, ends, strict=True):
        ranks[order[start:end]] = (start + end + 1) / 2.0
    rank_sum = ranks[labels.astype(bool)].sum()
    return float((rank_sum - positives * (positives + 1) / 2.0) / (positives * negatives))


def threshold_sweep(
    labels: np.ndarray, probabilities: np.ndarray, thresholds: np.ndarray | None = None
) -> list[BinaryMetrics]:
    """Metrics at each threshold (default 0.05, 0.10, ..., 0.95)."""
    if thresholds is None:
        thresholds = np.round(np.arange(0.05, 0.951, 0.05), 2)
    return [binary_metrics(labels, probabilities, float(t)) for t in thresholds]


def choose_threshold(sweep: list[BinaryMetrics]) -> BinaryMetrics:
    """The threshold with the best F1; among equals the highest, because a false success rewards a failure."""
    return max(sweep, key=lambda m: (round(m.f1, 6), m.threshold))


def evaluate(labels: np.ndarray, probabilities: np.ndarray, threshold: float) -> dict:
    """Everything a report needs, JSON-ready."""
    sweep = threshold_sweep(labels, probabilities)
    return {
        "frames": len(labels),
        "positives": int(np.sum(labels)),
        "roc_auc": roc_auc(labels, probabilities),
        "at_threshold": binary_metrics(labels, probabilities, threshold).to_dict(),
        "sweep": [m.to_dict() for m in sweep],
    }


def format_report(report: dict, title: str) -> str:
    """A readable block: headline metrics, confusion matrix, and the sweep as a table."""
    m = report["at_threshold"]
    (tn, fp), (fn, tp) = m["confusion_matrix"]
    lines = [
        f"{title}: {report['frames']} frames, {report['positives']} success",
        f"  threshold {m['threshold']:.2f}: accuracy {m['accuracy']:.4f}  precision {m['precision']:.4f}  "
        f"recall {m['recall']:.4f}  F1 {m['f1']:.4f}  ROC-AUC {report['roc_auc']:.4f}",
        "  confusion matrix      predicted 0  predicted 1",
        f"    true 0 (failure)    {tn:>11}  {fp:>11}",
        f"    true 1 (success)    {fn:>11}  {tp:>11}",
        "  threshold  precision  recall     F1",
    ]
    for row in report["sweep"]:
        lines.append(f"  {row['threshold']:>9.2f}  {row['precision']:>9.4f}  {row['recall']:>6.4f}  {row['f1']:.4f}")
    return "\n".join(lines)


def _check(labels: np.ndarray, probabilities: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    labels = np.asarray(labels).astype(np.int64).ravel()
    probabilities = np.asarray(probabilities, dtype=np.float64).ravel()
    if labels.shape != probabilities.shape:
        raise ValueError(f"labels {labels.shape} and probabilities {probabilities.shape} differ in length")
    if len(labels) and not np.isin(labels, (0, 1)).all():
        raise ValueError("labels must be 0 or 1")
    return labels, probabilities
