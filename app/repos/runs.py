"""Training runs: create, read (always scoped to the owner), claim, report, end, cancel, delete.

Every write a worker makes is a conditional UPDATE on the row (`status = 'running' AND
worker_id = <its id>`), so a worker that lost its run (marked interrupted after its heartbeat
stopped, say) can never overwrite what the row now says: the call returns False instead.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, func, update
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, select

from app.models.runs import (
    CANCELLED,
    END_STATUSES,
    FAILED,
    INTERRUPTED,
    LIVE_STATUSES,
    QUEUED,
    RUNNING,
    SUCCEEDED,
    Run,
)
from app.models.users import User


def create_run(session: Session, *, owner_id: int, config: dict[str, Any], now: datetime) -> Run:
    """A queued run (flushed, so it has an id; the caller commits)."""
    run = Run(
        owner_id=owner_id,
        config=config,
        status=QUEUED,
        epochs=int(config.get("epochs", 0)),
        created_at=now,
    )
    session.add(run)
    session.flush()
    return run


def get_run(session: Session, *, run_id: int, owner_id: int) -> Run | None:
    """The run if it exists and is `owner_id`'s; another user's run is None, like a missing one."""
    return session.exec(
        select(Run).where(col(Run.id) == run_id, col(Run.owner_id) == owner_id)
    ).one_or_none()


def run_by_id(session: Session, *, run_id: int) -> Run | None:
    """Any user's run: for workers and the supervisor, never for a request."""
    return session.get(Run, run_id, populate_existing=True)


def runs_of(session: Session, *, owner_id: int, limit: int = 500) -> Sequence[Run]:
    """The owner's runs, newest first."""
    return session.exec(
        select(Run).where(col(Run.owner_id) == owner_id).order_by(col(Run.id).desc()).limit(limit)
    ).all()


def count_live(session: Session, *, owner_id: int) -> int:
    """How many of the owner's runs are queued or running."""
    return session.exec(
        select(func.count())
        .select_from(Run)
        .where(col(Run.owner_id) == owner_id, col(Run.status).in_(LIVE_STATUSES))
    ).one()


def count_live_of_guests(session: Session) -> int:
    """How many runs of all guest users together are queued or running."""
    return session.exec(
        select(func.count())
        .select_from(Run)
        .join(User, col(User.id) == col(Run.owner_id))
        .where(col(User.username).is_(None), col(Run.status).in_(LIVE_STATUSES))
    ).one()


def queue_position(session: Session, *, run: Run) -> int | None:
    """1 for the next queued run to start (across all users, oldest first); None unless queued."""
    if run.status != QUEUED:
        return None
    ahead = session.exec(
        select(func.count()).select_from(Run).where(col(Run.status) == QUEUED, col(Run.id) < run.id)
    ).one()
    return int(ahead) + 1


# --- claiming ------------------------------------------------------------------------------


def _claimed(worker_id: str, now: datetime) -> dict[str, Any]:
    return {
        "status": RUNNING,
        "worker_id": worker_id,
        "attempt": Run.attempt + 1,
        "started_at": now,
        "heartbeat_at": now,
        "cancel_requested": False,
    }


class Claim(enum.StrEnum):
    """What `claim` did. Truthy only for CLAIMED, so `if claim(...)` reads as before."""

    CLAIMED = "claimed"  # the run is now the caller's
    NOT_YET = "not_yet"  # queued, but the run it starts from is still queued or running
    GONE = "gone"  # taken by another worker, ended, cancelled, or failed for its dependency

    def __bool__(self) -> bool:
        return self is Claim.CLAIMED


CLAIM_SCAN = 200  # queued runs looked at per claim_next call, oldest first


def dependency(config: Mapping[str, Any]) -> int | None:
    """The run id a config starts from (`init` "run:<id>"), or None."""
    init = config.get("init")
    if isinstance(init, str) and init.startswith("run:") and init[4:].isdigit():
        return int(init[4:])
    return None


