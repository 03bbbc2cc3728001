"""The verdict protocol on made-up figures: the sanity gate, the sign in every seed, margin and
noise, the paired test, each remedy on its own, and inconclusive when the data cannot say."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
from scipy import stats

from app.experiments import rules
from app.experiments.rules import Evidence
from app.experiments.verdict import (
    INCONCLUSIVE,
    NOT_SHOWN,
    SHOWN,
    Comparison,
    Paired,
    mcnemar_p,
    sanity_gate,
    t_quantile,
)


@pytest.mark.parametrize("df", [1, 2, 4, 10, 29, 30])
def test_t_quantile_matches_scipy(df: int) -> None:
    assert t_quantile(df) == pytest.approx(stats.t.ppf(0.975, df), abs=1e-3)


@pytest.mark.parametrize(("b", "c"), [(0, 0), (3, 0), (10, 2), (7, 7), (1, 12), (40, 25)])
def test_mcnemar_exact_p_matches_scipys_binomial_test(b: int, c: int) -> None:
    expected = 1.0 if b + c == 0 else stats.binomtest(min(b, c), b + c, 0.5).pvalue
    assert mcnemar_p(b, c) == pytest.approx(expected)


def compare(arm: list[float], base: list[float], **kw: Any) -> Comparison:
    return Comparison(
        "arm",
        "base",
        "validation accuracy",
        tuple(arm),
        tuple(base),
        **{"sign": 1, "margin": 0.03, **kw},
    )


def test_the_paired_interval_matches_statsmodels_style_wald_arithmetic() -> None:
    rng = np.random.default_rng(0)
    a = rng.random(3000) < 0.8
    base = rng.random(3000) < 0.7
    b, c = int(np.sum(a & ~base)), int(np.sum(~a & base))
    low, high = Paired(b, c, 3000).interval()
    d = a.astype(float) - base.astype(float)  # per-image paired differences
    half = 1.96 * d.std(ddof=0) / math.sqrt(len(d))
    assert (low, high) == pytest.approx((d.mean() - half, d.mean() + half))


def test_no_worse_is_shown_by_every_seed_and_the_paired_images() -> None:
    better = dict(arm=[0.50, 0.62, 0.49], base=[0.39, 0.36, 0.42], noninferior=True)
    assert compare(**better).outcome == INCONCLUSIVE  # three seeds: a wide t interval
    assert compare(**better, paired=Paired(756, 321, 3000)).outcome == SHOWN


def test_shown_needs_every_seed_the_margin_and_the_noise() -> None:
    clear = compare([0.80, 0.82, 0.81], [0.70, 0.71, 0.70])
    assert clear.outcome == SHOWN
    d = np.array(clear.diffs)
    half = stats.t.ppf(0.975, 2) * d.std(ddof=1) / math.sqrt(3)
    assert clear.noise == pytest.approx(half, rel=1e-3)
    # One seed against: never shown, whatever the mean.
    assert compare([0.90, 0.90, 0.69], [0.70, 0.70, 0.70]).outcome != SHOWN
    # Every seed for, but below the margin.
    assert compare([0.71, 0.715, 0.72], [0.70, 0.70, 0.70]).outcome != SHOWN
    # Every seed for, above the margin, but the seeds disagree too much: the noise wins.
    noisy = compare([0.71, 0.95, 0.75], [0.70, 0.70, 0.70])
    assert noisy.mean > 0.03 and noisy.mean < noisy.noise and noisy.outcome == INCONCLUSIVE


def test_a_paired_test_that_does_not_reject_blocks_shown() -> None:
    figures = dict(arm=[0.80, 0.82, 0.81], base=[0.70, 0.71, 0.70])
    assert compare(**figures, paired=Paired(30, 2)).outcome == SHOWN
    assert compare(**figures, paired=Paired(6, 4)).outcome == INCONCLUSIVE


def test_not_shown_when_the_data_speak_against_the_claim() -> None:
    assert compare([0.60, 0.61, 0.60], [0.70, 0.71, 0.70]).outcome == NOT_SHOWN
    # The lower-is-better direction (a loss): sign −1.
    assert compare([0.1, 0.1, 0.1], [0.5, 0.52, 0.5], sign=-1).outcome == SHOWN
    assert compare([0.5, 0.52, 0.5], [0.1, 0.1, 0.1], sign=-1).outcome == NOT_SHOWN


def test_non_inferiority_reads_the_interval_against_minus_the_margin() -> None:
    same = compare([0.70, 0.71, 0.70], [0.70, 0.70, 0.71], noninferior=True)
    assert same.outcome == SHOWN
    worse = compare([0.60, 0.61, 0.60], [0.70, 0.70, 0.71], noninferior=True)
    assert worse.outcome == NOT_SHOWN
    wild = compare([0.60, 0.80, 0.70], [0.70, 0.70, 0.70], noninferior=True)
    assert wild.outcome == INCONCLUSIVE
    # Few seeds, wide interval, but every seed clearly worse and the paired test agrees.
    spread = dict(arm=[0.49, 0.60, 0.48], base=[0.70, 0.70, 0.70], noninferior=True)
    assert compare(**spread).outcome == INCONCLUSIVE
    assert compare(**spread, paired=Paired(224, 755)).outcome == NOT_SHOWN
    # A paired test that finds the arm worse blocks "as accurate".
    close = dict(arm=[0.69, 0.70, 0.69], base=[0.70, 0.70, 0.70], noninferior=True)
    assert compare(**close, paired=Paired(10, 60)).outcome != SHOWN


def test_the_sanity_gate_names_what_did_not_learn() -> None:
    assert sanity_gate("a", [0.9, 0.9, 0.9], [1.6, 1.6, 1.6], [0.2, 0.3, 0.2], 5).learned
    at_chance = sanity_gate("a", [0.21, 0.22, 0.2], [1.6, 1.6, 1.6], [1.5, 1.5, 1.5], 5)
    assert not at_chance.learned and "chance (20 %)" in at_chance.why
    blew_up = sanity_gate("a", [0.9, 0.9, 0.9], [84.0, 1.6, 1.6], [math.nan, 0.3, 0.3], 5)
    assert not blew_up.learned and "not finite" in blew_up.why
    flat = sanity_gate("a", [0.9, 0.9, 0.9], [1.6, 1.6, 1.6], [1.7, 0.3, 0.3], 5)
    assert not flat.learned and "did not fall" in flat.why


# --- the presets' rules on made-up runs -------------------------------------------------------


@dataclass
class FakeRun:
    """A finished run's figures, as a rule reads them (the Run row has the same attributes)."""

    id: int | None
    metrics: dict[str, Any]
    history: list[dict[str, Any]] = field(default_factory=list)
    status: str = "succeeded"
    config: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


