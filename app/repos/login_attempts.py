"""Login attempts: the rows the login limit (app.login_limit) counts."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, col, delete, func, select, text

from app.models import LoginAttempt


def start(session: Session, *, username_key: str, address: str, now: datetime) -> int:
    """Record a login try before its password is checked; returns the row id (caller commits)."""
    attempt = LoginAttempt(username_key=username_key, address=address[:64], attempted_at=now)
    session.add(attempt)
    session.flush()
    assert attempt.id is not None
    return attempt.id


def lock_counters(session: Session, *, username_key: str, address: str) -> None:
    """Serialise login tries for this name and this address until the transaction ends.

    On PostgreSQL two transaction-scoped advisory locks (names in class 1, addresses in class
    2, always taken in that order, so two tries cannot wait on each other in a cycle); on
    SQLite a write transaction already runs alone. Counting under the lock makes the limit
    exact: the n-th concurrent try sees the n − 1 before it, however the requests interleave.
    """
    if session.get_bind().dialect.name != "postgresql":
        return
    for class_id, key in ((1, username_key), (2, address[:64])):
        session.connection().execute(
            text("SELECT pg_advisory_xact_lock(:class_id, hashtext(:key))"),
            {"class_id": class_id, "key": key},
        )


def count(session: Session, *, username_key: str, address: str, since: datetime) -> tuple[int, int]:
    """(tries for this name, tries from this address) at or after `since`, all committed ones."""
    recent = col(LoginAttempt.attempted_at) >= since
    by_name = session.exec(
        select(func.count()).where(LoginAttempt.username_key == username_key, recent)
    ).one()
    by_address = session.exec(
        select(func.count()).where(LoginAttempt.address == address[:64], recent)
    ).one()
    return by_name, by_address


def forget(session: Session, *, attempt_id: int) -> None:
    session.exec(delete(LoginAttempt).where(col(LoginAttempt.id) == attempt_id))


def clear_name(session: Session, *, username_key: str) -> None:
    session.exec(delete(LoginAttempt).where(col(LoginAttempt.username_key) == username_key))


def delete_older(session: Session, *, before: datetime) -> None:
    session.exec(delete(LoginAttempt).where(col(LoginAttempt.attempted_at) < before))
