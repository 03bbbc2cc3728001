"""Uploaded data sets: create, read (always scoped to the owner), list, delete, quota use."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, func
from sqlmodel import Session, col, select

from app.models.datasets import Dataset


def create_dataset(
    session: Session,
    *,
    owner_id: int,
    name: str,
    folder: str,
    classes: dict[str, int],
    skipped: dict[str, int],
    disk_bytes: int,
    now: datetime,
    skipped_names: dict[str, list[str]] | None = None,
) -> Dataset:
    """A data set row (flushed, so it has an id; the caller commits). `skipped_names` names
    the first skipped files by reason (paths inside the archive)."""
    row = Dataset(
        owner_id=owner_id,
        name=name,
        folder=folder,
        classes=dict(classes),
        images=sum(classes.values()),
        skipped=dict(skipped),
        skipped_names={reason: list(names) for reason, names in (skipped_names or {}).items()},
        disk_bytes=disk_bytes,
        created_at=now,
    )
    session.add(row)
    session.flush()
    return row


def set_folder(session: Session, *, row: Dataset, folder: str) -> None:
    """Record where the files went once the id that names the folder is known."""
    row.folder = folder
    session.add(row)
    session.flush()


def get_dataset(session: Session, *, dataset_id: int, owner_id: int) -> Dataset | None:
    """The data set if it exists and is `owner_id`'s; another user's is None, like a missing one."""
    return session.exec(
        select(Dataset).where(col(Dataset.id) == dataset_id, col(Dataset.owner_id) == owner_id)
    ).one_or_none()


def datasets_of(session: Session, *, owner_id: int) -> Sequence[Dataset]:
    """The owner's data sets, newest first."""
    return session.exec(
        select(Dataset).where(col(Dataset.owner_id) == owner_id).order_by(col(Dataset.id).desc())
    ).all()


def usage(session: Session, *, owner_id: int) -> tuple[int, int]:
    """(data sets, bytes on disk) the owner holds: what the quota counts."""
    count, total = session.exec(
        select(func.count(), func.coalesce(func.sum(Dataset.disk_bytes), 0)).where(
            col(Dataset.owner_id) == owner_id
        )
    ).one()
    return int(count), int(total)


def delete_dataset(session: Session, *, row: Dataset) -> bool:
    """Delete the row (the caller removes the files once committed); False if already gone."""
    result = session.exec(
        delete(Dataset).where(col(Dataset.id) == row.id, col(Dataset.owner_id) == row.owner_id)
    )
    session.commit()
    return result.rowcount == 1
