"""Cards and the review log: storing and reading them. The rules (idempotency, FSRS
scheduling, undo) are `app.practice.answering`'s."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from app.models import CardState, ReviewLog


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


def locked_card(session: Session, *, fresh: CardState) -> CardState:
    """The card of `fresh`'s (user, item), inserted as `fresh` if missing, locked for this
    transaction on PostgreSQL (SQLite's write transaction already holds the database)."""
    values = fresh.model_dump(exclude={"id"})
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    # INSERT … ON CONFLICT DO NOTHING: two first answers to one item cannot both create it.
    session.execute(
        insert(CardState)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["user_id", "item_id"])
    )
    statement = select(CardState).where(
        CardState.user_id == fresh.user_id, CardState.item_id == fresh.item_id
    )
    return session.exec(statement.with_for_update()).one()


def add_review(session: Session, *, card: CardState, review: ReviewLog) -> None:
    """Store the moved card and its review in one commit. IntegrityError (rolled back) when the
    review's idempotency key was stored meanwhile."""
    session.add(card)
    session.add(review)
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        raise


def latest_review_locked(session: Session, *, user_id: int) -> ReviewLog | None:
    """The user's latest review, locked for this transaction (PostgreSQL)."""
    return session.exec(
        select(ReviewLog)
        .where(ReviewLog.user_id == user_id)
        .order_by(col(ReviewLog.reviewed_at).desc(), col(ReviewLog.id).desc())
        .limit(1)
        .with_for_update()
    ).first()


def remove_review(
    session: Session, *, review: ReviewLog, card: CardState | None, card_is_new: bool
) -> None:
    """Delete `review` and store `card` as restored (deleted when `card_is_new`), in one commit."""
    if card is not None:
        if card_is_new:
            session.delete(card)
        else:
            session.add(card)
    session.delete(review)
    session.commit()
