"""Classification metrics in plain numpy: the numbers quiz items and experiment results share.

scikit-learn computes the same quantities; the tests hold these to it. They live here so the
worker needs nothing beyond numpy for a run's report, and so that quiz items that ask for
"precision from this confusion matrix" are answered by exactly the code that reports runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike


@dataclass(frozen=True)
class ClassScores:
    precision: float
    recall: float
    f1: float
    support: int


def confusion_matrix(targets: ArrayLike, predictions: ArrayLike, num_classes: int) -> np.ndarray:
    """Rows are true classes, columns predicted classes (scikit-learn's convention)."""
    t = np.asarray(targets, dtype=np.int64)
    p = np.asarray(predictions, dtype=np.int64)
    return np.bincount(t * num_classes + p, minlength=num_classes * num_classes).reshape(
        num_classes, num_classes
    )


def per_class_scores(matrix: ArrayLike) -> list[ClassScores]:
    """Precision, recall and F1 of each class; 0 where a ratio's denominator is 0."""
    m = np.asarray(matrix, dtype=np.float64)
    true_positive = np.diag(m)
    predicted = m.sum(axis=0)
    actual = m.sum(axis=1)
    precision = np.divide(
        true_positive, predicted, out=np.zeros_like(true_positive), where=predicted > 0
    )
    recall = np.divide(true_positive, actual, out=np.zeros_like(true_positive), where=actual > 0)
    total = precision + recall
    f1 = np.divide(2 * precision * recall, total, out=np.zeros_like(total), where=total > 0)
    return [
        ClassScores(float(p), float(r), float(f), int(s))
        for p, r, f, s in zip(precision, recall, f1, actual, strict=True)
    ]


def macro_f1(matrix: ArrayLike) -> float:
    return float(np.mean([score.f1 for score in per_class_scores(matrix)]))


def weighted_f1(matrix: ArrayLike) -> float:
    scores = per_class_scores(matrix)
    support = np.array([s.support for s in scores], dtype=np.float64)
    return float(np.dot([s.f1 for s in scores], support) / support.sum())


def inverse_frequency_weights(counts: Sequence[int]) -> list[float]:
    """n_samples / (n_classes · count): scikit-learn's "balanced" class weights."""
    array = np.asarray(counts, dtype=np.float64)
    if np.any(array <= 0):
        raise ValueError("counts: every class needs at least one sample")
    return [float(w) for w in array.sum() / (len(array) * array)]


def expected_calibration_error(
    bin_counts: Sequence[int], bin_accuracy: Sequence[float], bin_confidence: Sequence[float]
) -> float:
    """ECE = Σ_b (n_b / N) · |acc_b − conf_b| over the confidence bins."""
    counts = np.asarray(bin_counts, dtype=np.float64)
    gaps = np.abs(np.asarray(bin_accuracy, dtype=np.float64) - np.asarray(bin_confidence))
    return float(np.dot(counts / counts.sum(), gaps))


def calibration_bins(
    confidences: ArrayLike, correct: ArrayLike, num_bins: int = 15
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Equal-width confidence bins: (count, accuracy, mean confidence) per bin."""
    conf = np.asarray(confidences, dtype=np.float64)
    hits = np.asarray(correct, dtype=np.float64)
    edges = np.linspace(0.0, 1.0, num_bins + 1)
    # Bins are (lo, hi]; a confidence of exactly 0 goes into the first bin.
    index = np.clip(np.searchsorted(edges, conf, side="left") - 1, 0, num_bins - 1)
    counts = np.bincount(index, minlength=num_bins)
    safe = np.maximum(counts, 1)
    accuracy = np.bincount(index, weights=hits, minlength=num_bins) / safe
    confidence = np.bincount(index, weights=conf, minlength=num_bins) / safe
    return counts, accuracy, confidence
