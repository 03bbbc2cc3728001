"""Server-side sessions: create, find (unexpired), refresh, end one, end all of a user's."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session, col, delete, or_, select, update

from app.models import BrowserSession, User


@dataclass(frozen=True)
class Lifetime:
    """How long a session lives: since its last use (idle) and since it began (absolute)."""

    idle: timedelta
    absolute: timedelta


@dataclass(frozen=True)
class ActiveSession:
    key_hash: str
    user: User
    last_seen_at: datetime


def create_session(session: Session, *, key_hash: str, user_id: int, now: datetime) -> None:
    """Add a session row; the caller commits (an IntegrityError means the key is taken)."""
    session.add(
        BrowserSession(key_hash=key_hash, user_id=user_id, created_at=now, last_seen_at=now)
    )
    session.flush()


def find_active(
    session: Session, *, key_hash: str, now: datetime, lifetime: Lifetime
) -> ActiveSession | None:
    """The session and its user, or None when there is none or it has expired."""
    row = session.exec(
        select(BrowserSession, User)
        .join(User, col(User.id) == col(BrowserSession.user_id))
        .where(
            BrowserSession.key_hash == key_hash,
            col(BrowserSession.last_seen_at) > now - lifetime.idle,
            col(BrowserSession.created_at) > now - lifetime.absolute,
        )
    ).first()
    if row is None:
        return None
    found, user = row
    return ActiveSession(found.key_hash, user, found.last_seen_at)


def touch(session: Session, *, key_hash: str, now: datetime) -> None:
    session.exec(
        update(BrowserSession)
        .where(col(BrowserSession.key_hash) == key_hash)
        .values(last_seen_at=now)
    )


def end_session(session: Session, *, key_hash: str) -> None:
    session.exec(delete(BrowserSession).where(col(BrowserSession.key_hash) == key_hash))


def end_user_sessions(session: Session, *, user_id: int) -> int:
    """Delete every session of the user ("log out everywhere"); returns how many there were."""
    result = session.exec(delete(BrowserSession).where(col(BrowserSession.user_id) == user_id))
    return result.rowcount or 0


def count_user_sessions(
    session: Session, *, user_id: int, now: datetime, lifetime: Lifetime
) -> int:
    """How many unexpired sessions (signed-in browsers) the user has."""
    rows = session.exec(
        select(BrowserSession.key_hash).where(
            BrowserSession.user_id == user_id,
            col(BrowserSession.last_seen_at) > now - lifetime.idle,
            col(BrowserSession.created_at) > now - lifetime.absolute,
        )
    ).all()
    return len(rows)


def delete_expired(session: Session, *, now: datetime, lifetime: Lifetime) -> None:
    session.exec(
        delete(BrowserSession).where(
            or_(
                col(BrowserSession.last_seen_at) <= now - lifetime.idle,
                col(BrowserSession.created_at) <= now - lifetime.absolute,
            )
        )
    )
