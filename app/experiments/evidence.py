"""The charts an experiment's page shows: the evidence its "what to notice" talks about.

Each chart is a Chart.js spec (static/js/charts.js) with a table of the same numbers. Per-epoch
curves are the mean over the seeds of each arm; per-seed points are drawn as points, so the
noise the verdict weighs is on the page too.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from app.experiments.rules import Evidence, RunLike, mean_images_per_s, metric
from app.runs.present import Chart, pct

if TYPE_CHECKING:
    from app.experiments.presets import Preset


def _epochs(run: RunLike, key: str) -> dict[int, float]:
    out = {}
    for entry in run.history or []:
        if isinstance(entry, dict) and isinstance(entry.get(key), int | float):
            out[int(entry["epoch"])] = float(entry[key])
    return out


def _ratio_epochs(run: RunLike) -> dict[int, float]:
    out = {}
    for entry in run.history or []:
        norms = entry.get("grad_norms") if isinstance(entry, dict) else None
        if isinstance(norms, dict):
            stem, head = norms.get("stem"), norms.get("head")
            if isinstance(stem, int | float) and isinstance(head, int | float) and head > 0:
                out[int(entry["epoch"])] = float(stem) / float(head)
    return out


def _mean_curve(ev: Evidence, arm: str, read: Callable[[RunLike], dict[int, float]]) -> list:
    per_seed = [read(ev.runs[(arm, seed)]) for seed in range(ev.seeds)]
    epochs = sorted(set().union(*per_seed)) if per_seed else []
    points = []
    for epoch in epochs:
        values = [p[epoch] for p in per_seed if epoch in p]
        points.append([epoch, statistics.fmean(values)])
    return points


def _epoch_rows(series: list[dict[str, Any]], show: Callable[[Any], str]) -> list[list[Any]]:
    """The chart's table: one row per epoch that any series has, one cell per series."""
    epochs = sorted({p[0] for s in series for p in s["points"]})
    rows = []
    for epoch in epochs:
        row: list[Any] = [epoch]
        for s in series:
            found = [p[1] for p in s["points"] if p[0] == epoch]
            row.append(show(found[0]) if found else "–")
        rows.append(row)
    return rows


def _arms(ev: Evidence) -> list[str]:
    return [arm for arm in ev.labels if (arm, 0) in ev.runs]


def _curves(
    ev: Evidence,
    chart_id: str,
    title: str,
    read: Callable[[RunLike], dict[int, float]],
    *,
    percent: bool,
    log: bool = False,
    caption: str = "",
) -> Chart:
    arms = _arms(ev)
    series = [{"label": ev.label(a), "points": _mean_curve(ev, a, read)} for a in arms]
    show = pct if percent else (lambda v: f"{v:.3g}" if isinstance(v, float) else "–")
    rows = _epoch_rows(series, show)
    y: dict[str, Any] = {"title": title.lower()}
    if percent:
        y.update(min=0, max=1, percent=True)
    if log:
        y["log"] = True
    spec = {
        "type": "line",
        "x": {"title": "epoch", "integer": True},
        "y": y,
        "series": series,
    }
    caption = caption or f"mean over {ev.seeds} seeds, per epoch"
    return Chart(chart_id, title, spec, ["epoch", *(ev.label(a) for a in arms)], rows, caption)


def accuracy_vs_lr(ev: Evidence) -> Chart:
    """Validation accuracy against the learning rate, per net: the mean and every seed."""
    series: list[dict[str, Any]] = []
    nets: dict[str, list[tuple[float, str]]] = {}
    for key in ev.labels:
        name, _, rate = key.partition("@")
        nets.setdefault(name, []).append((float(rate), key))
    rows: dict[float, list[str]] = {}
    names = {"bn": "batch norm", "plain": "no batch norm"}
    for index, (name, points) in enumerate(nets.items()):
        mean_points, seed_points = [], []
        for lr, arm in sorted(points):
            values = [metric(ev.runs[(arm, s)], "val_accuracy") for s in range(ev.seeds)]
            mean_points.append([lr, statistics.fmean(values)])
            seed_points += [[lr, v] for v in values]
            rows.setdefault(lr, [""] * len(nets))[index] = " / ".join(pct(v) for v in values)
        series.append({"label": f"{names.get(name, name)} (mean)", "points": mean_points})
        series.append(
            {
                "label": f"{names.get(name, name)} (each seed)",
                "points": seed_points,
                "scatter": True,
            }
        )
    spec = {
        "type": "line",
        "x": {"title": "learning rate", "log": True},
        "y": {"title": "validation accuracy", "min": 0, "max": 1, "percent": True},
        "series": series,
    }
    table = [[f"{lr:g}", *cells] for lr, cells in sorted(rows.items())]
    columns = ["learning rate", *(f"{names.get(n, n)}: seeds" for n in nets)]
    return Chart(
        "experiment-lr",
        "Validation accuracy against learning rate",
        spec,
        columns,
        table,
        f"{ev.seeds} seeds at each rate; chance is {100 / ev.classes():.0f} %",
    )


