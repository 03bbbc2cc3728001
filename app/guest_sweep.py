"""Guests left behind, deleted with everything they own.

A guest whose browser went away, or who logged in to an account without moving its work, keeps
its data sets, runs and experiments, and nothing can reach them once no session of the guest
is live. `sweep_guests` deletes every guest that has had no live session for
GUEST_RETENTION_HOURS (a session ended by login, registration or logout is no longer there, so
such a guest counts from when it was made) and has no run queued or running: its data sets
through `store.remove` (row, folder, thumbnails), its runs through `dispatch.delete` (row and
folder), then its row, which takes its experiments, practice progress and expired sessions with
it. The server sweeps when it starts and every SWEEP_EVERY_S; `cvprep sweep-guests` sweeps
once. Sweeps in several processes at once are harmless: each delete is done once.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine
from sqlmodel import col, delete, exists, select

from app.datasets import store
from app.db import read_session, write_session
from app.models import BrowserSession, Run, User
from app.models.common import utcnow
from app.models.runs import LIVE_STATUSES
from app.repos import datasets as dataset_rows
from app.repos import runs as run_rows
from app.runs import dispatch
from app.settings import Settings

logger = logging.getLogger("cvprep.guests")

SWEEP_EVERY_S = 3600.0
BATCH = 200  # guests looked up per query


@dataclass
class Swept:
    """What one sweep deleted."""

    guests: int = 0
    datasets: int = 0
    runs: int = 0


def _gone(now: datetime, settings: Settings):  # type: ignore[no-untyped-def]
    """The condition "a guest, made before the cutoff, with no session live at the cutoff
    and no run queued or running" (the cutoff: GUEST_RETENTION_HOURS before `now`)."""
    cutoff = now - timedelta(hours=settings.guest_retention_hours)
    live_session = exists().where(
        col(BrowserSession.user_id) == col(User.id),
        col(BrowserSession.last_seen_at) > cutoff - timedelta(days=settings.session_idle_days),
        col(BrowserSession.created_at) > cutoff - timedelta(days=settings.session_max_days),
    )
    live_run = exists().where(col(Run.owner_id) == col(User.id), col(Run.status).in_(LIVE_STATUSES))
    return (
        col(User.username).is_(None),
        col(User.created_at) <= cutoff,
        ~live_session,
        ~live_run,
    )


def stale_guests(
    engine: Engine, settings: Settings, *, now: datetime, after: int = 0, limit: int = BATCH
) -> list[int]:
    """Ids (ascending, above `after`) of guests a sweep at `now` deletes; one indexed query."""
    with read_session(engine) as session:
        rows = session.exec(
            select(User.id)
            .where(*_gone(now, settings), col(User.id) > after)
            .order_by(col(User.id))
            .limit(limit)
        ).all()
    return [int(user_id) for user_id in rows if user_id is not None]


def delete_guest(engine: Engine, settings: Settings, *, user_id: int, now: datetime) -> Swept:
    """Delete one stale guest: its data sets and runs with their files, then its row (and with
    it its experiments, progress and sessions). Nothing is done to a row that is no longer a
    stale guest when it is deleted (`guests` stays 0)."""
    swept = Swept()
    with read_session(engine) as session:
        datasets = list(dataset_rows.datasets_of(session, owner_id=user_id))
    for row in datasets:
        swept.datasets += store.remove(engine, row, settings)
    while True:
        with read_session(engine) as session:
            runs = [r for r in run_rows.runs_of(session, owner_id=user_id) if not r.live]
        deleted = [run for run in runs if dispatch.delete(run, engine=engine, settings=settings)]
        swept.runs += len(deleted)
        if not deleted:
            break
    with write_session(engine) as session:
        result = session.exec(delete(User).where(col(User.id) == user_id, *_gone(now, settings)))
        session.commit()
    swept.guests = result.rowcount or 0
    with contextlib.suppress(OSError):  # the guest's uploads folder, once empty
        (settings.uploads_dir / str(user_id)).rmdir()
    return swept


def sweep_guests(engine: Engine, settings: Settings, *, now: datetime | None = None) -> Swept:
    """Delete every guest left behind (see the module's docstring) as of `now` (default: the
    current time; a later one is what the guests will look like then). Returns the counts."""
    now = now or utcnow()
    total = Swept()
    after = 0
    while ids := stale_guests(engine, settings, now=now, after=after):
        for user_id in ids:
            swept = delete_guest(engine, settings, user_id=user_id, now=now)
            total.guests += swept.guests
            total.datasets += swept.datasets
            total.runs += swept.runs
        after = ids[-1]
    if total.guests:
        logger.info(
            "deleted %d guests left behind (%d data sets, %d runs)",
            total.guests,
            total.datasets,
            total.runs,
        )
    return total
