"""JSON API for practising: items, answers, progress. The session cookie identifies the caller."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, HTTPException, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt, StrictStr

from app.auth import ActingUser, OptionalUser
from app.content.schema import ChoiceItem
from app.db import SessionDep, WriteSessionDep
from app.deps import BankDep
from app.errors import API_ERRORS, ErrorBody
from app.inputs import StorableStr
from app.models.common import utcnow
from app.practice import answering
from app.practice.answering import IdempotencyConflict, answer_item
from app.practice.generators import SEED_MAX, fresh_seed
from app.practice.grading import needs_seed, present
from app.practice.progress import MASTERY_DEFINITION, by_question, streak
from app.repos import reviews
from app.worker.errors import InvalidInput


def require_json(request: Request) -> None:
    """JSON bodies only: a cross-site form cannot send one without the browser asking first."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/json":
        raise HTTPException(status_code=415, detail="Send the body as application/json.")


router = APIRouter(prefix="/api", tags=["practice"], responses=API_ERRORS)

# A JSON body is required even where there is nothing to send (`{}`): a cross-site form can
# post neither the body nor its content type without the browser asking the server first.
EMPTY_JSON_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": {"type": "object", "additionalProperties": False}}
        },
    }
}
NOT_JSON: dict[int | str, dict[str, Any]] = {
    415: {"description": "The body is not sent as application/json", "model": ErrorBody}
}
IdempotencyKey = Annotated[StorableStr, Field(min_length=1, max_length=100)]
AnswerText = Annotated[StrictStr, Field(max_length=200)]


class ItemOut(BaseModel):
    id: str
    question: str
    kind: str
    prompt: str = Field(description="Markdown")
    choices: list[str] | None = Field(
        default=None, description="Multiple choice: the options in the order drawn from `seed`"
    )
    seed: int | None = Field(
        default=None,
        description="Send it back with the answer: it fixes a parametric item's numbers and a "
        "multiple-choice item's option order",
    )


class AnswerIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    item_id: str = Field(max_length=80)
    answer: StrictInt | StrictFloat | AnswerText = Field(
        description="choice: the option's position in the order shown (with the item's seed; "
        "without one, its index in the question file); numeric: a number; recall: "
        "again|hard|good|easy"
    )
    seed: StrictInt | None = Field(
        default=None,
        ge=1,
        le=SEED_MAX,
        description="The seed the item came with (parametric numbers, multiple-choice order)",
    )
    hints_used: int = Field(default=0, ge=0, le=10)
    idempotency_key: IdempotencyKey | None = Field(
        default=None, description="Repeat it to submit only once"
    )


class AnswerOut(BaseModel):
    correct: bool | None
    expected: str
    explanation: str
    due: datetime
    review_id: str


class ReviewOut(BaseModel):
    review_id: str
    item_id: str
    question: str
    rating: int = Field(description="1 again, 2 hard, 3 good, 4 easy")
    correct: bool | None
    answer: str = Field(description="multiple choice: the chosen option's index in the file")
    seed: int | None
    choice_order: list[int] | None = Field(
        default=None, description="multiple choice: the options' file indices in the order shown"
    )
    reviewed_at: datetime


class QuestionProgressOut(BaseModel):
    slug: str
    items: int
    seen: int = Field(description="Items answered at least once")
    mastered: int = Field(description=MASTERY_DEFINITION)
    reviews: int
    correct: int
    due: int
    mastery: float = Field(description="mastered / items, 0..1")


class ProgressOut(BaseModel):
    questions: list[QuestionProgressOut]
    due_now: int
    streak: int


@router.get("/quiz/items", response_model=list[ItemOut])
def list_items(
    bank: BankDep, question: Annotated[str | None, Query(max_length=60)] = None
) -> list[ItemOut]:
    """The quiz items of one question (or all). A parametric item comes with a fresh seed, and
    so does a multiple-choice item: its options are listed in the order that seed draws."""
    if question is not None and bank.get(question) is None:
        raise HTTPException(status_code=422, detail=f"question: no question is called '{question}'")
    out = []
    for q in [bank.get(question)] if question else list(bank):
        assert q is not None
        for item in q.meta.quiz:
            seed = fresh_seed() if needs_seed(item) else None
            shown = present(item, seed)
            choices = [c.text for c in shown.choices] if isinstance(item, ChoiceItem) else None
            out.append(
                ItemOut(
                    id=item.id,
                    question=q.slug,
                    kind=item.kind,
                    prompt=shown.prompt,
                    choices=choices,
                    seed=seed,
                )
            )
    return out