def images_per_s(ev: Evidence) -> Chart:
    """Training images/s of each arm, seed by seed (the runs alternated loop by loop)."""
    arms = _arms(ev)
    labels = [ev.label(a) for a in arms]
    series = [
        {
            "label": f"seed {seed}",
            "values": [round(mean_images_per_s(ev.runs[(a, seed)]), 1) for a in arms],
        }
        for seed in range(ev.seeds)
    ]
    spec = {
        "type": "bar",
        "x": {"title": "arm", "labels": labels},
        "y": {"title": "training images/s", "min": 0},
        "series": series,
    }
    rows = [
        [ev.label(a), *(f"{mean_images_per_s(ev.runs[(a, s)]):,.0f}" for s in range(ev.seeds))]
        for a in arms
    ]
    return Chart(
        "experiment-speed",
        "Training images per second",
        spec,
        ["arm", *(f"seed {s}" for s in range(ev.seeds))],
        rows,
        "one bar per run",
    )


def per_seed_accuracy(ev: Evidence) -> Chart:
    """Each arm's final validation accuracy, one point per seed."""
    arms = _arms(ev)
    series = [
        {
            "label": ev.label(a),
            "points": [[s, metric(ev.runs[(a, s)], "val_accuracy")] for s in range(ev.seeds)],
            "scatter": True,
        }
        for a in arms
    ]
    spec = {
        "type": "line",
        "x": {"title": "seed", "integer": True, "min": -0.5, "max": ev.seeds - 0.5},
        "y": {"title": "validation accuracy", "percent": True},
        "series": series,
    }
    rows = [
        [f"seed {s}", *(pct(metric(ev.runs[(a, s)], "val_accuracy")) for a in arms)]
        for s in range(ev.seeds)
    ]
    size = (ev.runs[(arms[0], 0)].metrics or {}).get("val_size") if arms else None
    caption = f"{size} validation images per seed" if isinstance(size, int) else ""
    return Chart(
        "experiment-seeds",
        "Validation accuracy, seed by seed",
        spec,
        ["seed", *(ev.label(a) for a in arms)],
        rows,
        caption,
    )


def gap(ev: Evidence) -> Chart:
    """Training (un-augmented) and validation accuracy per epoch, per arm: the gap between."""
    series: list[dict[str, Any]] = []
    for arm in _arms(ev):
        series.append(
            {
                "label": f"{ev.label(arm)}: train",
                "points": _mean_curve(ev, arm, lambda r: _epochs(r, "train_eval_accuracy")),
                "dash": True,
            }
        )
        series.append(
            {
                "label": f"{ev.label(arm)}: validation",
                "points": _mean_curve(ev, arm, lambda r: _epochs(r, "val_accuracy")),
            }
        )
    rows = _epoch_rows(series, pct)
    spec = {
        "type": "line",
        "x": {"title": "epoch", "integer": True},
        "y": {"title": "accuracy", "min": 0, "max": 1, "percent": True},
        "series": series,
    }
    return Chart(
        "experiment-gap",
        "Training vs validation accuracy",
        spec,
        ["epoch", *(s["label"] for s in series)],
        rows,
        f"mean over {ev.seeds} seeds; dashed: the un-augmented training images",
    )


CHARTS: dict[str, Callable[[Evidence], Chart]] = {
    "accuracy_vs_lr": accuracy_vs_lr,
    "val_accuracy": lambda ev: _curves(
        ev,
        "experiment-val",
        "Validation accuracy",
        lambda r: _epochs(r, "val_accuracy"),
        percent=True,
    ),
    "train_accuracy": lambda ev: _curves(
        ev,
        "experiment-train",
        "Training accuracy (un-augmented)",
        lambda r: _epochs(r, "train_eval_accuracy"),
        percent=True,
        caption=f"mean over {ev.seeds} seeds: where it levels off, the net has converged",
    ),
    "train_loss": lambda ev: _curves(
        ev,
        "experiment-train-loss",
        "Training loss (un-augmented)",
        lambda r: _epochs(r, "train_eval_loss"),
        percent=False,
        log=True,
    ),
    "grad_ratio": lambda ev: _curves(
        ev,
        "experiment-grad",
        "Stem over head gradient norm",
        _ratio_epochs,
        percent=False,
        log=True,
        caption=f"mean over {ev.seeds} seeds, log scale: the share of the gradient that reaches "
        "the first layer",
    ),
    "gap": gap,
    "images_per_s": images_per_s,
}


def charts(preset: Preset, ev: Evidence) -> list[Chart]:
    """The preset's charts, then each arm's accuracy seed by seed (where it is comparable)."""
    made = [CHARTS[name](ev) for name in preset.charts]
    if preset.name != "batchnorm":
        made.append(per_seed_accuracy(ev))
    return made
