"""Experiments: create, read (always scoped to the owner), and their runs in order."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from app.models import Experiment, Run, User


def create_experiment(
    session: Session,
    *,
    owner_id: int,
    preset: str,
    run_ids: list[int],
    cells: list[list[Any]],
    size: str,
    now: datetime,
) -> Experiment:
    """An experiment row (flushed, so it has an id; the caller commits).

    `cells[i]` is `[arm, seed]` of `run_ids[i]`."""
    experiment = Experiment(
        owner_id=owner_id, preset=preset, run_ids=run_ids, cells=cells, size=size, created_at=now
    )
    session.add(experiment)
    session.flush()
    return experiment


def get_experiment(session: Session, *, experiment_id: int, owner_id: int) -> Experiment | None:
    """The experiment if it exists and is `owner_id`'s; another user's is None, like a missing one."""
    return session.exec(
        select(Experiment).where(
            col(Experiment.id) == experiment_id, col(Experiment.owner_id) == owner_id
        )
    ).one_or_none()


def experiments_of(session: Session, *, owner_id: int, limit: int = 200) -> Sequence[Experiment]:
    """The owner's experiments, newest first."""
    return session.exec(
        select(Experiment)
        .where(col(Experiment.owner_id) == owner_id)
        .order_by(col(Experiment.id).desc())
        .limit(limit)
    ).all()


def runs_in_order(session: Session, *, experiment: Experiment) -> list[Run]:
    """The experiment's runs that still exist, in its order (a deleted run is left out)."""
    ids = [int(i) for i in experiment.run_ids]
    if not ids:
        return []
    rows = session.exec(
        select(Run).where(col(Run.id).in_(ids), col(Run.owner_id) == experiment.owner_id)
    ).all()
    by_id = {row.id: row for row in rows}
    return [by_id[i] for i in ids if i in by_id]


def live_count(session: Session, *, owner_id: int | None, live_statuses: Sequence[str]) -> int:
    """How many experiments still have a run in `live_statuses`: the owner's, or with
    `owner_id` None those of every guest (a user without a username) together."""
    query = select(Experiment).order_by(col(Experiment.id).desc()).limit(200)
    if owner_id is not None:
        query = query.where(col(Experiment.owner_id) == owner_id)
    else:
        query = query.join(User, col(User.id) == col(Experiment.owner_id)).where(
            col(User.username).is_(None)
        )
    live = 0
    for row in session.exec(query).all():
        ids = [int(i) for i in row.run_ids]
        running = select(Run.id).where(col(Run.id).in_(ids), col(Run.status).in_(live_statuses))
        if ids and session.exec(running).first() is not None:
            live += 1
    return live


def count_of(session: Session, *, owner_id: int, preset: str) -> int:
    """How many experiments of `preset` the owner has launched (deleted ones aside)."""
    return len(
        session.exec(
            select(Experiment.id).where(
                col(Experiment.owner_id) == owner_id, col(Experiment.preset) == preset
            )
        ).all()
    )
