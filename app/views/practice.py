"""Practice rounds (due → new → weak, one item at a time) and the timed mock interview."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.datastructures import FormData

from app.auth import ActingUser, CsrfChecked, OptionalUser
from app.content import QuestionBank
from app.content.render import render_markdown
from app.content.schema import NumericItem
from app.db import SessionDep, WriteSessionDep
from app.deps import BankDep
from app.inputs import TypedInt
from app.models.common import utcnow
from app.practice.answering import answer_item, find_item
from app.practice.generators import SEED_MAX, fresh_seed
from app.practice.grading import AnswerError, Presented, choice_index, present
from app.practice.rounds import (
    Mock,
    Round,
    drop_mock,
    drop_round,
    load_mock,
    load_round,
    save_mock,
    save_round,
)
from app.practice.selection import candidates
from app.repos import reviews
from app.web import render

router = APIRouter(prefix="/practice", tags=["practice"], include_in_schema=False)

RoundSize = Annotated[int, Query(ge=1, le=50)]
AUTO_GRADED = ("choice", "numeric")


def _question_filter(bank: QuestionBank, slug: str) -> str:
    if slug and bank.get(slug) is None:
        raise HTTPException(status_code=422, detail=f"question: no question is called '{slug}'")
    return slug


def _item_context(
    presented: Presented, question, round_: Round | None, reason: str, error: str = ""
) -> dict:
    item = presented.item
    return {
        "question": question,
        "item": item,
        "seed": presented.seed,
        "prompt_html": render_markdown(presented.prompt),
        "hint": presented.variant.hint if presented.variant else "",
        "unit": (presented.variant.unit if presented.variant else getattr(item, "unit", "")) or "",
        "answer_html": render_markdown(item.answer) if item.kind == "recall" else "",
        "round": round_,
        "position": round_.done + 1 if round_ else 1,
        "reason": reason,
        "error": error,
        "started": int(utcnow().timestamp() * 1000),
    }


@router.get("", response_class=HTMLResponse)
def practice(
    request: Request,
    bank: BankDep,
    session: SessionDep,
    user: OptionalUser,
    question: Annotated[str, Query(max_length=60)] = "",
    size: RoundSize = 10,
    new: bool = False,
) -> HTMLResponse:
    """The next item of the current round, or the round's summary when it is over."""
    slug = _question_filter(bank, question)
    round_ = load_round(request)
    if new or round_ is None or (slug and round_.question != slug):
        round_ = Round(question=slug, size=size)
        save_round(request, round_)
    now = utcnow()
    cards = (
        {c.item_id: c for c in reviews.cards_of(session, user_id=user.id)}
        if user and user.id
        else {}
    )
    scope = bank.get(round_.question) if round_.question else None
    upcoming = (
        []
        if round_.finished
        else candidates(bank, cards, now, question=scope, exclude=round_.answered)
    )
    if not upcoming:
        return render(request, "pages/practice_summary.html", _summary_context(bank, round_, scope))
    nxt = upcoming[0]
    seed = fresh_seed() if isinstance(nxt.item, NumericItem) and nxt.item.generator else None
    context = _item_context(present(nxt.item, seed), nxt.question, round_, nxt.reason)
    return render(request, "pages/practice.html", context)


def _summary_context(bank: QuestionBank, round_: Round, scope) -> dict:
    rows = []
    for item_id, correct, rating in round_.results:
        found = bank.item(item_id)
        if found:
            rows.append(
                {"question": found[0], "item": found[1], "correct": correct, "rating": rating}
            )
    graded = [r for r in rows if r["correct"] is not None]
    return {
        "rows": rows,
        "scope": scope,
        "correct": sum(1 for r in graded if r["correct"]),
        "graded": len(graded),
        "round": round_,
    }


