"""The pooling visualizer's form: its fields, defaults and labels, and the pooling settings
and traced cell a submitted form asks for (the grid is parsed by the worker's `parse_grid`)."""

from __future__ import annotations

from app.demos.forms import FormValues
from app.worker.errors import InvalidInput
from app.worker.numbers import parse_int
from app.worker.pooling import CONV_WEIGHTS, EXAMPLE_GRID, PoolingSpec, grid_text

POOLING_DEFAULTS = {
    "photo": "astronaut",
    "kernel": "2",
    "stride": "",
    "conv_weights": "edges",
    "grid": grid_text(EXAMPLE_GRID),
    "cell": "0,0",
}
POOLING_LABELS = {
    "kernel": "Kernel (k×k)",
    "stride": "Stride",
    "conv_weights": "Strided conv weights",
    "photo": "Photo",
    "grid": "Grid of numbers (rows of 2–12 values)",
    "cell": "Traced output cell",
    "image": "Your own photo",
}
WEIGHT_TITLES = {
    "edges": "edges (left −, right +)",
    "blur": "blur (1/k² each: average pooling as a conv)",
    "subsample": "subsample (one tap: keep every s-th pixel)",
}


def pooling_spec_from(form: FormValues) -> PoolingSpec:
    """The pooling settings the form asks for. Raises InvalidInput naming the field."""
    stride_text = form.text("stride").strip()
    return PoolingSpec(
        kernel=form.integer("kernel"),
        stride=form.integer("stride") if stride_text else None,
        conv_weights=form.choice("conv_weights", CONV_WEIGHTS),  # type: ignore[arg-type]
    )


def traced_cell(form: FormValues) -> tuple[int, int]:
    """The output cell whose reads are traced, as (row, column). Raises InvalidInput naming
    the field."""
    raw = form.text("cell").replace(" ", "")
    parts = raw.split(",")
    if len(parts) != 2:
        raise InvalidInput("cell", f"must be row,column, e.g. 0,1 (got {raw[:40]!r})")
    row, col = (parse_int(part, field="cell", minimum=0, maximum=10_000) for part in parts)
    return row, col
