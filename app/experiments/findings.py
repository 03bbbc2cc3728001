"""How each preset reads its finished runs: (shown, summary with the numbers).

Every function takes the runs in the experiment's order and their labels, all succeeded
(`not_ready` is asked first). Thresholds are stated in the summary so a reader can judge them.
Figures: `metrics` is the run's last validation report (val_accuracy, macro_f1, per_class with
recall, ...); `history` holds one entry per epoch (grad_norms per layer group, images_per_s,
train_eval_accuracy with eval_train, ...).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

MARGIN = 0.05  # an accuracy or recall difference smaller than this is within run-to-run noise


def not_ready(runs: Sequence[Any], labels: Sequence[str]) -> str | None:
    """Why there is no finding yet (runs still live, or one ended without success), or None."""
    if len(runs) != len(labels):
        gone = len(labels) - len(runs)
        return (
            f"{gone} of the {len(labels)} runs {'was' if gone == 1 else 'were'} deleted: no finding"
        )
    for run, label in zip(runs, labels, strict=True):
        if run.status in ("failed", "cancelled", "interrupted"):
            why = f": {run.error}" if run.error else ""
            return f"The run '{label}' (run {run.id}) ended {run.status}{why}. No finding."
    done = sum(run.status == "succeeded" for run in runs)
    if done < len(runs):
        return f"Waiting for the runs: {done} of {len(runs)} finished."
    return None


def _metric(run: Any, key: str) -> float:
    value = (run.metrics or {}).get(key)
    return float(value) if isinstance(value, int | float) else math.nan


def _recall(run: Any, index: int) -> float:
    per_class = (run.metrics or {}).get("per_class") or []
    try:
        return float(per_class[index]["recall"])
    except (IndexError, KeyError, TypeError):
        return math.nan


def _pct(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value * 100:.1f} %"


def _last(run: Any, key: str) -> float:
    for entry in reversed(run.history or []):
        if isinstance(entry, dict) and isinstance(entry.get(key), int | float):
            return float(entry[key])
    return math.nan


def _mean_ips(run: Any) -> float:
    values = [h["images_per_s"] for h in run.history or [] if isinstance(h, dict)]
    values = [v for v in values if isinstance(v, int | float)]
    return sum(values) / len(values) if values else math.nan


def transfer(runs: Sequence[Any], labels: Sequence[str]) -> tuple[bool | None, str]:
    """Shown when the frozen or the fine-tuned run beats scratch by MARGIN in val accuracy."""
    _, scratch, frozen, tuned = runs
    acc = {
        label: _metric(run, "val_accuracy") for label, run in zip(labels[1:], runs[1:], strict=True)
    }
    best_transfer = max(_metric(frozen, "val_accuracy"), _metric(tuned, "val_accuracy"))
    base = _metric(scratch, "val_accuracy")
    shown = best_transfer >= base + MARGIN
    listed = ", ".join(f"{label} {_pct(value)}" for label, value in acc.items())
    verdict = (
        "Starting from the pretrained backbone beat training from scratch"
        if shown
        else "Starting from the pretrained backbone did not beat scratch by "
        f"{MARGIN * 100:.0f} points here"
    )
    return shown, f"{verdict}: validation accuracy {listed}."


def imbalance(runs: Sequence[Any], labels: Sequence[str]) -> tuple[bool | None, str]:
    """Shown when a remedy raises the rarest class's recall over plain CE by MARGIN."""
    last = len((runs[0].metrics or {}).get("per_class") or []) - 1
    recalls = [_recall(run, last) for run in runs]
    f1s = [_metric(run, "macro_f1") for run in runs]
    best = max(range(1, len(runs)), key=lambda i: (recalls[i], f1s[i]))
    shown = recalls[best] >= recalls[0] + MARGIN
    rows = "; ".join(
        f"{label}: rarest-class recall {_pct(r)}, macro-F1 {_pct(f)}"
        for label, r, f in zip(labels, recalls, f1s, strict=True)
    )
    verdict = (
        f"{labels[best]} raised the rarest class's recall over plain cross-entropy"
        if shown
        else f"No remedy raised the rarest class's recall by {MARGIN * 100:.0f} points here"
    )
    return shown, f"{verdict}. {rows}."


def augmentation(runs: Sequence[Any], labels: Sequence[str]) -> tuple[bool | None, str]:
    """Shown when standard or strong has a train/val gap at least MARGIN smaller than none's."""
    gaps = [_last(run, "train_eval_accuracy") - _metric(run, "val_accuracy") for run in runs]
    if any(math.isnan(g) for g in gaps):
        return None, "The runs did not score their training split (eval_train): no gap to show."
    shown = min(gaps[1:]) <= gaps[0] - MARGIN
    rows = "; ".join(
        f"{label}: train {_pct(_last(run, 'train_eval_accuracy'))}, "
        f"val {_pct(_metric(run, 'val_accuracy'))}, gap {gaps[i] * 100:+.1f} points"
        for i, (label, run) in enumerate(zip(labels, runs, strict=True))
    )
    verdict = (
        "Augmentation narrowed the train/val gap"
        if shown
        else f"Augmentation did not narrow the train/val gap by {MARGIN * 100:.0f} points here"
    )
    return shown, f"{verdict}. {rows}."


