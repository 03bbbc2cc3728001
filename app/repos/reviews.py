"""Cards and the review log: recording a graded attempt, undoing it, reading history."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from app.models import CardState, ReviewLog
from app.practice import scheduling
from app.practice.grading import Outcome


def card_for(session: Session, *, user_id: int, item_id: str) -> CardState | None:
    return session.exec(
        select(CardState).where(CardState.user_id == user_id, CardState.item_id == item_id)
    ).first()


def cards_of(session: Session, *, user_id: int) -> Sequence[CardState]:
    return session.exec(select(CardState).where(CardState.user_id == user_id)).all()


def reviews_of(
    session: Session, *, user_id: int, since: datetime | None = None
) -> Sequence[ReviewLog]:
    statement = select(ReviewLog).where(ReviewLog.user_id == user_id)
    if since is not None:
        statement = statement.where(col(ReviewLog.reviewed_at) >= since)
    return session.exec(statement.order_by(col(ReviewLog.reviewed_at), col(ReviewLog.id))).all()


def reviews_by_ids(session: Session, *, user_id: int, ids: Sequence[int]) -> list[ReviewLog]:
    """The user's reviews among `ids`, in the order of `ids` (others' and removed ones left out)."""
    if not ids:
        return []
    found = session.exec(
        select(ReviewLog).where(ReviewLog.user_id == user_id, col(ReviewLog.id).in_(list(ids)))
    ).all()
    by_id = {review.id: review for review in found}
    return [by_id[i] for i in ids if i in by_id]


def review_of(session: Session, *, user_id: int, uid: str) -> ReviewLog | None:
    return session.exec(
        select(ReviewLog).where(ReviewLog.user_id == user_id, ReviewLog.uid == uid)
    ).first()


def by_idempotency_key(session: Session, *, user_id: int, key: str) -> ReviewLog | None:
    return session.exec(
        select(ReviewLog).where(ReviewLog.user_id == user_id, ReviewLog.idempotency_key == key)
    ).first()


def _locked_card(
    session: Session, *, user_id: int, item_id: str, question_slug: str, now: datetime
) -> CardState:
    """The (user, item) card, created if missing, locked for this transaction on PostgreSQL."""
    fresh = scheduling.new_card(
        user_id=user_id, item_id=item_id, question_slug=question_slug, now=now
    )
    values = fresh.model_dump(exclude={"id"})
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    # INSERT … ON CONFLICT DO NOTHING: two first answers to one item cannot both create it.
    session.execute(
        insert(CardState)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["user_id", "item_id"])
    )
    statement = select(CardState).where(CardState.user_id == user_id, CardState.item_id == item_id)
    return session.exec(statement.with_for_update()).one()


class IdempotencyConflict(ValueError):
    """The idempotency key already recorded a different answer (another item, seed or answer)."""


def _same_attempt(earlier: ReviewLog, *, item_id: str, seed: int | None, answer: str) -> bool:
    return earlier.item_id == item_id and earlier.seed == seed and earlier.answer == answer


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
    """Append the review and move the card on, in one transaction.

    A repeated idempotency key with the same item, seed and answer returns the first review and
    records nothing; with anything else it raises IdempotencyConflict (nothing recorded).
    """
    if idempotency_key:
        earlier = by_idempotency_key(session, user_id=user_id, key=idempotency_key)
        if earlier is not None:
            if not _same_attempt(earlier, item_id=item_id, seed=seed, answer=outcome.answer_text):
                raise IdempotencyConflict(idempotency_key)
            return earlier, _card_or_fail(session, user_id=user_id, item_id=earlier.item_id)
    card = _locked_card(
        session, user_id=user_id, item_id=item_id, question_slug=question_slug, now=now
    )
    before = scheduling.snapshot(card)
    scheduling.review(card, outcome.rating, now)
    log = ReviewLog(
        user_id=user_id,
        item_id=item_id,
        question_slug=question_slug,
        rating=outcome.rating.value,
        correct=outcome.correct,
        answer=outcome.answer_text,
        seed=seed,
        choice_order=choice_order,
        mode=mode,
        reviewed_at=now,
        duration_ms=duration_ms,
        idempotency_key=idempotency_key,
        card_before=before,
    )
    session.add(card)
    session.add(log)
    try:
        session.commit()
    except IntegrityError:
        # The same idempotency key won a race in another request: report that one.
        session.rollback()
        if idempotency_key is None:
            raise
        earlier = by_idempotency_key(session, user_id=user_id, key=idempotency_key)
        if earlier is None:
            raise
        if not _same_attempt(earlier, item_id=item_id, seed=seed, answer=outcome.answer_text):
            raise IdempotencyConflict(idempotency_key) from None
        return earlier, _card_or_fail(session, user_id=user_id, item_id=earlier.item_id)
    return log, card


def _card_or_fail(session: Session, *, user_id: int, item_id: str) -> CardState:
    card = card_for(session, user_id=user_id, item_id=item_id)
    assert card is not None, "a review without its card"
    return card


def undo_last(session: Session, *, user_id: int) -> ReviewLog | None:
    """Remove the user's latest review and put its card back as it was, in one transaction."""
    last = session.exec(
        select(ReviewLog)
        .where(ReviewLog.user_id == user_id)
        .order_by(col(ReviewLog.reviewed_at).desc(), col(ReviewLog.id).desc())
        .limit(1)
        .with_for_update()
    ).first()
    if last is None:
        return None
    card = card_for(session, user_id=user_id, item_id=last.item_id)
    # A detached snapshot (app.practice.scheduling) belongs to another user's card: leave this one.
    if card is not None and last.card_before and not scheduling.is_detached(last.card_before):
        scheduling.restore(card, last.card_before)
        if card.reps == 0:
            session.delete(card)  # it was new before this review: it is new again
        else:
            session.add(card)
    session.delete(last)
    session.commit()
    return last
