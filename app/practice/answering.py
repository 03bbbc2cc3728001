"""Answering quiz items: the one function every route (HTML or JSON) calls to record an
attempt, and the one that takes the latest back. The rules live here: an idempotency key
answers once, the card moves by FSRS (`app.practice.scheduling`), an undo restores the card
as it was; `app.repos.reviews` only stores and reads."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from app.content import Question, QuestionBank
from app.content.schema import QuizItem
from app.models import CardState, ReviewLog, User
from app.models.common import utcnow
from app.practice import scheduling
from app.practice.grading import Outcome, Presented, format_order, grade, present
from app.repos import reviews
from app.worker.errors import InvalidInput


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
        raise InvalidInput("item_id", f"no quiz item is called '{item_id[:80]}'")
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
    """Grade and record one attempt. InvalidInput (nothing recorded) when it cannot be graded.

    `seed` is the one the item was presented with (parametric numbers, shuffled options); the
    review records it and, for multiple choice, the order of the options shown.
    """
    assert user.id is not None
    question, item = find_item(bank, item_id)
    presented = present(item, seed)
    outcome = grade(presented, answer, hints_used=hints_used)
    review, card = record_review(
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


class IdempotencyConflict(ValueError):
    """The idempotency key already recorded a different answer (another item, seed or answer)."""


def _same_attempt(earlier: ReviewLog, *, item_id: str, seed: int | None, answer: str) -> bool:
    return earlier.item_id == item_id and earlier.seed == seed and earlier.answer == answer


def _replay(
    session: Session, earlier: ReviewLog, *, item_id: str, seed: int | None, answer: str
) -> tuple[ReviewLog, CardState]:
    """The first review of a repeated idempotency key, or IdempotencyConflict."""
    if not _same_attempt(earlier, item_id=item_id, seed=seed, answer=answer):
        raise IdempotencyConflict(earlier.idempotency_key)
    card = reviews.card_for(session, user_id=earlier.user_id, item_id=earlier.item_id)
    assert card is not None, "a review without its card"
    return earlier, card


def record_review(
    session: Session,
    *,
    user_id: int,
    item_id: str,
    question_slug: str,
    outcome: Outcome,
    seed: int | None,
    mode: str,
    now: datetime,
    idempotency_key: str | None = None,
    duration_ms: int | None = None,
    choice_order: str | None = None,
) -> tuple[ReviewLog, CardState]:
    """Append the review and move the card on by FSRS, in one transaction.

    A repeated idempotency key with the same item, seed and answer returns the first review and
    records nothing; with anything else it raises IdempotencyConflict (nothing recorded).
    """
    answer = outcome.answer_text
    if idempotency_key:
        earlier = reviews.by_idempotency_key(session, user_id=user_id, key=idempotency_key)
        if earlier is not None:
            return _replay(session, earlier, item_id=item_id, seed=seed, answer=answer)
    fresh = scheduling.new_card(
        user_id=user_id, item_id=item_id, question_slug=question_slug, now=now
    )
    card = reviews.locked_card(session, fresh=fresh)
    before = scheduling.snapshot(card)
    scheduling.review(card, outcome.rating, now)
    log = ReviewLog(
        user_id=user_id,
        item_id=item_id,
        question_slug=question_slug,
        rating=outcome.rating.value,
        correct=outcome.correct,
        answer=answer,
        seed=seed,
        choice_order=choice_order,
        mode=mode,
        reviewed_at=now,
        duration_ms=duration_ms,
        idempotency_key=idempotency_key,
        card_before=before,
    )
    try:
        reviews.add_review(session, card=card, review=log)
    except IntegrityError:
        # The same idempotency key won a race in another request: report that one.
        if idempotency_key is None:
            raise
        earlier = reviews.by_idempotency_key(session, user_id=user_id, key=idempotency_key)
        if earlier is None:
            raise
        return _replay(session, earlier, item_id=item_id, seed=seed, answer=answer)
    return log, card


def undo_last(session: Session, *, user_id: int) -> ReviewLog | None:
    """Take the user's latest review back and put its card back as it was, in one transaction;
    None when there is nothing to undo."""
    last = reviews.latest_review_locked(session, user_id=user_id)
    if last is None:
        return None
    card = reviews.card_for(session, user_id=user_id, item_id=last.item_id)
    # A detached snapshot (app.practice.scheduling) belongs to another user's card: leave it.
    if card is not None and last.card_before and not scheduling.is_detached(last.card_before):
        scheduling.restore(card, last.card_before)
        reviews.remove_review(session, review=last, card=card, card_is_new=card.reps == 0)
    else:
        reviews.remove_review(session, review=last, card=None, card_is_new=False)
    return last
