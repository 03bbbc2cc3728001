"""The compared runs as CSV files: their curves (one row per run and epoch) and their figures
(one row per run), with the numbers exactly as metrics.json holds them.

A float is written as Python's `repr` (the shortest text that reads back to the same double),
so a spreadsheet or pandas gets metrics.json's values, not the page's rounded ones. A missing
value is an empty cell.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import Any

from app.models.runs import Run
from app.runs.compare import METRICS, _figure

# The per-epoch columns, in metrics.json's `history` names.
CURVE_COLUMNS = ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr")


def _cell(value: Any) -> Any:
    if value is None or isinstance(value, bool):
        return "" if value is None else str(value).lower()
    return repr(value) if isinstance(value, float) else value


def curves_csv(runs: Sequence[Run]) -> str:
    """run, epoch, then CURVE_COLUMNS: one row per finished epoch of each run."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["run", "epoch", *CURVE_COLUMNS])
    for run in runs:
        for entry in run.history:
            if isinstance(entry, dict):
                writer.writerow(
                    [
                        run.id,
                        _cell(entry.get("epoch")),
                        *(_cell(entry.get(c)) for c in CURVE_COLUMNS),
                    ]
                )
    return out.getvalue()


def figures_csv(runs: Sequence[Run]) -> str:
    """run, status, model, dataset, then the compare table's figures (METRICS keys)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    keys = [key for key, _, _ in METRICS]
    writer.writerow(["run", "status", "model", "dataset", *keys])
    for run in runs:
        writer.writerow(
            [
                run.id,
                run.status,
                run.config.get("model"),
                run.config.get("dataset"),
                *(_cell(_figure(run, key)) for key in keys),
            ]
        )
    return out.getvalue()
