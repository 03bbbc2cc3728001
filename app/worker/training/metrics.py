"""Classification metrics in plain numpy: every validation figure of a run, and the numbers
quiz items ask for.

`classification_report(y_true, y_prob, classes)` returns a run's figures from one pass's
predicted probabilities as a JSON-able dict; the smaller functions (confusion matrix,
per-class scores, class weights, calibration bins and ECE) are what it is built from and what
the parametric quiz items are answered with, so "precision from this confusion matrix" is
answered by exactly the code that reports runs. scikit-learn computes the same quantities; the
tests hold each figure to it on fixed arrays, and the worker needs nothing beyond numpy.

Conventions, where libraries differ (each with the reference it follows):

- **macro F1** is the unweighted mean of the per-class F1 over *every* class of the data set;
  a class with no validation images and no predictions counts as 0. That is scikit-learn's
  `f1_score(average="macro", labels=range(K), zero_division=0)`; torchmetrics instead drops
  such a class. Precision, recall and F1 are 0 where their denominator is 0.
- **ROC-AUC** is one-vs-rest per class, with ties counted as ½ (the Mann–Whitney U statistic,
  equal to scikit-learn's `roc_auc_score` on the class's column). A class with no positives
  or no negatives in the set has no ROC curve: its AUC is null with the reason, and the macro
  mean is over the classes where it is defined (`macro_over` lists how many).
- **ECE** (Guo et al., 2017) uses 15 equal-width bins over the top-1 confidence, each bin
  (lo, hi] like the reference code (gpleiss/temperature_scaling), so a confidence of exactly
  1.0 is in the last bin and 0.0 in the first. ECE = Σ_b (n_b / N) · |acc_b − conf_b|.
- **NLL** is the mean of −log p(true class), probabilities clipped at 1e-12.
- **top-5 accuracy** only when there are more than five classes (else null), counted on
  scores that do not underflow (the log-probabilities; float32 softmax rounds every
  probability more than ~104 nats below the top to 0, and those ties would decide), ties
  broken as scikit-learn's `top_k_accuracy_score` breaks them: the higher class index first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

ECE_BINS = 15
ROC_POINTS = 64  # most points kept per ROC curve in metrics.json
MACRO_F1_DEFINITION = (
    "unweighted mean of per-class F1 over all classes; a class absent from both the labels "
    "and the predictions counts as 0 (scikit-learn, labels=all classes, zero_division=0)"
)
NO_POSITIVES = "no validation images of this class, so no true-positive rate"
NO_NEGATIVES = "every validation image is of this class, so no false-positive rate"


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


def inverse_frequency_weights(counts: Sequence[int]) -> list[float]:
    """n_samples / (n_classes · count): scikit-learn's "balanced" class weights."""
    array = np.asarray(counts, dtype=np.float64)
    if np.any(array <= 0):
        raise ValueError("counts: every class needs at least one sample")
    return [float(w) for w in array.sum() / (len(array) * array)]


