"""HTML pages: the question list (home) and one question."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse
from sqlalchemy import Engine
from sqlmodel import Session

from app.auth import OptionalUser
from app.content import Question, QuestionBank
from app.db import EngineDep, read_session
from app.deps import BankDep
from app.experiments import refusal
from app.experiments.presets import PRESETS, Preset
from app.models import Draft
from app.models.common import utcnow
from app.practice.progress import by_question
from app.repos import drafts, reviews
from app.views.experiments import latest_results
from app.web import render, render_shared, templates

router = APIRouter(tags=["pages"], include_in_schema=False)


@dataclass(frozen=True)
class QuestionPage:
    """What pages/question.html reads."""

    question: Question
    previous: Question | None
    next: Question | None
    reveal: bool  # the model answer is shown
    total: int  # questions in the bank
    draft: str  # the learner's saved draft ("" if none)
    demos_html: str  # the question's inline demos, rendered
    presets: Mapping[str, Preset]  # every experiment, for "Run it"
    size: str  # the size "Run it" launches (EXPERIMENT_SIZE)
    # preset → the user's newest experiment whose runs all exist, described, with `fallback`:
    # the id of a newer one that lost a run, or None.
    latest: dict[str, Any]
    # A launch refused here (signed by this server): (preset, status, message), or None.
    refused: tuple[str, int, str] | None


SearchText = Annotated[str, Query(max_length=200, description="Words to find in any question")]
TagFilter = Annotated[str, Query(max_length=60, description="Only questions with this tag")]


def question_or_404(bank: QuestionBank, slug: str) -> Question:
    question = bank.get(slug)
    if question is None:
        raise HTTPException(status_code=404, detail=f"No question is called '{slug}'.")
    return question


def _home_progress(
    engine: Engine, bank: QuestionBank, user_id: int
) -> tuple[dict, Question | None]:
    with read_session(engine) as session:
        return _progress_and_resume(session, bank, user_id)


def _progress_and_resume(
    session: Session, bank: QuestionBank, user_id: int
) -> tuple[dict, Question | None]:
    cards = {c.item_id: c for c in reviews.cards_of(session, user_id=user_id)}
    history = reviews.reviews_of(session, user_id=user_id)
    progress = {row.slug: row for row in by_question(bank, cards, history, utcnow())}
    latest = history[-1] if history else None
    return progress, (bank.get(latest.question_slug) if latest else None)


# The two pages are `async`: a first-time visitor is served without leaving the event loop,
# and only a known user's data is read, in a worker thread.


@router.get("/", response_class=HTMLResponse)
async def home(
    request: Request,
    engine: EngineDep,
    bank: BankDep,
    user: OptionalUser,
    q: SearchText = "",
    tag: TagFilter = "",
) -> HTMLResponse:
    if tag and tag not in bank.tags:
        raise HTTPException(status_code=422, detail=f"tag: unknown tag '{tag}'")
    progress: dict = {}
    resume = None
    if user is not None and user.id is not None:
        progress, resume = await run_in_threadpool(_home_progress, engine, bank, user.id)
    hits = bank.search(q, tag)
    context = {
        "questions": [hit.question for hit in hits],
        "hits": {hit.question.slug: hit.snippet for hit in hits if hit.snippet},
        "total": len(bank),
        "tags": bank.tags,
        "q": q,
        "tag": tag,
        "progress": progress,
        "due_now": sum(row.due for row in progress.values()),
        "resume": resume,
    }
    return render(request, "pages/home.html", context, fragment="partials/_question_list.html")


def _draft(engine: Engine, user_id: int, slug: str) -> Draft | None:
    with read_session(engine) as session:
        return drafts.draft_for(session, user_id=user_id, question_slug=slug)


def demos_html(request: Request, question: Question) -> str:
    """The question's inline demo forms, rendered once per process (they are the same for all)."""
    cache: dict[str, str] = request.app.state.__dict__.setdefault("demos_html", {})
    if question.slug not in cache:
        partial = templates.get_template("partials/_question_demos.html")
        cache[question.slug] = partial.render(question=question) if question.meta.demos else ""
    return cache[question.slug]


@router.get("/questions/{slug}", response_class=HTMLResponse)
async def question_page(
    request: Request,
    engine: EngineDep,
    slug: str,
    bank: BankDep,
    user: OptionalUser,
    reveal: Annotated[bool, Query()] = False,
    refused: Annotated[str | None, Query(max_length=1000)] = None,
) -> HTMLResponse:
    question = question_or_404(bank, slug)
    previous, following = bank.neighbours(slug)
    draft = None
    latest: dict[str, Any] = {}
    if user is not None and user.id is not None:
        draft = await run_in_threadpool(_draft, engine, user.id, slug)
        latest = await run_in_threadpool(
            latest_results,
            engine,
            request.app.state.settings,
            user,
            list(question.meta.experiments),
        )
    context = QuestionPage(
        question=question,
        previous=previous,
        next=following,
        reveal=reveal,
        total=len(bank),
        draft=draft.text if draft else "",
        demos_html=demos_html(request, question),
        presets=PRESETS,
        size=request.app.state.settings.experiment_size,
        latest=latest,
        refused=refusal.read(request.app.state.settings, refused) if user else None,
    )
    fragment = "partials/_answer.html" if reveal else None
    if user is None:
        # Nothing on the page is the visitor's own: serve it from the per-process cache.
        key = ("question", slug, reveal)
        return render_shared(request, key, "pages/question.html", context, fragment=fragment)
    return render(request, "pages/question.html", context, fragment=fragment)
