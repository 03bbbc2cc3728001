"""A confusion matrix of many classes, shown the way people read one.

Up to `MATRIX_MAX_CLASSES` classes the run page draws the whole matrix (a heat map and a
table, classes² cells). Past that a page of the matrix would grow with the square of the
classes (1,000 classes: a million cells), so the page lists the `TOP` largest confusions
(true class, predicted class, images, share of the true class), a search shows one class's
row and column (the classes it is taken for and the ones taken for it), and the full matrix
is a CSV download streamed row by row. Every part is bounded by `TOP`, not by classes².
"""

from __future__ import annotations

import csv
import heapq
import io
import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

MATRIX_MAX_CLASSES = 30
TOP = 50


@dataclass(frozen=True)
class Confusion:
    """One off-diagonal cell: `count` validation images of class `true` predicted as
    `predicted` (indices into the run's classes); `share` = count / the true class's images."""

    true: int
    predicted: int
    count: int
    share: float


def matrix_of(metrics: dict[str, Any]) -> tuple[list[str], list[list[int]]] | None:
    """(classes, matrix) when metrics.json holds a square matrix over its classes, else None."""
    matrix = metrics.get("confusion_matrix")
    classes = [str(c) for c in metrics.get("classes") or []]
    if not matrix or len(matrix) != len(classes):
        return None
    return classes, matrix


def _cells(
    matrix: Sequence[Sequence[int]], rows: Iterator[int] | None = None
) -> Iterator[Confusion]:
    for i in rows if rows is not None else range(len(matrix)):
        row = matrix[i]
        total = sum(row) or 1
        for j, count in enumerate(row):
            if i != j and count:
                yield Confusion(i, j, int(count), count / total)


def top(matrix: Sequence[Sequence[int]], k: int = TOP) -> list[Confusion]:
    """The `k` largest off-diagonal cells, largest first (ties: lower true, then predicted).
    O(classes²) time once, O(k) memory."""
    return heapq.nsmallest(k, _cells(matrix), key=lambda c: (-c.count, c.true, c.predicted))


def of_class(
    matrix: Sequence[Sequence[int]], index: int, k: int = TOP
) -> tuple[list[Confusion], list[Confusion]]:
    """Class `index`'s confusions: (taken for other classes: its row, other classes taken for
    it: its column), each the `k` largest, largest first."""
    row = heapq.nsmallest(k, _cells(matrix, iter([index])), key=lambda c: (-c.count, c.predicted))
    column = [
        Confusion(i, index, int(r[index]), r[index] / (sum(r) or 1))
        for i, r in enumerate(matrix)
        if i != index and r[index]
    ]
    column = heapq.nsmallest(k, column, key=lambda c: (-c.count, c.true))
    return row, column


def find_class(classes: Sequence[str], text: str) -> int | None:
    """The index of the class named `text` (exact, then case-insensitive, then the first whose
    name contains it), or None."""
    wanted = text.strip()
    if not wanted:
        return None
    for test in (
        lambda c: c == wanted,
        lambda c: c.casefold() == wanted.casefold(),
        lambda c: wanted.casefold() in c.casefold(),
    ):
        for i, name in enumerate(classes):
            if test(name):
                return i
    return None


def _cell(value: object) -> object:
    # A spreadsheet runs a cell that starts like a formula; class names come from uploads.
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def csv_rows(classes: Sequence[str], matrix: Sequence[Sequence[int]]) -> Iterator[str]:
    """The whole matrix as CSV text, one line at a time: a header of predicted classes, then
    one row per true class (RFC 4180 quoting; a name that a spreadsheet would take for a
    formula is prefixed with `'`)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    header: list[object] = [r"true \ predicted", *classes]
    rows = ([name, *row] for name, row in zip(classes, matrix, strict=True))
    for line in itertools.chain([header], rows):
        writer.writerow([_cell(v) for v in line])
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
