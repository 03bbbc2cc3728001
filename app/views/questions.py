"""HTML pages: the question list (home) and one question."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse

from app.content import Question, QuestionBank
from app.deps import BankDep
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
def home(request: Request, bank: BankDep, q: SearchText = "", tag: TagFilter = "") -> HTMLResponse:
    if tag and tag not in bank.tags:
        raise HTTPException(status_code=422, detail=f"tag: unknown tag '{tag}'")
    context = {
        "questions": bank.search(q, tag),
        "total": len(bank),
        "tags": bank.tags,
        "q": q,
        "tag": tag,
    }
    return render(request, "pages/home.html", context, fragment="partials/_question_list.html")


@router.get("/questions/{slug}", response_class=HTMLResponse)
def question_page(
    request: Request, slug: str, bank: BankDep, reveal: Annotated[bool, Query()] = False
) -> HTMLResponse:
    question = question_or_404(bank, slug)
    previous, following = bank.neighbours(slug)
    context = {
        "question": question,
        "previous": previous,
        "next": following,
        "reveal": reveal,
        "total": len(bank),
    }
    fragment = "partials/_answer.html" if reveal else None
    return render(request, "pages/question.html", context, fragment=fragment)
