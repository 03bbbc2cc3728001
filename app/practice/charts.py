"""The progress page's charts as data for `static/js/charts.js` (Chart.js), each with the same
numbers as a table for readers without JavaScript or a screen reader."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from app.practice.progress import DayCount


def forecast_chart(days: Sequence[DayCount]) -> dict[str, Any]:
    labels = [d.day.strftime("%d %b") for d in days]
    spec = {
        "type": "bar",
        "x": {"title": "day", "labels": labels},
        "y": {"title": "items due", "min": 0},
        "series": [{"label": "due", "values": [d.count for d in days]}],
    }
    return {
        "id": "forecast",
        "title": "Items due per day",
        "spec": spec,
        "columns": ["day", "due"],
        "rows": [[d.day.isoformat(), d.count] for d in days],
        "caption": "",
    }


WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def heatmap_chart(days: Sequence[DayCount]) -> dict[str, Any]:
    """A calendar: one column per week (its Monday), one row per weekday."""
    weeks: dict[str, list[Any]] = {}
    points = []
    for day in days:
        monday = day.day - timedelta(days=day.day.weekday())
        week = monday.strftime("%d %b")
        weeks.setdefault(week, ["" for _ in WEEKDAYS])[day.day.weekday()] = day.count
        plural = "s" if day.count != 1 else ""
        points.append(
            {
                "x": week,
                "y": WEEKDAYS[day.day.weekday()],
                "v": day.count,
                "title": f"{day.day.isoformat()}: {day.count} review{plural}",
            }
        )
    spec = {
        "type": "matrix",
        "x": {"title": "week of", "labels": list(weeks)},
        "y": {"title": "", "labels": list(WEEKDAYS)},
        "points": points,
    }
    return {
        "id": "review-calendar",
        "size": "chart-calendar",
        "title": "Reviews per day over the last 90 days; darker is more",
        "spec": spec,
        "columns": ["week of", *WEEKDAYS],
        "rows": [[week, *counts] for week, counts in weeks.items()],
        "caption": "",
    }