def run(
    acc: float, *, classes: int = 5, first: float = 1.6, last: float = 0.3, **extra: Any
) -> FakeRun:
    metrics = {"val_accuracy": acc, "val_loss": 0.5, "classes": [str(i) for i in range(classes)]}
    metrics.update(extra.pop("metrics", {}))
    history = [
        {"epoch": 1, "train_loss": first, **extra.pop("first_epoch", {})},
        {"epoch": 2, "train_loss": last, **extra},
    ]
    return FakeRun(None, metrics, history)


def evidence(arms: dict[str, list[FakeRun]], labels: dict[str, str] | None = None) -> Evidence:
    return Evidence(
        labels=labels or {a: a for a in arms},
        seeds=len(next(iter(arms.values()))),
        runs={(a, s): r for a, runs in arms.items() for s, r in enumerate(runs)},
        predictions=lambda run_id: None,
    )


def per_class(recall_rare: float, precision_rare: float) -> dict[str, Any]:
    rows = [{"precision": 0.9, "recall": 0.9, "f1": 0.9}] * 4
    return {"per_class": [*rows, {"precision": precision_rare, "recall": recall_rare, "f1": 0.5}]}


def test_imbalance_counts_a_remedy_only_where_macro_f1_rises_too() -> None:
    def arm(recall: float, f1: float, precision: float = 0.8) -> list[FakeRun]:
        return [
            run(0.8, metrics={**per_class(recall + d, precision), "macro_f1": f1 + d})
            for d in (0.0, 0.01, -0.01)
        ]

    verdict = rules.imbalance(
        evidence(
            {
                "ce": arm(0.20, 0.70),
                "weighted": arm(0.60, 0.78),  # recall and macro-F1 up: helps
                "focal": arm(0.21, 0.70),  # nothing
                "sampler": arm(0.90, 0.60, precision=0.2),  # recall bought, macro-F1 down
            }
        )
    )
    assert verdict.outcome == SHOWN
    assert "weighted raised both" in verdict.summary
    assert "sampler" not in verdict.summary
    assert any(
        "sampler raised the rare class's recall but not the macro-F1" in n for n in verdict.notes
    )


def test_a_gate_failure_makes_the_verdict_inconclusive_never_shown() -> None:
    dead = [run(0.2, last=1.61) for _ in range(3)]
    good = [run(0.95, metrics={"macro_f1": 0.9, **per_class(0.9, 0.9)}) for _ in range(3)]
    verdict = rules.imbalance(
        evidence({"ce": dead, "weighted": good, "focal": good, "sampler": good})
    )
    assert verdict.outcome == INCONCLUSIVE
    assert verdict.summary.startswith("Inconclusive: ce did not learn")