def _readiness(
    session: Session, run_id: int, config: Mapping[str, Any], now: datetime
) -> Claim | None:
    """None when the queued run may be claimed now; NOT_YET while its dependency is live; GONE
    after failing it because its dependency ended without success (commits that)."""
    depends_on = dependency(config)
    if depends_on is None:
        return None
    status = session.exec(select(Run.status).where(col(Run.id) == depends_on)).one_or_none()
    if status in LIVE_STATUSES:
        return Claim.NOT_YET
    if status == SUCCEEDED:
        return None
    if status is None:
        reason = f"run {depends_on}, which this run starts from, no longer exists"
    else:
        reason = (
            f"run {depends_on}, which this run starts from, ended {status}: nothing to start from"
        )
    session.exec(
        update(Run)
        .where(col(Run.id) == run_id, col(Run.status) == QUEUED)
        .values(status=FAILED, error=reason, finished_at=now)
    )
    session.commit()
    return Claim.GONE


def _take(
    session: Session, run_id: int, worker_id: str, now: datetime, max_running: int | None = None
) -> bool:
    conditions = [col(Run.id) == run_id, col(Run.status) == QUEUED]
    if max_running is not None and session.get_bind().dialect.name == "postgresql":
        # Two claims for one owner queue on the owner's row, so the second counts the first.
        owner = select(Run.owner_id).where(col(Run.id) == run_id).scalar_subquery()
        session.exec(select(User.id).where(col(User.id) == owner).with_for_update()).first()
    if max_running is not None:
        # The fair-share cap in the same UPDATE: its owner has fewer than `max_running` training.
        other = aliased(Run)
        training = (
            select(func.count())
            .select_from(other)
            .where(col(other.owner_id) == col(Run.owner_id), col(other.status) == RUNNING)
            .scalar_subquery()
        )
        conditions.append(training < max_running)
    result = session.exec(update(Run).where(*conditions).values(**_claimed(worker_id, now)))
    session.commit()
    return result.rowcount == 1


def _fair_order(
    session: Session, candidates: Sequence[Any], max_running: int
) -> list[tuple[int, dict[str, Any]]]:
    """Queued (id, config) in fair-share order: owners with fewer runs training first, then
    the owner whose latest start is oldest (round robin), then oldest run; owners already at
    `max_running` are left out."""
    owners = {owner for _, _, owner in candidates}
    running = dict(
        session.exec(
            select(Run.owner_id, func.count())
            .where(col(Run.owner_id).in_(owners), col(Run.status) == RUNNING)
            .group_by(col(Run.owner_id))
        ).all()
    )
    latest = dict(
        session.exec(
            select(Run.owner_id, func.max(Run.started_at))
            .where(col(Run.owner_id).in_(owners), col(Run.started_at).is_not(None))
            .group_by(col(Run.owner_id))
        ).all()
    )
    never = datetime.min.replace(tzinfo=UTC)

    def key(row: Any) -> tuple[int, datetime, int]:
        run_id, _, owner = row
        started = latest.get(owner) or never
        return running.get(owner, 0), started.replace(tzinfo=started.tzinfo or UTC), run_id

    return [
        (run_id, config)
        for run_id, config, owner in sorted(candidates, key=key)
        if running.get(owner, 0) < max_running
    ]


def claim_next(
    session: Session, *, worker_id: str, now: datetime, max_running_per_user: int | None = None
) -> int | None:
    """Atomically take the next claimable queued run for `worker_id`; its id, or None.

    Without `max_running_per_user` the oldest goes first. With it (the local backend passes
    RUN_MAX_RUNNING_PER_USER) the order is fair share, as Celery's workers keep it: a user
    with that many runs training gets none more, and among the rest the user whose latest
    start is oldest goes first, so one user's queue of runs cannot hold the only worker.
    A queued run whose `init` is "run:<id>" waits while run <id> is queued or running, and
    fails (with the reason in its error) if that run ended without success. Each take is one
    conditional UPDATE (`status = 'queued'` and the fair-share count in its WHERE), so of two
    workers racing for the same run one gets it and the other moves on. Commits.
    """
    candidates = session.exec(
        select(Run.id, Run.config, Run.owner_id)
        .where(col(Run.status) == QUEUED)
        .order_by(col(Run.id))
        .limit(CLAIM_SCAN)
    ).all()
    ordered: Sequence[tuple[int | None, Mapping[Any, Any]]]
    if max_running_per_user is None:
        ordered = [(run_id, config) for run_id, config, _ in candidates]
    else:
        ordered = _fair_order(session, candidates, max_running_per_user)
    session.commit()  # end the read: each take below is its own short transaction
    for run_id, config in ordered:
        assert run_id is not None
        if _readiness(session, run_id, config, now) is not None:
            continue
        if _take(session, run_id, worker_id, now, max_running_per_user):
            return run_id
    return None


