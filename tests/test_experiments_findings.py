"""The findings' arithmetic on runs made up in the test: what each says when the effect is
there, when it is not, and when runs are missing or failed (never a claim without numbers)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from app.experiments.presets import PRESETS


def run(run_id: int, status: str = "succeeded", error: str | None = None, **figures: Any):
    history = figures.pop("history", [])
    return SimpleNamespace(
        id=run_id, status=status, config={}, metrics=figures, history=history, error=error
    )


def per_class(*recalls: float) -> list[dict[str, float]]:
    return [{"recall": r} for r in recalls]


def test_waiting_failed_and_missing_runs_give_no_finding() -> None:
    preset = PRESETS["batchnorm"]
    assert preset.finding([run(1, "running"), run(2, "queued")]) == (
        None,
        "Waiting for the runs: 0 of 2 finished.",
    )
    shown, summary = preset.finding([run(1, "failed", "lr: boom"), run(2)])
    assert shown is None
    assert summary == "The run 'batch norm' (run 1) ended failed: lr: boom. No finding."
    assert preset.finding([run(1)]) == (None, "1 of the 2 runs was deleted: no finding")
    assert preset.finding([]) == (None, "2 of the 2 runs were deleted: no finding")


def test_batch_norm_shown_and_not_shown_with_the_numbers() -> None:
    preset = PRESETS["batchnorm"]
    shown, summary = preset.finding(
        [run(1, val_accuracy=0.9, val_loss=0.3), run(2, val_accuracy=0.2, val_loss=1.609)]
    )
    assert shown is True and "90.0 %" in summary and "20.0 %" in summary
    shown, summary = preset.finding(
        [run(1, val_accuracy=0.25, val_loss=1.6), run(2, val_accuracy=0.2, val_loss=1.609)]
    )
    assert shown is False
    assert "did not" in summary and "25.0 %" in summary and "1.609" in summary


def test_imbalance_reads_the_rarest_class_recall() -> None:
    preset = PRESETS["imbalance"]
    runs = [
        run(1, per_class=per_class(0.9, 0.8, 0.5, 0.2, 0.0), macro_f1=0.4),
        run(2, per_class=per_class(0.8, 0.7, 0.6, 0.5, 0.3), macro_f1=0.55),
        run(3, per_class=per_class(0.8, 0.7, 0.6, 0.5, 0.02), macro_f1=0.5),
        run(4, per_class=per_class(0.8, 0.7, 0.6, 0.5, 0.04), macro_f1=0.5),
    ]
    shown, summary = preset.finding(runs)
    assert shown is True and summary.startswith("weighted CE raised")
    assert "rarest-class recall 30.0 %" in summary
    runs[1] = run(2, per_class=per_class(0.8, 0.7, 0.6, 0.5, 0.03), macro_f1=0.45)
    assert preset.finding(runs)[0] is False


@pytest.mark.parametrize(
    ("plain", "residual", "shown"),
    [([1e-4, 2e-4], [0.5, 0.4], True), ([0.1, 0.2], [0.5, 0.4], False)],
)
def test_residual_needs_ten_times_the_stem_gradient_every_epoch(
    plain: list[float], residual: list[float], shown: bool
) -> None:
    def history(norms: list[float]) -> list[dict[str, Any]]:
        return [{"epoch": i + 1, "grad_norms": {"stem": n}} for i, n in enumerate(norms)]

    result = PRESETS["residual"].finding(
        [run(1, history=history(plain)), run(2, history=history(residual))]
    )
    assert result[0] is shown
    assert f"{plain[0]:.2e} vs {residual[0]:.2e}" in result[1]


def test_augmentation_without_train_scores_says_it_cannot_tell() -> None:
    runs = [run(i, val_accuracy=0.5) for i in (1, 2, 3)]
    shown, summary = PRESETS["augmentation"].finding(runs)
    assert shown is None and "eval_train" in summary


def test_training_loop_compares_images_per_second() -> None:
    tutorial = run(1, val_accuracy=0.8, history=[{"images_per_s": 1000.0}])
    engine = run(2, val_accuracy=0.82, history=[{"images_per_s": 3000.0}])
    shown, summary = PRESETS["training-loop"].finding([tutorial, engine])
    assert shown is True and "×3.00" in summary
    slow = run(2, val_accuracy=0.82, history=[{"images_per_s": 1500.0}])
    assert PRESETS["training-loop"].finding([tutorial, slow])[0] is False


def test_batch_norm_says_when_both_nets_stayed_at_chance() -> None:
    chance = [{"recall": 0.0}] * 5
    shown, summary = PRESETS["batchnorm"].finding(
        [
            run(1, val_accuracy=0.195, val_loss=1.610, per_class=chance),
            run(2, val_accuracy=0.2, val_loss=1.6094, per_class=chance),
        ]
    )
    assert shown is False
    assert "Both ended at chance (a loss of ln 5 = 1.609)" in summary