def test_augmentation_does_not_count_a_gap_closed_by_underfitting() -> None:
    def arm(train: float, val: float) -> list[FakeRun]:
        return [run(val + d, train_eval_accuracy=train + d) for d in (0.0, 0.01, -0.01)]

    underfit = rules.augmentation(
        evidence({"none": arm(1.0, 0.70), "standard": arm(0.62, 0.60), "strong": arm(0.5, 0.5)})
    )
    assert underfit.outcome != SHOWN
    helped = rules.augmentation(
        evidence({"none": arm(1.0, 0.70), "standard": arm(0.90, 0.78), "strong": arm(0.5, 0.5)})
    )
    assert helped.outcome == SHOWN and "standard" in helped.summary


def test_batch_norm_compares_the_largest_rate_that_trains_per_seed() -> None:
    arms: dict[str, list[FakeRun]] = {}
    rates = (0.01, 0.1, 1.0)
    for lr in rates:
        arms[f"bn@{lr:g}"] = [run(0.9, classes=10) for _ in range(3)]
        arms[f"plain@{lr:g}"] = [run(0.9 if lr < 1 else 0.1, classes=10) for _ in range(3)]
    verdict = rules.batchnorm(evidence(arms))
    assert verdict.outcome == SHOWN
    assert any("beyond the sweep" in note for note in verdict.notes)
    # The plain net never trains: nothing to compare, whatever batch norm did.
    for lr in rates:
        arms[f"plain@{lr:g}"] = [run(0.1, classes=10) for _ in range(3)]
    assert rules.batchnorm(evidence(arms)).outcome == INCONCLUSIVE


def test_residual_needs_degradation_and_its_repair_in_training_loss() -> None:
    def arm(loss: float) -> list[FakeRun]:
        return [
            run(0.95, train_eval_loss=loss + d, grad_norms={"stem": 0.1, "head": 1.0})
            for d in (0, 0.01, -0.01)
        ]

    shown = rules.residual(
        evidence({"shallow": arm(0.05), "deep": arm(0.40), "residual": arm(0.04)})
    )
    assert shown.outcome == SHOWN
    no_degradation = rules.residual(
        evidence({"shallow": arm(0.40), "deep": arm(0.05), "residual": arm(0.04)})
    )
    assert no_degradation.outcome == NOT_SHOWN


def test_the_loop_needs_a_faster_data_bound_pair_and_a_tied_compute_bound_pair() -> None:
    def arm(ips: float) -> list[FakeRun]:
        return [run(0.9, metrics={"images_per_s": ips * f}) for f in (1.0, 1.05, 0.95)]

    tied = {"tutorial-wide": arm(100.0), "engine-wide": arm(105.0)}
    shown = rules.training_loop(
        evidence({"tutorial-small": arm(1000.0), "engine-small": arm(2500.0), **tied})
    )
    assert shown.outcome == SHOWN and "2.50×" in shown.summary
    not_tied = {"tutorial-wide": arm(100.0), "engine-wide": arm(200.0)}
    uneven = rules.training_loop(
        evidence({"tutorial-small": arm(1000.0), "engine-small": arm(2500.0), **not_tied})
    )
    assert uneven.outcome == INCONCLUSIVE
    slower = rules.training_loop(
        evidence({"tutorial-small": arm(1000.0), "engine-small": arm(500.0), **tied})
    )
    assert slower.outcome == NOT_SHOWN


def test_the_bootstraps_macro_f1_is_scikit_learns() -> None:
    from sklearn.metrics import f1_score

    rng = np.random.default_rng(1)
    y_true = rng.integers(0, 5, size=(6, 40))
    y_pred = np.where(rng.random((6, 40)) < 0.6, y_true, rng.integers(0, 5, size=(6, 40)))
    y_pred[0] = 0  # classes never predicted, and one row missing classes entirely
    y_true[1] = 1
    ours = rules._macro_f1(y_true, y_pred, 5)
    for row in range(6):
        expected = f1_score(
            y_true[row], y_pred[row], labels=list(range(5)), average="macro", zero_division=0
        )
        assert ours[row] == pytest.approx(expected)


def test_every_seed_and_the_paired_images_beat_a_wide_seed_interval() -> None:
    figures = dict(arm=[0.88, 0.78, 0.85], base=[0.65, 0.70, 0.69])  # +23, +8, +16
    assert compare(**figures, margin=0.01).outcome == INCONCLUSIVE  # t(0.975, 2) = 4.3
    assert compare(**figures, margin=0.01, bootstrap=(0.12, 0.20)).outcome == SHOWN
    assert compare(**figures, margin=0.01, bootstrap=(-0.02, 0.30)).outcome == INCONCLUSIVE
