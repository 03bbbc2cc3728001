"""What a run's page shows: progress in words, and every chart as data plus a table.

Charts are drawn in the browser by Chart.js from a JSON spec (static/js/charts.js documents
the format); each comes with a table of the same numbers, which is what a reader without
JavaScript, or with a screen reader, gets.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

from app.models.runs import QUEUED, RUNNING, Run
from app.runs.confusions import MATRIX_MAX_CLASSES


@dataclass
class Chart:
    id: str
    title: str
    spec: dict[str, Any]
    columns: list[str]
    rows: list[list[Any]]
    caption: str = ""
    size: str = ""  # an extra CSS class for the chart's box


NBSP = "\u00a0"  # between a number and its unit, so a line never breaks inside "52.2 %"


def pct(value: Any) -> str:
    return f"{100 * value:.1f}{NBSP}%" if isinstance(value, int | float) else "–"


def num(value: Any, digits: int = 3) -> str:
    return f"{value:.{digits}f}" if isinstance(value, int | float) else "–"


def duration(seconds: float | None) -> str:
    """12 s, 3 min 05 s, 1 h 02 min (non-breaking spaces: the words never part)."""
    if seconds is None:
        return "–"
    seconds = max(0, round(seconds))
    if seconds < 60:
        text = f"{seconds} s"
    else:
        minutes, secs = divmod(seconds, 60)
        if minutes < 60:
            text = f"{minutes} min {secs:02d} s"
        else:
            hours, minutes = divmod(minutes, 60)
            text = f"{hours} h {minutes:02d} min"
    return text.replace(" ", NBSP)


def dataset_name(config: dict[str, Any], names: dict[str, str]) -> str:
    """The data set as the learner knows it: an upload by its name, else the engine's name."""
    if config.get("dataset") == "folder":
        folder = str(config.get("folder") or "")
        return names.get(folder) or folder or "folder"
    return str(config.get("dataset"))


def run_title(run: Run, names: dict[str, str]) -> str:
    """ "smallcnn on shapes", "resnet18 on my flowers" (`names`: upload folder → name)."""
    return f"{run.config.get('model')} on {dataset_name(run.config, names)}"


@dataclass
class Progress:
    done: int  # steps done over the whole run
    total: int
    text: str


def progress(run: Run) -> Progress:
    """The progress bar's value and its words."""
    epochs = run.epochs or int(run.config.get("epochs", 0))
    if run.status == QUEUED:
        return Progress(0, max(1, epochs), "waiting for a worker")
    if not run.steps:
        return Progress(0, max(1, epochs), "loading the data and building the model")
    total = epochs * run.steps
    done = max(0, (run.epoch - 1) * run.steps + run.step) if run.epoch else 0
    text = f"epoch {run.epoch} of {epochs}, step {run.step} of {run.steps}"
    return Progress(min(done, total), max(1, total), text)


