"""Runs side by side: overlaid curves, a metrics table with the best per column, the config
fields that differ (the equal ones apart), per-class recall in columns.

`comparison(runs, labels)` is what both `/runs/compare` and `GET /api/runs/compare` give; the
page draws its charts from `charts(...)` (Chart.js specs, as app.runs.present makes them).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from app.models.runs import Run
from app.runs.present import Chart, _line, num, pct
from app.worker.errors import InvalidInput

MAX_RUNS = 8  # more lines than this are unreadable on one chart
# (key, heading, which is best: "max" | "min"). Figures from the run's last validation report,
# except images_per_s (training throughput) and seconds (wall-clock, start to end).
METRICS = (
    ("val_accuracy", "val accuracy", "max"),
    ("macro_f1", "macro-F1", "max"),
    ("val_loss", "val loss", "min"),
    ("ece", "ECE", "min"),
    # Training accuracy is no "best": a net that memorises its training set tops it.
    ("train_accuracy", "train accuracy", None),
    ("images_per_s", "images/s", "max"),
    ("seconds", "seconds", "min"),
    ("parameters", "parameters", None),
)


def parse_ids(text: str | None) -> list[int]:
    """ "1,2,3" → [1, 2, 3]: 2 to MAX_RUNS distinct positive ids. Raises InvalidInput naming `ids`."""
    parts = [p.strip() for p in (text or "").split(",") if p.strip()]
    if len(parts) > MAX_RUNS:
        raise InvalidInput("ids", f"at most {MAX_RUNS} runs at once, got {len(parts)}")
    ids: list[int] = []
    for part in parts:
        if not part.isascii() or not part.isdigit() or len(part) > 10 or int(part) < 1:
            raise InvalidInput("ids", f"expected run ids separated by commas, got '{part[:20]}'")
        if int(part) not in ids:
            ids.append(int(part))
    if len(ids) < 2:
        raise InvalidInput("ids", "name at least 2 different runs, e.g. ids=3,4")
    return ids


def _figure(run: Run, key: str) -> float | None:
    if key == "seconds":
        return run.seconds
    if key == "parameters":
        value = ((run.metrics or {}).get("model") or {}).get("parameters")
    else:
        value = (run.metrics or {}).get(key)
    return float(value) if isinstance(value, int | float) else None


def metrics_table(runs: Sequence[Run], incomparable: Sequence[int] = ()) -> dict[str, Any]:
    """{columns, rows: [{id, values}], best: {key: [run ids]}} (ties share the best).

    Runs in `incomparable` (scored on other classes, such as a pretraining run) are listed but
    never marked best."""
    best: dict[str, list[int]] = {}
    figures = {run.id: {key: _figure(run, key) for key, _, _ in METRICS} for run in runs}
    rows = [{"id": run_id, "values": values} for run_id, values in figures.items()]
    for key, _, better in METRICS:
        values = [
            (v[key], run_id)
            for run_id, v in figures.items()
            if v[key] is not None and run_id not in incomparable
        ]
        if better is None or len(values) < 2 or any(run_id is None for _, run_id in values):
            continue
        numbers = [v for v, _ in values if v is not None]
        target = max(numbers) if better == "max" else min(numbers)
        best[key] = [run_id for v, run_id in values if v == target and run_id is not None]
    columns = [{"key": key, "heading": heading, "best": better} for key, heading, better in METRICS]
    return {"columns": columns, "rows": rows, "best": best}


def config_differences(runs: Sequence[Run]) -> dict[str, Any]:
    """{differ: {field: [value per run]}, same: {field: value}} in RunConfig's field order."""
    fields: list[str] = []
    for run in runs:
        fields += [f for f in run.config if f not in fields]
    differ: dict[str, list[Any]] = {}
    same: dict[str, Any] = {}
    for field in fields:
        values = [run.config.get(field) for run in runs]
        if all(v == values[0] for v in values):
            same[field] = values[0]
        else:
            differ[field] = values
    return {"differ": differ, "same": same}


def per_class_recall(runs: Sequence[Run]) -> dict[str, Any]:
    """{classes: [...], recall: {class: [recall per run or None]}} over every run's classes."""
    classes: list[str] = []
    recalls: list[dict[str, float]] = []
    for run in runs:
        metrics = run.metrics or {}
        names = list(metrics.get("classes") or [])
        per_class = metrics.get("per_class") or []
        mine = {}
        for name, entry in zip(names, per_class, strict=False):
            if isinstance(entry, dict) and isinstance(entry.get("recall"), int | float):
                mine[name] = float(entry["recall"])
        recalls.append(mine)
        classes += [c for c in names if c not in classes]
    return {"classes": classes, "recall": {c: [r.get(c) for r in recalls] for c in classes}}


def curves(runs: Sequence[Run], labels: Sequence[str]) -> dict[str, list[list[Any]]]:
    """Per run label: [[epoch, val_accuracy, val_loss, train_loss], ...]."""
    out = {}
    for run, label in zip(runs, labels, strict=True):
        history = [h for h in run.history if isinstance(h, dict)]
        out[label] = [
            [h.get("epoch"), h.get("val_accuracy"), h.get("val_loss"), h.get("train_loss")]
            for h in history
        ]
    return out


def default_labels(runs: Sequence[Run]) -> list[str]:
    """ "run 12" for each run."""
    return [f"run {run.id}" for run in runs]


def comparison(
    runs: Sequence[Run], labels: Sequence[str] | None = None, incomparable: Sequence[int] = ()
) -> dict[str, Any]:
    """Everything the page shows, as JSON values (`incomparable`: see metrics_table)."""
    labels = list(labels or default_labels(runs))
    return {
        "runs": [
            {"id": run.id, "label": label, "status": run.status}
            for run, label in zip(runs, labels, strict=True)
        ],
        "metrics": metrics_table(runs, incomparable),
        "config": config_differences(runs),
        "per_class_recall": per_class_recall(runs),
        "curves": curves(runs, labels),
    }


def charts(data: dict[str, Any]) -> list[Chart]:
    """Validation accuracy and loss per epoch, one line per run (with their tables)."""
    curves_by_label: dict[str, list[list[Any]]] = data["curves"]
    labels = list(curves_by_label)
    epochs = sorted({p[0] for points in curves_by_label.values() for p in points if p[0]})
    made = []
    for index, (key, title, y) in enumerate(
        (
            ("accuracy", "Validation accuracy", {"min": 0, "max": 1, "percent": True}),
            ("loss", "Validation loss", {"min": 0}),
        ),
        start=1,
    ):
        series = [
            {"label": label, "points": [[p[0], p[index]] for p in curves_by_label[label]]}
            for label in labels
        ]
        show = pct if key == "accuracy" else num
        rows = []
        for epoch in epochs:
            row: list[Any] = [epoch]
            for label in labels:
                match = [p[index] for p in curves_by_label[label] if p[0] == epoch]
                row.append(show(match[0]) if match else "–")
            rows.append(row)
        made.append(
            Chart(
                f"compare-{key}",
                title,
                _line(series, "epoch", key, y=y),
                ["epoch", *labels],
                rows,
            )
        )
    return made
