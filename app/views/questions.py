"""HTML pages: the question list (home) and one question."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse

from app.auth import OptionalUser
from app.content import Question, QuestionBank
from app.db import SessionDep
from app.deps import BankDep
from app.models.common import utcnow
from app.progress import by_question
from app.repos import drafts, reviews
from app.web import render

router = APIRouter(tags=["pages"], include_in_schema=False)

SearchText = Annotated[str, Query(max_length=200, description="Words to find in any question")]
TagFilter = Annotated[str, Query(max_length=60, description="Only questions with this tag")]


def question_or_404(bank: QuestionBank, slug: str) -> Question:
    question = bank.get(slug)
    if question is None:
        raise HTTPException(status_code=404, detail=f"No question is called '{slug}'.")
    return question


@router.get("/", response_class=HTMLResponse)
def home(
    request: Request,
    bank: BankDep,
    session: SessionDep,
    user: OptionalUser,
    q: SearchText = "",
    tag: TagFilter = "",
) -> HTMLResponse:
    if tag and tag not in bank.tags:
        raise HTTPException(status_code=422, detail=f"tag: unknown tag '{tag}'")
    progress, resume = {}, None
    if user is not None and user.id is not None:
        cards = {c.item_id: c for c in reviews.cards_of(session, user_id=user.id)}
        history = reviews.reviews_of(session, user_id=user.id)
        progress = {row.slug: row for row in by_question(bank, cards, history, utcnow())}
        latest = history[-1] if history else None
        resume = bank.get(latest.question_slug) if latest else None
    context = {
        "questions": bank.search(q, tag),
        "total": len(bank),
        "tags": bank.tags,
        "q": q,
        "tag": tag,
        "progress": progress,
        "due_now": sum(row.due for row in progress.values()),
        "resume": resume,
    }
    return render(request, "pages/home.html", context, fragment="partials/_question_list.html")


@router.get("/questions/{slug}", response_class=HTMLResponse)
def question_page(
    request: Request,
    slug: str,
    bank: BankDep,
    session: SessionDep,
    user: OptionalUser,
    reveal: Annotated[bool, Query()] = False,
) -> HTMLResponse:
    question = question_or_404(bank, slug)
    previous, following = bank.neighbours(slug)
    draft = None
    if user is not None and user.id is not None:
        draft = drafts.draft_for(session, user_id=user.id, question_slug=slug)
    context = {
        "question": question,
        "previous": previous,
        "next": following,
        "reveal": reveal,
        "total": len(bank),
        "draft": draft.text if draft else "",
    }
    fragment = "partials/_answer.html" if reveal else None
    return render(request, "pages/question.html", context, fragment=fragment)
