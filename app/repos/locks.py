"""Transaction locks that make a count-then-insert against a cap safe under concurrency.

On SQLite every write transaction starts with BEGIN IMMEDIATE (app.db.write_session), which
already serialises all writers, so these take nothing there. On PostgreSQL two requests could
both count 7 of a cap of 8 and both insert; these locks make the second wait for the first's
commit:

- `lock_owner`: one user's launches, saves and claims (the user's row, FOR UPDATE);
- `lock_guests`: every guest's launches together (a transaction advisory lock), for the caps
  that count all guests at once (RUN_MAX_QUEUED_GUESTS, EXPERIMENT_MAX_LIVE_GUESTS).
"""

from __future__ import annotations

from sqlalchemy import func
from sqlmodel import Session, col, select

from app.models import User

# The PostgreSQL advisory lock that serialises guests' launches (the cap counts them all).
GUEST_LAUNCH_LOCK = 0x6376_6775  # "cvgu"


def _postgresql(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def lock_owner(session: Session, owner_id: int) -> None:
    """Hold user `owner_id`'s row until this transaction ends (PostgreSQL; SQLite: nothing)."""
    if _postgresql(session):
        session.exec(select(User.id).where(col(User.id) == owner_id).with_for_update()).first()


def lock_guests(session: Session) -> None:
    """Hold the guests' launch lock until this transaction ends (PostgreSQL; SQLite: nothing)."""
    if _postgresql(session):
        session.exec(select(func.pg_advisory_xact_lock(GUEST_LAUNCH_LOCK))).first()
