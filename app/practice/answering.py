"""Answering quiz items: the one function every route (HTML or JSON) calls to record an attempt."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session

from app.content import Question, QuestionBank
from app.content.schema import QuizItem
from app.models import CardState, ReviewLog, User
from app.models.common import utcnow
from app.practice.grading import AnswerError, Outcome, Presented, format_order, grade, present
from app.repos import reviews


@dataclass(frozen=True)
class Recorded:
    question: Question
    presented: Presented
    outcome: Outcome
    review: ReviewLog
    card: CardState


def find_item(bank: QuestionBank, item_id: str) -> tuple[Question, QuizItem]:
    found = bank.item(item_id)
    if found is None:
        raise AnswerError("item_id", f"no quiz item is called '{item_id[:80]}'")
    return found


def answer_item(
    session: Session,
    bank: QuestionBank,
    *,
    user: User,
    item_id: str,
    answer: object,
    seed: int | None = None,
    hints_used: int = 0,
    mode: str = "practice",
    idempotency_key: str | None = None,
    duration_ms: int | None = None,
    now: datetime | None = None,
) -> Recorded:
    """Grade and record one attempt. AnswerError (nothing recorded) when it cannot be graded.

    `seed` is the one the item was presented with (parametric numbers, shuffled options); the
    review records it and, for multiple choice, the order of the options shown.
    """
    assert user.id is not None
    question, item = find_item(bank, item_id)
    presented = present(item, seed)
    outcome = grade(presented, answer, hints_used=hints_used)
    review, card = reviews.record_review(
        session,
        user_id=user.id,
        item_id=item.id,
        question_slug=question.slug,
        outcome=outcome,
        seed=seed,
        mode=mode,
        now=now or utcnow(),
        idempotency_key=idempotency_key,
        duration_ms=duration_ms,
        choice_order=format_order(presented.order),
    )
    return Recorded(question, presented, outcome, review, card)