def claim(session: Session, *, run_id: int, worker_id: str, now: datetime) -> Claim:
    """Take one named run if it is still queued and may start (a backend that delivers run ids,
    such as a task queue, calls this). NOT_YET: the run it starts from is still queued or
    running, ask again later; GONE: already taken or ended, or just failed because the run it
    starts from ended without success. Commits."""
    config = session.exec(
        select(Run.config).where(col(Run.id) == run_id, col(Run.status) == QUEUED)
    ).one_or_none()
    session.commit()
    if config is None:
        return Claim.GONE
    ready = _readiness(session, run_id, config, now)
    if ready is not None:
        return ready
    return Claim.CLAIMED if _take(session, run_id, worker_id, now) else Claim.GONE


# --- the holder's reports --------------------------------------------------------------------


def _held(run_id: int, worker_id: str) -> ColumnElement[bool]:
    return and_(col(Run.id) == run_id, col(Run.status) == RUNNING, col(Run.worker_id) == worker_id)


def report(session: Session, *, run_id: int, worker_id: str, values: dict[str, Any]) -> bool:
    """Write progress columns of a run this worker holds; False if it no longer holds it.

    `values` maps Run columns (epoch, step, loss, curve, history, metrics, info, ...) to values.
    Commits.
    """
    result = session.exec(update(Run).where(_held(run_id, worker_id)).values(**values))
    session.commit()
    return result.rowcount == 1


def beat(session: Session, *, run_id: int, worker_id: str, now: datetime) -> bool | None:
    """Heartbeat: stamp the run and return its cancel flag; None if the worker no longer holds
    it (it was marked interrupted meanwhile). Commits."""
    flag = session.exec(
        update(Run)
        .where(_held(run_id, worker_id))
        .values(heartbeat_at=now)
        .returning(col(Run.cancel_requested))
    ).scalar_one_or_none()
    session.commit()
    return flag


def finish(
    session: Session,
    *,
    run_id: int,
    worker_id: str,
    status: str,
    error: str | None,
    values: dict[str, Any],
    now: datetime,
) -> bool:
    """End a run this worker holds with `status` (one of END_STATUSES); False if it no longer
    holds it. Commits."""
    assert status in END_STATUSES
    result = session.exec(
        update(Run)
        .where(_held(run_id, worker_id))
        .values(status=status, error=error, finished_at=now, eta_s=None, **values)
    )
    session.commit()
    return result.rowcount == 1


# --- what callers and supervisors do -----------------------------------------------------------


def request_cancel(session: Session, *, run: Run, now: datetime) -> str:
    """Cancel a queued run at once, or ask a running one to stop (its worker reads the flag
    within a second and the engine stops at the next step). Returns the run's status after
    the call; an ended run is left as it is. Commits."""
    stopped = session.exec(
        update(Run)
        .where(col(Run.id) == run.id, col(Run.status) == QUEUED)
        .values(status=CANCELLED, finished_at=now, error=None)
    )
    if stopped.rowcount != 1:
        session.exec(
            update(Run)
            .where(col(Run.id) == run.id, col(Run.status) == RUNNING)
            .values(cancel_requested=True)
        )
    status = session.exec(select(Run.status).where(col(Run.id) == run.id)).one()
    session.commit()
    return status