def expected_calibration_error(
    bin_counts: ArrayLike, bin_accuracy: ArrayLike, bin_confidence: ArrayLike
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


def average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks with ties given their average rank (like scipy.stats.rankdata)."""
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    averages = ends - (counts - 1) / 2.0
    return averages[inverse]


def roc_auc(positive: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve = P(score of a positive > score of a negative), ties ½."""
    n_pos = int(positive.sum())
    n_neg = len(positive) - n_pos
    ranks = average_ranks(scores)
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def roc_curve(positive: np.ndarray, scores: np.ndarray) -> tuple[list[float], list[float]]:
    """(false-positive rates, true-positive rates) at every distinct threshold, from (0, 0).

    Thinned to at most ROC_POINTS points, always keeping both ends.
    """
    order = np.argsort(-scores, kind="stable")
    sorted_scores, hits = scores[order], positive[order]
    last_of_value = np.r_[np.flatnonzero(np.diff(sorted_scores)), len(scores) - 1]
    tps = np.cumsum(hits)[last_of_value]
    fps = (last_of_value + 1) - tps
    tpr = np.r_[0.0, tps / max(1, hits.sum())]
    fpr = np.r_[0.0, fps / max(1, len(hits) - hits.sum())]
    if len(fpr) > ROC_POINTS:
        keep = np.unique(np.linspace(0, len(fpr) - 1, ROC_POINTS).round().astype(int))
        fpr, tpr = fpr[keep], tpr[keep]
    return [round(float(v), 6) for v in fpr], [round(float(v), 6) for v in tpr]


def top_k_accuracy(y_true: np.ndarray, scores: np.ndarray, k: int) -> float:
    """Share of images whose true class is among the k highest scores (N, K).

    Equal scores rank the higher class index first, as scikit-learn's
    `top_k_accuracy_score` does (a stable ascending sort, reversed).
    """
    top = np.argsort(scores, axis=1, kind="mergesort")[:, ::-1][:, :k]
    return float((top == y_true[:, None]).any(axis=1).mean())


def classification_report(
    y_true: np.ndarray,
    y_prob: np.ndarray,
    classes: list[str],
    scores: np.ndarray | None = None,
) -> dict[str, Any]:
    """Every validation figure for labels (N,) int and probabilities (N, K) float.

    `scores` (N, K), monotone in the probabilities but without their underflow (logits or
    log-probabilities), rank the classes for top-5; without it the probabilities do.

    Returns accuracy, top5_accuracy, per_class [{class, precision, recall, f1, support}],
    macro_f1 (see the module docstring), weighted_f1, confusion_matrix (rows true, columns
    predicted), roc_auc {per_class [{class, auc, reason}], macro, macro_over, curves}, ece,
    reliability {edges, count, accuracy, confidence} (null where a bin is empty), nll and
    size. Raises ValueError when the shapes disagree or the set is empty.
    """
    y_true = np.asarray(y_true, dtype=np.int64)
    y_prob = np.asarray(y_prob, dtype=np.float64)
    n, k = y_prob.shape if y_prob.ndim == 2 else (0, 0)
    if n == 0 or len(y_true) != n or k != len(classes):
        raise ValueError(f"expected (N,) labels and (N, {len(classes)}) probabilities, N > 0")
    predicted = y_prob.argmax(axis=1)
    confidence = y_prob.max(axis=1)
    correct = predicted == y_true

    matrix = confusion_matrix(y_true, predicted, k)
    class_scores = per_class_scores(matrix)
    support = np.array([s.support for s in class_scores], dtype=np.float64)
    f1 = np.array([s.f1 for s in class_scores])

    per_class_auc: list[dict[str, Any]] = []
    curves: dict[str, dict[str, list[float]]] = {}
    defined: list[float] = []
    for index, name in enumerate(classes):
        positive = y_true == index
        if positive.all() or not positive.any():
            reason = NO_NEGATIVES if positive.all() else NO_POSITIVES
            per_class_auc.append({"class": name, "auc": None, "reason": reason})
            continue
        auc = roc_auc(positive, y_prob[:, index])
        defined.append(auc)
        per_class_auc.append({"class": name, "auc": auc, "reason": None})
        fpr, tpr = roc_curve(positive, y_prob[:, index])
        curves[name] = {"fpr": fpr, "tpr": tpr}

    counts, bin_accuracy, bin_confidence = calibration_bins(confidence, correct, ECE_BINS)
    ece = expected_calibration_error(counts, bin_accuracy, bin_confidence)
    nll = float(-np.log(np.clip(y_prob[np.arange(n), y_true], 1e-12, None)).mean())
    return {
        "size": int(n),
        "accuracy": float(correct.mean()),
        "top5_accuracy": top_k_accuracy(y_true, y_prob if scores is None else scores, 5)
        if k > 5
        else None,
        "per_class": [
            {
                "class": c,
                "precision": s.precision,
                "recall": s.recall,
                "f1": s.f1,
                "support": s.support,
            }
            for c, s in zip(classes, class_scores, strict=True)
        ],
        "macro_f1": float(f1.mean()),
        "macro_f1_definition": MACRO_F1_DEFINITION,
        "weighted_f1": float((f1 * support).sum() / support.sum()),
        "confusion_matrix": matrix.tolist(),
        "roc_auc": {
            "per_class": per_class_auc,
            "macro": float(np.mean(defined)) if defined else None,
            "macro_over": len(defined),
            "reason": None if defined else "no class has both positives and negatives",
            "curves": curves,
        },
        "ece": ece,
        "reliability": {
            "edges": np.linspace(0.0, 1.0, ECE_BINS + 1).round(6).tolist(),
            "count": counts.astype(int).tolist(),
            "accuracy": [
                float(a) if c else None for a, c in zip(bin_accuracy, counts, strict=True)
            ],
            "confidence": [
                float(v) if c else None for v, c in zip(bin_confidence, counts, strict=True)
            ],
        },
        "nll": nll,
    }
