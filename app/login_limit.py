"""The login limit: at most LOGIN_MAX_FAILURES tries per name and
LOGIN_MAX_FAILURES_PER_ADDRESS per client address within LOGIN_WINDOW_MINUTES.

Every try is recorded before its password is checked (`open_attempt`), and the count and the
insert run in one transaction holding a lock per name and per address
(`app.repos.login_attempts.lock_counters`), so however many tries run at once, exactly the
first LOGIN_MAX_FAILURES for a name get past, the rest are refused (a 429), and a password
guessed by many requests at once is no cheaper than one at a time. A successful login
forgets its own try and the name's failures (`forget`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import Engine
from sqlmodel import Session

from app.db import write_session
from app.models.common import utcnow
from app.repos import login_attempts
from app.repos import sessions as session_rows
from app.settings import Settings


@dataclass(frozen=True)
class Attempt:
    """A recorded try (`id`), or a refused one: `limited` is "name" or "address"."""

    id: int = 0
    limited: str | None = None

    def refusal(self, settings: Settings) -> str:
        """What the login form says to a refused try."""
        where = "for this name" if self.limited == "name" else "from your network"
        return (
            f"Too many failed attempts {where}; "
            f"try again in {settings.login_window_minutes} minutes."
        )


def open_attempt(
    engine: Engine,
    settings: Settings,
    name_key: str,
    address: str,
    session_lifetime: session_rows.Lifetime,
) -> Attempt:
    """Count the earlier tries of this name and address within the window, then record this
    one; refused (nothing recorded) when a limit is reached. Tries older than the window and
    expired sessions (`session_lifetime`) are deleted on the way. Blocking: call it from a
    worker thread."""
    now = utcnow()
    since = now - timedelta(minutes=settings.login_window_minutes)
    with write_session(engine) as session:
        login_attempts.delete_older(session, before=since)
        session_rows.delete_expired(session, now=now, lifetime=session_lifetime)
        login_attempts.lock_counters(session, username_key=name_key, address=address)
        by_name, by_address = login_attempts.count(
            session, username_key=name_key, address=address, since=since
        )
        if name_key and by_name >= settings.login_max_failures:
            attempt = Attempt(limited="name")
        elif by_address >= settings.login_max_failures_per_address:
            attempt = Attempt(limited="address")
        else:
            attempt = Attempt(
                login_attempts.start(session, username_key=name_key, address=address, now=now)
            )
        session.commit()
    return attempt


def forget(session: Session, attempt: Attempt, name_key: str) -> None:
    """A login succeeded: its try and the name's earlier failures no longer count (the caller
    commits)."""
    login_attempts.forget(session, attempt_id=attempt.id)
    login_attempts.clear_name(session, username_key=name_key)