def interrupt_held_by(
    session: Session, *, worker_ids: Sequence[str], reason: str, now: datetime
) -> list[int]:
    """Mark every running run held by these workers interrupted with `reason`; their ids.

    For a worker known to be gone (its process exited). Commits.
    """
    if not worker_ids:
        return []
    ids = session.exec(
        update(Run)
        .where(col(Run.status) == RUNNING, col(Run.worker_id).in_(worker_ids))
        .values(status=INTERRUPTED, error=reason, finished_at=now, eta_s=None)
        .returning(col(Run.id))
    ).scalars()
    result = sorted(ids)
    session.commit()
    return result


def interrupt_silent(
    session: Session, *, before: datetime, reason: str, now: datetime
) -> list[int]:
    """Mark running runs whose last heartbeat is older than `before` interrupted; their ids.

    Catches a worker that died where nobody saw its process exit (another machine, or a server
    that stopped while the run trained). Commits.
    """
    silent = or_none_before(before)
    ids = session.exec(
        update(Run)
        .where(col(Run.status) == RUNNING, silent)
        .values(status=INTERRUPTED, error=reason, finished_at=now, eta_s=None)
        .returning(col(Run.id))
    ).scalars()
    result = sorted(ids)
    session.commit()
    return result


def or_none_before(before: datetime) -> ColumnElement[bool]:
    return (col(Run.heartbeat_at) < before) | col(Run.heartbeat_at).is_(None)


# --- for backends that deliver run ids (a task queue) -------------------------------------------


def count_running(session: Session, *, owner_id: int) -> int:
    """How many of the owner's runs are training now (the fair-share cap counts these)."""
    return session.exec(
        select(func.count())
        .select_from(Run)
        .where(col(Run.owner_id) == owner_id, col(Run.status) == RUNNING)
    ).one()


def take_over(
    session: Session, *, run_id: int, dead_worker_id: str, worker_id: str, now: datetime
) -> bool:
    """Claim a running run from a worker known to be dead, for a fresh attempt: the attempt
    count goes up and the dead attempt's progress is cleared. False if the row is no longer
    that worker's (someone else took or ended it). Commits."""
    result = session.exec(
        update(Run)
        .where(_held(run_id, dead_worker_id))
        .values(
            **_claimed(worker_id, now),
            epoch=0,
            step=0,
            loss=None,
            images_per_s=None,
            eta_s=None,
            curve=[],
            history=[],
            metrics=None,
            error=None,
        )
    )
    session.commit()
    return result.rowcount == 1


def fail_queued(session: Session, *, run_id: int, reason: str, now: datetime) -> bool:
    """End a still-queued run `failed` with `reason` (it could not be handed to a worker).
    Commits."""
    from app.models.runs import FAILED

    result = session.exec(
        update(Run)
        .where(col(Run.id) == run_id, col(Run.status) == QUEUED)
        .values(status=FAILED, error=reason, finished_at=now)
    )
    session.commit()
    return result.rowcount == 1


def queued_ids(session: Session) -> list[int]:
    """Every queued run's id, oldest first."""
    query = select(col(Run.id)).where(col(Run.status) == QUEUED).order_by(col(Run.id))
    return [run_id for run_id in session.exec(query) if run_id is not None]


def delete_run(session: Session, *, run: Run) -> bool:
    """Delete an ended run's row (its files are the caller's to remove); False while it is
    queued or running. Commits."""
    result = session.exec(
        delete(Run).where(col(Run.id) == run.id, col(Run.status).in_(END_STATUSES))
    )
    session.commit()
    return result.rowcount == 1


def owned_runs(session: Session, *, owner_id: int, run_ids: Sequence[int]) -> list[Run] | None:
    """The owner's runs with these ids in that order; None if any is missing or not theirs."""
    rows = session.exec(
        select(Run).where(col(Run.id).in_(list(run_ids)), col(Run.owner_id) == owner_id)
    ).all()
    by_id = {row.id: row for row in rows}
    if any(run_id not in by_id for run_id in run_ids):
        return None
    return [by_id[run_id] for run_id in run_ids]
