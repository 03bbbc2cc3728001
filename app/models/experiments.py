"""Experiments: a group of runs launched together from a preset, to test one claim.

The runs themselves are ordinary `run` rows (they train, report and end like any other);
this row remembers which preset made them and in what order, so the page can compare them
and the preset's `finding` can read their figures.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON
from sqlmodel import Column, Field, SQLModel

from app.models.common import UTCDateTime, utcnow


class Experiment(SQLModel, table=True):
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: int | None = Field(default=None, primary_key=True)
    owner_id: int = Field(foreign_key="user.id", index=True, ondelete="CASCADE")
    preset: str = Field(max_length=40, index=True)  # a name in app.experiments.presets
    # The runs' ids in the preset's order (a pretraining run made for it first, if any).
    run_ids: list[int] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    size: str = Field(default="default", max_length=20)  # the preset's size: default | full
    # Per run id, in the same order: [arm key, seed] (seed null for a run trained once).
    cells: list[list[Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False)
    )