def _line(
    series: list[dict[str, Any]],
    x_title: str,
    y_title: str,
    *,
    x: dict[str, Any] | None = None,
    y: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A line chart's spec (static/js/charts.js)."""
    return {
        "type": "line",
        # Epochs are counted in whole steps on the axis (no tick at 1.5).
        "x": {"title": x_title, **({"integer": True} if x_title == "epoch" else {}), **(x or {})},
        "y": {"title": y_title, **(y or {})},
        "series": series,
    }


def curves(run: Run) -> list[Chart]:
    """Loss (every reported step, and each epoch's train and validation) and accuracy."""
    history = [h for h in run.history if isinstance(h, dict)]
    epochs = [h.get("epoch") for h in history]
    loss_series: list[dict[str, Any]] = [
        {"label": "training loss (steps)", "points": run.curve, "thin": True},
        {
            "label": "training loss (epoch)",
            "points": [[h["epoch"], h.get("train_loss")] for h in history],
        },
        {"label": "validation loss", "points": [[h["epoch"], h.get("val_loss")] for h in history]},
    ]
    accuracy_series: list[dict[str, Any]] = [
        {
            "label": "training accuracy",
            "points": [[h["epoch"], h.get("train_accuracy")] for h in history],
        },
        {
            "label": "validation accuracy",
            "points": [[h["epoch"], h.get("val_accuracy")] for h in history],
        },
    ]
    epochs_total = run.epochs or int(run.config.get("epochs", 1))
    bounds = {"min": 0, "max": epochs_total}
    table = [
        [
            e,
            num(h.get("train_loss")),
            num(h.get("val_loss")),
            pct(h.get("train_accuracy")),
            pct(h.get("val_accuracy")),
        ]
        for e, h in zip(epochs, history, strict=True)
    ]
    columns = ["epoch", "train loss", "val loss", "train accuracy", "val accuracy"]
    return [
        Chart(
            "loss",
            "Loss",
            _line(loss_series, "epoch", "loss", x=bounds, y={"min": 0}),
            columns,
            table,
        ),
        Chart(
            "accuracy",
            "Accuracy",
            _line(
                accuracy_series,
                "epoch",
                "accuracy",
                x=bounds,
                y={"min": 0, "max": 1, "percent": True},
            ),
            columns,
            table,
        ),
    ]


def confusion(run: Run, metrics: dict[str, Any]) -> Chart | None:
    """The confusion matrix (rows true, columns predicted) as a heat map whose cells link to
    the kept images behind them."""
    matrix = metrics.get("confusion_matrix")
    classes = metrics.get("classes") or []
    if not matrix or len(matrix) != len(classes) or len(classes) > MATRIX_MAX_CLASSES:
        return None  # many classes: app.runs.confusions shows the top confusions instead
    spec = {
        "type": "matrix",
        "x": {"title": "predicted", "labels": classes},
        "y": {"title": "true", "labels": classes},
        "cells": matrix,
        "link": f"/runs/{run.id}/confusion?true={{row}}&predicted={{col}}",
    }
    rows: list[list[Any]] = [
        [
            name,
            *(
                {"text": n, "href": f"/runs/{run.id}/confusion?true={i}&predicted={j}"}
                for j, n in enumerate(row)
            ),
        ]
        for i, (name, row) in enumerate(zip(classes, matrix, strict=True))
    ]
    return Chart("confusion", "Confusion matrix", spec, ["true \\ predicted", *classes], rows)


def roc(metrics: dict[str, Any]) -> Chart | None:
    auc = metrics.get("roc_auc") or {}
    curves_by_class = auc.get("curves") or {}
    if not curves_by_class:
        return None
    # Many classes: the curves of the first MATRIX_MAX_CLASSES (the table keeps every AUC).
    series = [
        {"label": name, "points": [[x, y] for x, y in zip(c["fpr"], c["tpr"], strict=True)]}
        for name, c in itertools.islice(curves_by_class.items(), MATRIX_MAX_CLASSES)
    ]
    series.append({"label": "chance", "points": [[0, 0], [1, 1]], "dash": True})
    rows = [
        [
            row["class"],
            num(row["auc"]) if row["auc"] is not None else "undefined",
            row.get("reason") or "",
        ]
        for row in auc.get("per_class", [])
    ]
    spec = _line(
        series,
        "false-positive rate",
        "true-positive rate",
        x={"min": 0, "max": 1},
        y={"min": 0, "max": 1},
    )
    return Chart(
        "roc",
        "ROC curves, one class against the rest",
        spec,
        ["class", "AUC", "why undefined"],
        rows,
    )


def reliability(metrics: dict[str, Any]) -> Chart | None:
    bins = metrics.get("reliability") or {}
    edges = bins.get("edges") or []
    if len(edges) < 2:
        return None
    centres = [round((lo + hi) / 2, 4) for lo, hi in itertools.pairwise(edges)]
    accuracy = bins.get("accuracy") or []
    confidence = bins.get("confidence") or []
    counts = bins.get("count") or []
    spec = {
        "type": "bar",
        "x": {"title": "confidence (bin centre)", "labels": [f"{c:.2f}" for c in centres]},
        "y": {"title": "accuracy", "min": 0, "max": 1},
        "series": [
            {"label": "accuracy in the bin", "values": accuracy},
            {"label": "mean confidence in the bin", "values": confidence, "line": True},
        ],
    }
    rows = [
        [f"({lo:.3f}, {hi:.3f}]", n, num(a), num(c)]
        for lo, hi, n, a, c in zip(edges, edges[1:], counts, accuracy, confidence, strict=False)
    ]
    return Chart(
        "reliability",
        "Reliability diagram",
        spec,
        ["confidence bin", "images", "accuracy", "mean confidence"],
        rows,
        caption=f"ECE {num(metrics.get('ece'))} over {len(centres)} equal-width bins",
    )


def grad_norms(run: Run) -> Chart | None:
    history = [h for h in run.history if isinstance(h, dict) and h.get("grad_norms")]
    if not history:
        return None
    groups = list(history[0]["grad_norms"])
    series = [
        {"label": group, "points": [[h["epoch"], h["grad_norms"].get(group)] for h in history]}
        for group in groups
    ]
    rows = [[h["epoch"], *(num(h["grad_norms"].get(g), 4) for g in groups)] for h in history]
    spec = _line(series, "epoch", "mean gradient L2 norm per step", y={"log": True})
    return Chart("grad-norms", "Gradient norms per layer group", spec, ["epoch", *groups], rows)


def results_charts(run: Run) -> list[Chart]:
    metrics = run.metrics or {}
    charts = [confusion(run, metrics), roc(metrics), reliability(metrics), grad_norms(run)]
    return [c for c in charts if c is not None]


def is_live(run: Run) -> bool:
    return run.status in (QUEUED, RUNNING)


def misclassified_for(metrics: dict[str, Any], true: str, predicted: str) -> list[dict[str, Any]]:
    """The kept misclassified images of one confusion-matrix cell."""
    return [
        m
        for m in metrics.get("misclassified") or []
        if m.get("true") == true and m.get("predicted") == predicted
    ]


def wrong_predictions(metrics: dict[str, Any]) -> int | None:
    """Validation images predicted wrong: the confusion matrix's total minus its diagonal."""
    matrix = metrics.get("confusion_matrix")
    if not matrix:
        return None
    return sum(sum(row) for row in matrix) - sum(row[i] for i, row in enumerate(matrix))
