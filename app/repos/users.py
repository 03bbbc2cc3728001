"""Users, guests, failed logins, and moving a guest's progress into an account."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlmodel import Session, col, delete, func, select, update

from app.models import CardState, Draft, LoginAttempt, ReviewLog, User
from app.models.common import utcnow


def get_user(session: Session, *, user_id: int) -> User | None:
    return session.get(User, user_id)


def find_by_username(session: Session, *, username: str) -> User | None:
    return session.exec(select(User).where(User.username == username)).first()


def create_guest(session: Session) -> User:
    user = User()
    session.add(user)
    session.flush()
    return user


def register(session: Session, *, user: User, username: str, password_hash: str) -> User:
    """Turn `user` (a guest, with whatever progress it has) into a named account."""
    user.username = username
    user.password_hash = password_hash
    session.add(user)
    session.flush()
    return user


def record_failed_login(session: Session, *, username: str, now: datetime | None = None) -> None:
    session.add(LoginAttempt(username=username, attempted_at=now or utcnow()))


def recent_failed_logins(session: Session, *, username: str, window: timedelta) -> int:
    since = utcnow() - window
    statement = select(func.count()).where(
        LoginAttempt.username == username, col(LoginAttempt.attempted_at) >= since
    )
    return session.exec(statement).one()


def clear_failed_logins(session: Session, *, username: str) -> None:
    session.exec(delete(LoginAttempt).where(col(LoginAttempt.username) == username))


def merge_guest(session: Session, *, guest: User, account: User) -> None:
    """Move a guest's reviews into `account`; cards and drafts the account lacks move too."""
    assert guest.id is not None and account.id is not None
    owned_items = select(CardState.item_id).where(CardState.user_id == account.id)
    session.exec(
        update(CardState)
        .where(col(CardState.user_id) == guest.id, col(CardState.item_id).not_in(owned_items))
        .values(user_id=account.id)
    )
    owned_drafts = select(Draft.question_slug).where(Draft.user_id == account.id)
    session.exec(
        update(Draft)
        .where(col(Draft.user_id) == guest.id, col(Draft.question_slug).not_in(owned_drafts))
        .values(user_id=account.id)
    )
    # Idempotency keys are per user; a guest key that collides is dropped, the review kept.
    owned_keys = select(ReviewLog.idempotency_key).where(
        ReviewLog.user_id == account.id, col(ReviewLog.idempotency_key).is_not(None)
    )
    session.exec(
        update(ReviewLog)
        .where(col(ReviewLog.user_id) == guest.id, col(ReviewLog.idempotency_key).in_(owned_keys))
        .values(idempotency_key=None)
    )
    session.exec(
        update(ReviewLog).where(col(ReviewLog.user_id) == guest.id).values(user_id=account.id)
    )
    session.delete(guest)
    session.flush()
