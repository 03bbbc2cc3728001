"""The progress dashboard, and export / import of one's own data."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, File, HTTPException, Request, UploadFile
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from app.auth import ActingUser, CsrfChecked, OptionalUser
from app.db import SessionDep, WriteSessionDep
from app.deps import BankDep, SettingsDep
from app.models.common import utcnow
from app.progress import (
    DayCount,
    QuestionProgress,
    TagAccuracy,
    by_question,
    by_tag,
    due_forecast,
    heatmap,
    streak,
    true_retention,
)
from app.repos import reviews
from app.transfer import ImportRefused, check_export, export_user, import_user, parse_export
from app.web import render

router = APIRouter(prefix="/progress", tags=["progress"], include_in_schema=False)


@router.get("", response_class=HTMLResponse)
def progress_page(
    request: Request, bank: BankDep, session: SessionDep, user: OptionalUser
) -> HTMLResponse:
    now = utcnow()
    today = now.date()
    user_id = user.id if user is not None else None
    card_list = reviews.cards_of(session, user_id=user_id) if user_id is not None else []
    history = reviews.reviews_of(session, user_id=user_id) if user_id is not None else []
    passed, tested = true_retention(history)
    forecast = due_forecast(card_list, today)
    questions = by_question(bank, {c.item_id: c for c in card_list}, history, now)
    tags = [t for t in by_tag(bank, history) if t.graded]
    context = {
        "user": user,
        "questions": questions,
        "tags": tags,
        "mastery_chart": mastery_chart(questions),
        "tags_chart": tags_chart(tags) if tags else None,
        "forecast_chart": forecast_chart(forecast),
        "forecast_total": sum(d.count for d in forecast),
        "heatmap_chart": heatmap_chart(heatmap(history, today)),
        "streak": streak(history, today),
        "retention": (passed / tested) if tested else None,
        "retention_counts": (passed, tested),
        "review_total": len(history),
        "imported": request.query_params.get("imported"),
    }
    return render(request, "pages/progress.html", context)


# --- the charts: data for static/js/charts.js, each with the same numbers as a table ---------


def mastery_chart(rows: Sequence[QuestionProgress]) -> dict[str, Any]:
    spec = {
        "type": "bar",
        "horizontal": True,
        "x": {
            "title": "mastery (mean recall probability today)",
            "min": 0,
            "max": 1,
            "percent": True,
        },
        "y": {"title": "", "labels": [f"Q{r.number}" for r in rows]},
        "series": [{"label": "mastery", "values": [round(r.mastery, 4) for r in rows]}],
    }
    table = [[f"Q{r.number}. {r.title}", f"{round(r.mastery * 100)} %", r.due] for r in rows]
    return {
        "id": "mastery",
        "size": "chart-rows",
        "title": "Mastery per question",
        "spec": spec,
        "columns": ["question", "mastery", "due now"],
        "rows": table,
        "caption": "",
    }


def tags_chart(tags: Sequence[TagAccuracy]) -> dict[str, Any]:
    spec = {
        "type": "bar",
        "horizontal": True,
        "x": {"title": "answered right", "min": 0, "max": 1, "percent": True},
        "y": {"title": "", "labels": [t.tag for t in tags]},
        "series": [{"label": "right", "values": [round(t.correct / t.graded, 4) for t in tags]}],
    }
    table = [[t.tag, t.correct, t.graded, f"{round(100 * t.correct / t.graded)} %"] for t in tags]
    return {
        "id": "tag-accuracy",
        "title": "Accuracy per tag",
        "spec": spec,
        "columns": ["tag", "right", "graded", "share"],
        "rows": table,
        "caption": "",
    }


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


@router.get("/export.json")
def export_progress(session: SessionDep, user: OptionalUser) -> Response:
    """Everything this user has stored, as one JSON file."""
    if user is None or user.id is None:
        raise HTTPException(
            status_code=404, detail="Nothing to export yet: answer a quiz item first."
        )
    data = export_user(session, user=user)
    stamp = data.exported_at.strftime("%Y%m%d")
    return JSONResponse(
        json.loads(data.model_dump_json()),
        headers={
            "Content-Disposition": f'attachment; filename="cvprep-progress-{stamp}.json"',
            "Cache-Control": "no-store",
        },
    )


@router.post("/import", response_class=HTMLResponse, dependencies=[CsrfChecked])
def import_progress(
    request: Request,
    settings: SettingsDep,
    bank: BankDep,
    session: WriteSessionDep,
    user: ActingUser,
    file: Annotated[UploadFile, File(description="A file from Export")],
) -> Response:
    """Merge an exported file into this user's data; a bad file changes nothing."""
    raw = file.file.read(settings.upload_max_bytes + 1)
    if len(raw) > settings.upload_max_bytes:
        return _import_error(request, [f"file: larger than {settings.upload_max_bytes:,} bytes"])
    try:
        # Checked whole before the write transaction begins: a bad file changes nothing.
        plan = check_export(parse_export(raw), bank)
    except ImportRefused as refused:
        return _import_error(request, refused.problems)
    counts = import_user(session, user=user, plan=plan)
    summary = f"{counts['reviews']} reviews, {counts['cards']} cards, {counts['drafts']} drafts"
    left_out = sum(plan.skipped.values())
    if left_out:
        summary += f"; {left_out} entries for items this version does not have were left out"
    return RedirectResponse(f"/progress?{urlencode({'imported': summary})}", status_code=303)


def _import_error(request: Request, problems: list[str]) -> HTMLResponse:
    messages = ["file: not a cvprep export this version can use; nothing was imported.", *problems]
    return render(
        request, "pages/error.html", {"status_code": 422, "messages": messages}, status_code=422
    )