@router.post(
    "/quiz/answers",
    response_model=AnswerOut,
    dependencies=[Depends(require_json)],
    responses={
        **NOT_JSON,
        409: {
            "description": "The idempotency key already recorded a different answer",
            "model": ErrorBody,
        },
        422: {
            "description": "The answer cannot be graded; nothing was recorded",
            "model": ErrorBody,
        },
    },
)
def submit_answer(
    body: AnswerIn,
    bank: BankDep,
    session: WriteSessionDep,
    user: ActingUser,
    idempotency_key: Annotated[
        IdempotencyKey | None,
        Header(alias="Idempotency-Key", description="Like the body's idempotency_key"),
    ] = None,
) -> AnswerOut:
    """Grade an answer and record it as a review; the same idempotency_key records once, and
    reusing it for a different answer is a 409."""
    key = body.idempotency_key or idempotency_key
    try:
        recorded = answer_item(
            session,
            bank,
            user=user,
            item_id=body.item_id,
            answer=body.answer,
            seed=body.seed,
            hints_used=body.hints_used,
            mode="api",
            idempotency_key=key,
        )
    except InvalidInput as error:
        raise HTTPException(status_code=422, detail=str(error)) from None
    except IdempotencyConflict:
        detail = "idempotency_key: already used for a different answer; send a new key"
        raise HTTPException(status_code=409, detail=detail) from None
    return AnswerOut(
        correct=recorded.review.correct,
        expected=recorded.outcome.expected,
        explanation=recorded.outcome.explanation,
        due=recorded.card.due,
        review_id=recorded.review.uid,
    )


def _review_out(review) -> ReviewOut:
    return ReviewOut(
        review_id=review.uid,
        item_id=review.item_id,
        question=review.question_slug,
        rating=review.rating,
        correct=review.correct,
        answer=review.answer,
        seed=review.seed,
        choice_order=[int(i) for i in review.choice_order.split(",")]
        if review.choice_order
        else None,
        reviewed_at=review.reviewed_at,
    )


@router.get(
    "/quiz/reviews/{review_id}",
    response_model=ReviewOut,
    responses={404: {"description": "Not yours, or no such review", "model": ErrorBody}},
)
def read_review(
    review_id: Annotated[str, Path(pattern="^[0-9a-f]{32}$", description="32 hex digits")],
    session: SessionDep,
    user: OptionalUser,
) -> ReviewOut:
    """One of the caller's own reviews; anyone else's is reported as not found."""
    found = reviews.review_of(session, user_id=user.id, uid=review_id) if user and user.id else None
    if found is None:
        raise HTTPException(status_code=404, detail="No such review.")
    return _review_out(found)


@router.post(
    "/quiz/undo",
    response_model=ReviewOut,
    dependencies=[Depends(require_json)],
    responses={**NOT_JSON, 404: {"description": "Nothing to undo", "model": ErrorBody}},
    openapi_extra=EMPTY_JSON_BODY,
)
def undo_last(session: WriteSessionDep, user: OptionalUser) -> ReviewOut:
    """Remove the caller's latest review and restore its card to how it was before."""
    removed = answering.undo_last(session, user_id=user.id) if user and user.id else None
    if removed is None:
        raise HTTPException(status_code=404, detail="Nothing to undo.")
    return _review_out(removed)


@router.get("/progress", response_model=ProgressOut)
def read_progress(bank: BankDep, session: SessionDep, user: OptionalUser) -> ProgressOut:
    """Per question: items, items seen and mastered, reviews, right answers, items due and
    mastery (the share of items mastered); cards due now; the streak."""
    now = utcnow()
    cards = (
        {c.item_id: c for c in reviews.cards_of(session, user_id=user.id)}
        if user and user.id
        else {}
    )
    history = reviews.reviews_of(session, user_id=user.id) if user and user.id else []
    rows = by_question(bank, cards, history, now)
    return ProgressOut(
        questions=[
            QuestionProgressOut(
                slug=r.slug,
                items=r.items,
                seen=r.seen,
                mastered=r.mastered,
                reviews=r.reviews,
                correct=r.correct,
                due=r.due,
                mastery=round(r.mastery, 4),
            )
            for r in rows
        ],
        due_now=sum(r.due for r in rows),
        streak=streak(history, now.date()),
    )
