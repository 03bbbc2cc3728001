"""Uploaded data sets: one row per ImageFolder a user sent as a zip, kept under DATA_DIR.

The files live in `DATA_DIR/datasets/<folder>`, where `folder` is
`uploads/<owner id at upload>/<id>`: the row keeps the path, so a guest's data sets handed to
an account on login keep working (the folder is not moved). A run trains on one through
`{"dataset": "folder", "folder": <folder>}`; the web layer maps `dataset_id` to it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger
from sqlmodel import Column, Field, SQLModel

from app.models.common import UTCDateTime, utcnow


class Dataset(SQLModel, table=True):
    # AUTOINCREMENT on SQLite: a deleted data set's id (its folder's name) is never reused.
    __table_args__ = {"sqlite_autoincrement": True}

    id: int | None = Field(default=None, primary_key=True)
    owner_id: int = Field(foreign_key="user.id", index=True, ondelete="CASCADE")
    name: str = Field(max_length=80)
    # Under DATA_DIR/datasets, e.g. "uploads/3/12".
    folder: str = Field(max_length=120)
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False)
    )
    # {class name: usable images}, classes in training order (sorted by name).
    classes: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    images: int = 0  # usable images over all classes
    # {reason: files}: what the archive held that is not training data, and why.
    skipped: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    # {reason: [path inside the archive]}: the first files skipped, named (at most
    # app.datasets.extract.SKIPPED_NAMED in all); `skipped` counts every one.
    skipped_names: dict[str, Any] = Field(
        default_factory=dict, sa_column=Column(JSON, nullable=False, server_default="{}")
    )
    # Bytes of the kept files on disk (what the per-user quota counts).
    disk_bytes: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))


class DatasetPublic(SQLModel):
    """A data set as the JSON API shows it."""

    id: int
    name: str
    classes: dict[str, int] = Field(description="Usable images per class")
    images: int = Field(description="Usable images in all")
    skipped: dict[str, int] = Field(description="Files not used, by reason")
    skipped_names: dict[str, list[str]] = Field(
        description="The first files not used (at most 50 in all, hidden and system files "
        "last), by reason: their paths inside the zip"
    )
    bytes: int = Field(description="Bytes kept on disk (counted against your quota)")
    created: datetime

    @classmethod
    def of(cls, row: Dataset) -> DatasetPublic:
        assert row.id is not None
        return cls(
            id=row.id,
            name=row.name,
            classes={str(k): int(v) for k, v in row.classes.items()},
            images=row.images,
            skipped={str(k): int(v) for k, v in row.skipped.items()},
            skipped_names={str(k): [str(n) for n in v] for k, v in row.skipped_names.items()},
            bytes=row.disk_bytes,
            created=row.created_at,
        )
