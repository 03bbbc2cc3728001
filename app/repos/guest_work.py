"""What a guest holds besides practice progress (data sets, runs, experiments); whether
moving it into an account keeps that account within its caps is app.runs.limits.merge_refusal.

A browser may carry a guest cookie that someone else planted; so at login and at
registration the guest's data sets, runs and experiments move only when the person ticks the
box that lists them, and only if the account stays within DATASET_QUOTA_COUNT, DATASET_QUOTA_BYTES,
RUN_MAX_QUEUED (single runs) and EXPERIMENT_MAX_LIVE afterwards. Practice progress (answers, cards, drafts) always moves.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session, col, func, select

from app.models import Dataset, Experiment, Run
from app.models.runs import LIVE_STATUSES


@dataclass(frozen=True)
class Holdings:
    """One user's data sets (names, bytes on disk), runs (all, live) and experiments."""

    dataset_names: tuple[str, ...]
    dataset_bytes: int
    runs: int
    live_runs: int  # single runs queued or running (an experiment's runs count with it)
    experiments: int
    live_experiments: int = 0  # experiments with a run still queued or running

    @property
    def empty(self) -> bool:
        return not (self.dataset_names or self.runs or self.experiments)

    def summary(self) -> str:
        """E.g. "2 data sets (cats.zip, dogs.zip), 3 runs, 1 experiment"."""
        parts = []
        if self.dataset_names:
            names = ", ".join(self.dataset_names[:5]) + (
                ", …" if len(self.dataset_names) > 5 else ""
            )
            parts.append(_count(len(self.dataset_names), "data set") + f" ({names})")
        if self.runs:
            parts.append(_count(self.runs, "run"))
        if self.experiments:
            parts.append(_count(self.experiments, "experiment"))
        return ", ".join(parts)


def _count(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def holdings(session: Session, *, user_id: int) -> Holdings:
    """What `user_id` holds now (a few indexed counts)."""
    rows = session.exec(
        select(Dataset.name, Dataset.disk_bytes)
        .where(col(Dataset.owner_id) == user_id)
        .order_by(col(Dataset.id))
    ).all()
    runs, live = session.exec(
        select(func.count(), func.count().filter(col(Run.status).in_(LIVE_STATUSES))).where(
            col(Run.owner_id) == user_id
        )
    ).one()
    groups = session.exec(
        select(Experiment.run_ids).where(col(Experiment.owner_id) == user_id)
    ).all()
    live_in_groups, live_groups = 0, 0
    for run_ids in groups:
        ids = [int(i) for i in run_ids]
        if not ids:
            continue
        count = session.exec(
            select(func.count())
            .select_from(Run)
            .where(col(Run.id).in_(ids), col(Run.status).in_(LIVE_STATUSES))
        ).one()
        live_in_groups += int(count)
        live_groups += 1 if count else 0
    return Holdings(
        dataset_names=tuple(name for name, _ in rows),
        dataset_bytes=sum(int(size) for _, size in rows),
        runs=int(runs),
        live_runs=max(0, int(live or 0) - live_in_groups),
        experiments=len(groups),
        live_experiments=live_groups,
    )
