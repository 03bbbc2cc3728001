"""Geometry for the small SVG charts on the progress page (the templates only draw it)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from app.practice.progress import DayCount


@dataclass(frozen=True)
class Bar:
    label: str
    value: float
    x: float
    y: float
    width: float
    height: float
    title: str


@dataclass(frozen=True)
class Cell:
    x: int
    y: int
    level: int  # 0..4, a CSS class
    title: str


def column_bars(days: Sequence[DayCount], *, width: float = 560, height: float = 120) -> list[Bar]:
    """One vertical bar per day, scaled to the largest count."""
    top = max((d.count for d in days), default=0) or 1
    step = width / max(len(days), 1)
    bars = []
    for index, day in enumerate(days):
        h = (height - 18) * day.count / top
        bars.append(
            Bar(
                label=day.day.strftime("%d %b"),
                value=day.count,
                x=index * step + 2,
                y=height - 18 - h,
                width=step - 4,
                height=h,
                title=f"{day.day.isoformat()}: {day.count} due",
            )
        )
    return bars


def heatmap_cells(days: Sequence[DayCount], *, size: int = 12, gap: int = 2) -> list[Cell]:
    """A GitHub-style grid: one column per week (Monday on top), darker for more reviews."""
    if not days:
        return []
    top = max(d.count for d in days) or 1
    first_monday = days[0].day.toordinal() - days[0].day.weekday()
    cells = []
    for day in days:
        column = (day.day.toordinal() - first_monday) // 7
        level = 0 if day.count == 0 else min(4, 1 + int(3 * day.count / top))
        cells.append(
            Cell(
                x=column * (size + gap),
                y=day.day.weekday() * (size + gap),
                level=level,
                title=f"{day.day.isoformat()}: {day.count} review{'s' if day.count != 1 else ''}",
            )
        )
    return cells
