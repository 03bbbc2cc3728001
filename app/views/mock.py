"""The timed mock interview: items drawn across the syllabus, feedback only at the end."""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.datastructures import FormData

from app.auth import ActingUser, OptionalUser
from app.content.render import render_markdown
from app.csrf import CsrfChecked
from app.db import SessionDep, WriteSessionDep
from app.deps import BankDep
from app.inputs import TypedInt
from app.messages import on_screen
from app.models.common import utcnow
from app.practice.answering import answer_item, find_item
from app.practice.generators import fresh_seed
from app.practice.grading import ANSWER_LABELS, choice_index, needs_seed, present, solution
from app.practice.rounds import Mock, drop_mock, load_mock, save_mock
from app.practice.selection import mock_draw
from app.repos import reviews
from app.web import render
from app.worker.errors import InvalidInput

router = APIRouter(prefix="/practice/mock", tags=["practice"], include_in_schema=False)

# Typed by the learner: read by the one rule for numbers (app.worker.numbers).
MockSize = Annotated[TypedInt, Form(ge=1, le=20)]
MockMinutes = Annotated[TypedInt, Form(ge=1, le=90)]
GRACE = timedelta(seconds=15)


@router.get("", response_class=HTMLResponse)
def mock(request: Request, bank: BankDep) -> HTMLResponse:
    """The running mock interview, or the form that starts one."""
    running = load_mock(request)
    if running is None:
        return render(request, "pages/mock_start.html", {})
    items = []
    for item_id, seed in running.items:
        question, item = find_item(bank, item_id)
        shown = present(item, seed)
        items.append(
            {
                "question": question,
                "item": item,
                "presented": shown,
                "prompt_html": render_markdown(shown.prompt),
                "unit": shown.unit,
            }
        )
    context = {"mock": running, "items": items, "deadline": running.deadline}
    return render(request, "pages/mock_round.html", context)


@router.post("", dependencies=[CsrfChecked])
def start_mock(
    request: Request,
    bank: BankDep,
    session: SessionDep,
    user: OptionalUser,
    items: MockSize = 5,
    minutes: MockMinutes = 10,
) -> Response:
    """Draw `items` auto-graded items across the syllabus and start the clock."""
    now = utcnow()
    cards = (
        {c.item_id: c for c in reviews.cards_of(session, user_id=user.id)}
        if user and user.id
        else {}
    )
    chosen = mock_draw(bank, cards, now, count=items, rng=random.Random(fresh_seed()))
    picked = [(c.item.id, fresh_seed() if needs_seed(c.item) else None) for c in chosen]
    save_mock(request, Mock(items=picked, started=now.isoformat(), minutes=minutes))
    return RedirectResponse("/practice/mock", status_code=303)


async def read_form(request: Request) -> FormData:
    return await request.form()


@router.post("/submit", response_class=HTMLResponse, dependencies=[CsrfChecked])
def submit_mock(
    request: Request,
    bank: BankDep,
    session: WriteSessionDep,
    user: ActingUser,
    form: Annotated[FormData, Depends(read_form)],
) -> HTMLResponse:
    """Grade every answered item at once; feedback comes only now, at the end: for every item
    the question, your answer, the right answer and the explanation, skipped ones included."""
    running = load_mock(request)
    if running is None:
        raise HTTPException(
            status_code=409, detail="No mock interview is running; start one first."
        )
    now = utcnow()
    results = []
    for index, (item_id, seed) in enumerate(running.items):
        question, item = find_item(bank, item_id)
        shown = present(item, seed)
        raw = form.get(f"answer-{index}")
        text = raw.strip() if isinstance(raw, str) else ""
        right = solution(shown)
        row: dict[str, Any] = {
            "question": question,
            "item": item,
            "prompt_html": render_markdown(shown.prompt),
            "given": text,
            "expected": right.expected,
            "explanation_html": render_markdown(right.explanation),
            "outcome": None,
            "error": "",
        }
        if text:
            try:
                given: object = choice_index(text) if item.kind == "choice" else text
                recorded = answer_item(
                    session,
                    bank,
                    user=user,
                    item_id=item_id,
                    answer=given,
                    seed=seed,
                    mode="mock",
                    now=now,
                )
                row["outcome"] = recorded.outcome
                row["given"] = recorded.outcome.given
                row["explanation_html"] = render_markdown(recorded.outcome.explanation)
            except InvalidInput as error:
                row["error"] = on_screen(error, ANSWER_LABELS)
        results.append(row)
    drop_mock(request)
    over = now - running.deadline
    context = {
        "results": results,
        "correct": sum(1 for r in results if r["outcome"] and r["outcome"].correct),
        "total": len(results),
        "over_time": over if over > GRACE else None,
        "minutes": running.minutes,
    }
    return render(request, "pages/mock_result.html", context)
