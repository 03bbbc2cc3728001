"""The progress dashboard, and export / import of one's own data."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, File, HTTPException, Request, UploadFile
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from app.auth import ActingUser, OptionalUser
from app.csrf import CsrfChecked
from app.db import SessionDep, WriteSessionDep
from app.deps import BankDep, SettingsDep
from app.models import User
from app.models.common import utcnow
from app.practice.charts import forecast_chart, heatmap_chart
from app.practice.export import check_export, export_user, import_user, parse_export
from app.practice.progress import (
    MASTERY_DEFINITION,
    MASTERY_SOURCE,
    QuestionProgress,
    TagProgress,
    by_question,
    by_tag,
    due_forecast,
    heatmap,
    mistakes,
    streak,
    true_retention,
)
from app.repos import reviews
from app.web import render
from app.worker.errors import InvalidInput

router = APIRouter(prefix="/progress", tags=["progress"], include_in_schema=False)


@dataclass(frozen=True)
class ProgressPage:
    """What pages/progress.html reads."""

    user: User | None
    questions: list[QuestionProgress]
    tags: list[TagProgress]
    mastery_definition: str
    mastery_source: str
    mistake_count: int
    forecast_chart: dict[str, Any]  # partials/_chart.html's chart
    forecast_total: int  # reviews due in the forecast's days
    heatmap_chart: dict[str, Any]
    heatmap_top: int  # reviews on the busiest day
    heatmap_active_days: int
    streak: int  # days in a row with a review, up to today
    retention: float | None  # passed / tested, None before any retest
    retention_counts: tuple[int, int]  # (passed, tested)
    review_total: int
    imported: str | None  # the summary after an import, from the query string


@router.get("", response_class=HTMLResponse)
def progress_page(
    request: Request, bank: BankDep, session: SessionDep, user: OptionalUser
) -> HTMLResponse:
    now = utcnow()
    today = now.date()
    user_id = user.id if user is not None else None
    card_list = reviews.cards_of(session, user_id=user_id) if user_id is not None else []
    history = reviews.reviews_of(session, user_id=user_id) if user_id is not None else []
    cards = {c.item_id: c for c in card_list}
    passed, tested = true_retention(history)
    forecast = due_forecast(card_list, today)
    days = heatmap(history, today)
    context = ProgressPage(
        user=user,
        questions=by_question(bank, cards, history, now),
        tags=by_tag(bank, cards, history),
        mastery_definition=MASTERY_DEFINITION,
        mastery_source=MASTERY_SOURCE,
        mistake_count=len(mistakes(history)),
        forecast_chart=forecast_chart(forecast),
        forecast_total=sum(d.count for d in forecast),
        heatmap_chart=heatmap_chart(days),
        heatmap_top=max((d.count for d in days), default=0),
        heatmap_active_days=sum(1 for d in days if d.count),
        streak=streak(history, today),
        retention=(passed / tested) if tested else None,
        retention_counts=(passed, tested),
        review_total=len(history),
        imported=request.query_params.get("imported"),
    )
    return render(request, "pages/progress.html", context)


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
    except InvalidInput as refused:
        return _import_error(request, list(refused.details))
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