def batchnorm(runs: Sequence[Any], labels: Sequence[str]) -> tuple[bool | None, str]:
    """Shown when batch norm's run ends MARGIN×2 more accurate than the one without."""
    on, off = runs
    acc_on, acc_off = _metric(on, "val_accuracy"), _metric(off, "val_accuracy")
    loss_on, loss_off = _metric(on, "val_loss"), _metric(off, "val_loss")
    shown = acc_on >= acc_off + 2 * MARGIN
    verdict = (
        "Batch norm trained at this learning rate and the plain net did worse"
        if shown
        else "Batch norm did not beat the plain net by 10 points at this learning rate here"
    )
    summary = (
        f"{verdict}: validation accuracy {labels[0]} {_pct(acc_on)} vs {labels[1]} "
        f"{_pct(acc_off)}; validation loss {loss_on:.3f} vs {loss_off:.3f}."
    )
    classes = len((on.metrics or {}).get("per_class") or [])
    if classes > 1 and all(abs(loss - math.log(classes)) < 0.02 for loss in (loss_on, loss_off)):
        summary += (
            f" Both ended at chance (a loss of ln {classes} = {math.log(classes):.3f}): "
            "this learning rate was too high for both nets at this size."
        )
    return shown, summary


def first_layer_norms(run: Any) -> list[float]:
    """The stem's mean gradient norm per epoch (NaN where missing)."""
    norms = []
    for entry in run.history or []:
        value = (entry.get("grad_norms") or {}).get("stem") if isinstance(entry, dict) else None
        norms.append(float(value) if isinstance(value, int | float) else math.nan)
    return norms


def residual(runs: Sequence[Any], labels: Sequence[str]) -> tuple[bool | None, str]:
    """Shown when the residual net's stem gradient is ≥ 10× the plain net's in every epoch."""
    plain, skip = (first_layer_norms(run) for run in runs)
    if not plain or len(plain) != len(skip) or any(math.isnan(v) for v in plain + skip):
        return None, "The runs' gradient norms per epoch are missing: no finding."
    ratios = [s / p if p > 0 else math.inf for p, s in zip(plain, skip, strict=True)]
    shown = min(ratios) >= 10
    per_epoch = ", ".join(
        f"epoch {i + 1}: {p:.2e} vs {s:.2e} (×{r:.3g})"
        for i, (p, s, r) in enumerate(zip(plain, skip, ratios, strict=True))
    )
    verdict = (
        "The skip connections kept the first layer's gradient at least 10× the plain net's"
        if shown
        else "The plain net's first-layer gradient did not fall 10× below the residual net's"
    )
    return shown, f"{verdict}. Stem gradient norm, {labels[0]} vs {labels[1]}: {per_epoch}."


def pooling(runs: Sequence[Any], labels: Sequence[str]) -> tuple[bool | None, str]:
    """Shown when the strided conv is within MARGIN of the better pool's accuracy."""
    acc = [_metric(run, "val_accuracy") for run in runs]
    params = [((run.metrics or {}).get("model") or {}).get("parameters") for run in runs]
    ips = [_mean_ips(run) for run in runs]
    shown = acc[2] >= max(acc[0], acc[1]) - MARGIN
    rows = "; ".join(
        f"{label}: {_pct(a)}"
        + (f", {p:,} parameters" if isinstance(p, int) else "")
        + (f", {v:,.0f} images/s" if not math.isnan(v) else "")
        for label, a, p, v in zip(labels, acc, params, ips, strict=True)
    )
    verdict = (
        "The strided conv matched the pools' accuracy (within 5 points)"
        if shown
        else "The strided conv fell more than 5 points below the better pool here"
    )
    return shown, f"{verdict}. {rows}."


def training_loop(runs: Sequence[Any], labels: Sequence[str]) -> tuple[bool | None, str]:
    """Shown when the engine trains ≥ 2× the tutorial loop's images/s within 2×MARGIN accuracy."""
    tutorial, engine = runs
    speed_t, speed_e = _mean_ips(tutorial), _mean_ips(engine)
    acc_t, acc_e = _metric(tutorial, "val_accuracy"), _metric(engine, "val_accuracy")
    ratio = speed_e / speed_t if speed_t > 0 else math.nan
    shown = ratio >= 2 and abs(acc_e - acc_t) <= 2 * MARGIN
    verdict = (
        "The engine trained several times faster for about the same accuracy"
        if shown
        else "The engine was not at least 2× faster at about the same accuracy here"
    )
    return shown, (
        f"{verdict}: {labels[1]} {speed_e:,.0f} images/s vs {labels[0]} {speed_t:,.0f} "
        f"(×{ratio:.2f}); validation accuracy {_pct(acc_e)} vs {_pct(acc_t)}."
    )
