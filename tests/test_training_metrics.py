"""Every validation figure held to scikit-learn on fixed arrays, edge cases included."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from sklearn.metrics import (
    confusion_matrix,
    f1_score,
    log_loss,
    precision_recall_fscore_support,
    roc_auc_score,
    roc_curve,
    top_k_accuracy_score,
)

from app.worker.training.metrics import (
    NO_NEGATIVES,
    NO_POSITIVES,
    average_ranks,
    classification_report,
)
from app.worker.training.metrics import roc_curve as our_roc_curve


def random_case(seed: int, n: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n, k)) * 2
    y_true = rng.integers(0, k, n)
    logits[np.arange(n), y_true] += 1.5  # better than chance, not perfect
    prob = np.exp(logits - logits.max(axis=1, keepdims=True))
    return y_true, prob / prob.sum(axis=1, keepdims=True)


def names(k: int) -> list[str]:
    return [f"c{i}" for i in range(k)]


def reference_ece(y_true: np.ndarray, prob: np.ndarray, bins: int = 15) -> float:
    """Guo et al.'s ECE written the reference code's way: (lo, hi] bins, a loop over bins."""
    confidence, predicted = prob.max(axis=1), prob.argmax(axis=1)
    correct = predicted == y_true
    edges = np.linspace(0, 1, bins + 1)
    ece = 0.0
    for lo, hi in itertools.pairwise(edges):
        inside = (confidence > lo) & (confidence <= hi)
        if inside.any():
            ece += inside.mean() * abs(correct[inside].mean() - confidence[inside].mean())
    return float(ece)


@pytest.mark.parametrize(("seed", "n", "k"), [(0, 200, 3), (1, 500, 10), (2, 64, 7)])
def test_report_matches_scikit_learn(seed: int, n: int, k: int) -> None:
    y_true, prob = random_case(seed, n, k)
    report = classification_report(y_true, prob, names(k))
    predicted = prob.argmax(axis=1)
    labels = list(range(k))

    assert report["accuracy"] == pytest.approx(np.mean(predicted == y_true))
    assert report["confusion_matrix"] == confusion_matrix(y_true, predicted, labels=labels).tolist()
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, predicted, labels=labels, zero_division=0
    )
    for row, p, r, f, s in zip(report["per_class"], precision, recall, f1, support, strict=True):
        assert (row["precision"], row["recall"], row["f1"], row["support"]) == pytest.approx(
            (p, r, f, s)
        )
    assert report["macro_f1"] == pytest.approx(
        f1_score(y_true, predicted, labels=labels, average="macro", zero_division=0)
    )
    assert report["weighted_f1"] == pytest.approx(
        f1_score(y_true, predicted, labels=labels, average="weighted", zero_division=0)
    )
    for index, row in enumerate(report["roc_auc"]["per_class"]):
        assert row["auc"] == pytest.approx(roc_auc_score(y_true == index, prob[:, index]))
    assert report["roc_auc"]["macro"] == pytest.approx(
        roc_auc_score(y_true, prob, multi_class="ovr", average="macro", labels=labels)
    )
    assert report["nll"] == pytest.approx(log_loss(y_true, prob, labels=labels))
    assert report["ece"] == pytest.approx(reference_ece(y_true, prob))
    if k > 5:
        assert report["top5_accuracy"] == pytest.approx(
            top_k_accuracy_score(y_true, prob, k=5, labels=labels)
        )
    else:
        assert report["top5_accuracy"] is None
    assert sum(report["reliability"]["count"]) == n


def test_roc_auc_counts_ties_as_half_like_scikit_learn() -> None:
    y = np.array([0, 1, 0, 1, 1, 0, 1, 0])
    scores = np.array([0.2, 0.2, 0.5, 0.5, 0.9, 0.1, 0.5, 0.9])  # ties across classes
    prob = np.stack([1 - scores, scores], axis=1)
    report = classification_report(y, prob, ["a", "b"])
    assert report["roc_auc"]["per_class"][1]["auc"] == pytest.approx(roc_auc_score(y, scores))
    assert average_ranks(np.array([3.0, 1.0, 3.0, 2.0])).tolist() == [3.5, 1.0, 3.5, 2.0]


def test_roc_curve_matches_scikit_learn_points() -> None:
    y_true, prob = random_case(4, 40, 3)
    positive = y_true == 1
    fpr, tpr = our_roc_curve(positive, prob[:, 1])
    ref_fpr, ref_tpr, _ = roc_curve(positive, prob[:, 1], drop_intermediate=False)
    assert np.allclose(fpr, ref_fpr, atol=1e-6)
    assert np.allclose(tpr, ref_tpr, atol=1e-6)


def test_absent_class_scores_zero_f1_and_has_no_auc() -> None:
    # Class 2 is neither in the labels nor predicted; class 3 is predicted but absent.
    y_true = np.array([0, 0, 1, 1, 0, 1])
    prob = np.array(
        [
            [0.7, 0.1, 0.1, 0.1],
            [0.2, 0.1, 0.1, 0.6],
            [0.1, 0.8, 0.05, 0.05],
            [0.3, 0.5, 0.1, 0.1],
            [0.6, 0.2, 0.1, 0.1],
            [0.1, 0.2, 0.1, 0.6],
        ]
    )
    report = classification_report(y_true, prob, names(4))
    predicted = prob.argmax(axis=1)
    assert report["macro_f1"] == pytest.approx(
        f1_score(y_true, predicted, labels=[0, 1, 2, 3], average="macro", zero_division=0)
    )
    assert report["per_class"][2] == {
        "class": "c2",
        "precision": 0.0,
        "recall": 0.0,
        "f1": 0.0,
        "support": 0,
    }
    aucs = report["roc_auc"]["per_class"]
    assert aucs[2] == {"class": "c2", "auc": None, "reason": NO_POSITIVES}
    assert aucs[3]["auc"] is None
    assert report["roc_auc"]["macro_over"] == 2
    defined = [roc_auc_score(y_true == c, prob[:, c]) for c in (0, 1)]
    assert report["roc_auc"]["macro"] == pytest.approx(np.mean(defined))


def test_confidence_of_exactly_one_falls_in_the_last_of_15_bins() -> None:
    prob = np.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.4]])
    y_true = np.array([0, 0, 0])
    report = classification_report(y_true, prob, ["a", "b"])
    counts = report["reliability"]["count"]
    assert len(counts) == 15
    assert counts[-1] == 2  # both confidences of 1.0
    assert counts[8] == 1  # 0.6 is in (8/15, 9/15]
    assert report["reliability"]["accuracy"][-1] == 0.5
    assert report["reliability"]["accuracy"][0] is None  # empty bins are null, not 0
    assert report["ece"] == pytest.approx(reference_ece(y_true, prob))
    assert report["ece"] == pytest.approx((2 / 3) * 0.5 + (1 / 3) * 0.4)


def test_one_class_validation_set() -> None:
    y_true = np.array([1, 1, 1, 1])
    prob = np.array([[0.2, 0.8, 0.0], [0.6, 0.3, 0.1], [0.1, 0.7, 0.2], [0.3, 0.3, 0.4]])
    report = classification_report(y_true, prob, names(3))
    predicted = prob.argmax(axis=1)
    assert report["accuracy"] == 0.5
    assert report["macro_f1"] == pytest.approx(
        f1_score(y_true, predicted, labels=[0, 1, 2], average="macro", zero_division=0)
    )
    assert report["weighted_f1"] == pytest.approx(
        f1_score(y_true, predicted, labels=[0, 1, 2], average="weighted", zero_division=0)
    )
    auc = report["roc_auc"]
    assert [row["reason"] for row in auc["per_class"]] == [NO_POSITIVES, NO_NEGATIVES, NO_POSITIVES]
    assert auc["macro"] is None and auc["macro_over"] == 0 and auc["reason"]
    assert report["nll"] == pytest.approx(log_loss(y_true, prob, labels=[0, 1, 2]))


def test_mismatched_shapes_are_refused() -> None:
    with pytest.raises(ValueError, match="probabilities"):
        classification_report(np.array([0, 1]), np.ones((2, 3)) / 3, ["a", "b"])
    with pytest.raises(ValueError):
        classification_report(np.array([], dtype=int), np.zeros((0, 2)), ["a", "b"])


def test_top5_when_float32_softmax_underflows_counts_like_scikit_learn_on_the_logits() -> None:
    import torch
    from torch import nn

    from app.worker.training.augment import Augmenter
    from app.worker.training.loop import Precision, evaluate

    k = 10
    # One image of class 9: class 0 leads classes 1–8 by 150 nats, and they lead class 9 by
    # 150. In float32 softmax every probability but class 0's is 0: a nine-way tie.
    logits = torch.tensor([[300.0, *[150.0] * 8, 0.0], [5.0, 4, 3, 2, 1, 0, 0, 0, 0, 0]])
    y_true = np.array([9, 1])
    expected = top_k_accuracy_score(y_true, logits.numpy(), k=5, labels=list(range(k)))

    class Fixed(nn.Module):  # a model whose logits are the rows above, image by image
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return logits[x[:, 0, 0, 0].long()]

    images = torch.zeros(2, 3, 2, 2, dtype=torch.uint8)
    images[1] = 1
    augmenter = Augmenter(
        "none",
        hflip=False,
        mean=(0.0,) * 3,
        std=(1 / 255,) * 3,
        device=torch.device("cpu"),
        generator=torch.Generator(),
        mix_generator=torch.Generator(),
        num_classes=k,
    )
    scored = evaluate(
        Fixed(),
        images,
        torch.from_numpy(y_true),
        augmenter=augmenter,
        precision=Precision("fp32", "cpu"),
    )
    assert (scored.probs[0, 1:] == 0).all()  # the underflow this is about
    report = classification_report(y_true, scored.probs, names(k), scores=scored.log_probs)
    assert report["top5_accuracy"] == expected == 0.5
    # Ranked by the probabilities, the tie would put class 9 second.
    assert top_k_accuracy_score(y_true, scored.probs, k=5, labels=list(range(k))) == 1.0


def test_top5_ties_rank_the_higher_class_index_first_like_scikit_learn() -> None:
    rng = np.random.default_rng(5)
    scores = rng.integers(0, 3, size=(200, 8)).astype(np.float64)  # many exact ties
    y_true = rng.integers(0, 8, size=200)
    prob = scores / scores.sum(axis=1, keepdims=True).clip(min=1)
    report = classification_report(y_true, prob, names(8), scores=scores)
    assert report["top5_accuracy"] == top_k_accuracy_score(
        y_true, scores, k=5, labels=list(range(8))
    )