@router.post("/answer", response_class=HTMLResponse, dependencies=[CsrfChecked])
def answer(
    request: Request,
    bank: BankDep,
    session: WriteSessionDep,
    user: ActingUser,
    item_id: Annotated[str, Form(max_length=80)],
    answer: Annotated[str, Form(max_length=200)] = "",
    seed: Annotated[int | None, Form(ge=1, le=SEED_MAX)] = None,
    hints_used: Annotated[int, Form(ge=0, le=10)] = 0,
    started: Annotated[int | None, Form(ge=0, le=2**53)] = None,  # ms since the epoch
) -> HTMLResponse:
    """Grade the answer, record the review, show the feedback (the explanation, next due)."""
    round_ = load_round(request) or Round()
    try:
        question, item = find_item(bank, item_id)
        given: object = answer
        if item.kind == "choice":
            given = choice_index(answer)
        elif item.kind == "numeric" and not answer.strip():
            raise AnswerError("answer", "type a number")
        now = utcnow()
        duration = int(now.timestamp() * 1000) - started if started else None
        recorded = answer_item(
            session,
            bank,
            user=user,
            item_id=item_id,
            answer=given,
            seed=seed,
            hints_used=hints_used,
            duration_ms=duration if duration and 0 < duration < 86_400_000 else None,
            now=now,
        )
    except AnswerError as error:
        found = bank.item(item_id)
        if found is None or error.field == "seed":
            raise HTTPException(status_code=422, detail=str(error)) from None
        context = _item_context(
            present(found[1], seed), found[0], round_, "retry", error=str(error)
        )
        return render(
            request,
            "pages/practice.html",
            context,
            fragment="partials/_practice_item.html",
            status_code=422,
        )
    round_.record(item.id, recorded.review.correct, recorded.review.rating)
    save_round(request, round_)
    context = {
        "question": question,
        "item": item,
        "outcome": recorded.outcome,
        "explanation_html": render_markdown(recorded.outcome.explanation),
        "expected_html": render_markdown(recorded.outcome.expected)
        if item.kind == "recall"
        else "",
        "card": recorded.card,
        "round": round_,
        "prompt_html": render_markdown(recorded.presented.prompt),
    }
    return render(
        request,
        "pages/practice_feedback.html",
        context,
        fragment="partials/_practice_feedback.html",
    )


@router.post("/undo", dependencies=[CsrfChecked])
def undo(request: Request, session: WriteSessionDep, user: OptionalUser) -> Response:
    """Take back the last grade: the review is removed and its card restored."""
    if user is not None and user.id is not None:
        removed = reviews.undo_last(session, user_id=user.id)
        round_ = load_round(request)
        if removed and round_ and round_.take_back(removed.item_id):
            save_round(request, round_)
    return RedirectResponse("/practice", status_code=303)


@router.post("/restart", dependencies=[CsrfChecked])
def restart(request: Request, question: Annotated[str, Form(max_length=60)] = "") -> Response:
    drop_round(request)
    target = f"/practice?question={question}" if question else "/practice"
    return RedirectResponse(target, status_code=303)


# --- mock interview -----------------------------------------------------------------------

# Typed by the learner: read by the one rule for numbers (app.worker.numbers).
MockSize = Annotated[TypedInt, Form(ge=1, le=20)]
MockMinutes = Annotated[TypedInt, Form(ge=1, le=90)]
GRACE = timedelta(seconds=15)


@router.get("/mock", response_class=HTMLResponse)
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
                "seed": seed,
                "prompt_html": render_markdown(shown.prompt),
                "unit": (shown.variant.unit if shown.variant else getattr(item, "unit", "")) or "",
            }
        )
    context = {"mock": running, "items": items, "deadline": running.deadline.isoformat()}
    return render(request, "pages/mock_round.html", context)


@router.post("/mock", dependencies=[CsrfChecked])
def start_mock(
    request: Request,
    bank: BankDep,
    session: SessionDep,
    user: OptionalUser,
    items: MockSize = 5,
    minutes: MockMinutes = 10,
) -> Response:
    now = utcnow()
    cards = (
        {c.item_id: c for c in reviews.cards_of(session, user_id=user.id)}
        if user and user.id
        else {}
    )
    chosen = candidates(bank, cards, now, kinds=AUTO_GRADED)[:items]
    picked = [
        (c.item.id, fresh_seed() if isinstance(c.item, NumericItem) and c.item.generator else None)
        for c in chosen
    ]
    save_mock(request, Mock(items=picked, started=now.isoformat(), minutes=minutes))
    return RedirectResponse("/practice/mock", status_code=303)


async def read_form(request: Request) -> FormData:
    return await request.form()


@router.post("/mock/submit", response_class=HTMLResponse, dependencies=[CsrfChecked])
def submit_mock(
    request: Request,
    bank: BankDep,
    session: WriteSessionDep,
    user: ActingUser,
    form: Annotated[FormData, Depends(read_form)],
) -> HTMLResponse:
    """Grade every answered item at once; feedback comes only now, at the end."""
    running = load_mock(request)
    if running is None:
        raise HTTPException(
            status_code=409, detail="No mock interview is running; start one first."
        )
    now = utcnow()
    results = []
    for index, (item_id, seed) in enumerate(running.items):
        question, item = find_item(bank, item_id)
        raw = form.get(f"answer-{index}")
        text = raw.strip() if isinstance(raw, str) else ""
        row: dict[str, Any] = {
            "question": question,
            "item": item,
            "given": text,
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
                row["explanation_html"] = render_markdown(recorded.outcome.explanation)
            except AnswerError as error:
                row["error"] = str(error)
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
