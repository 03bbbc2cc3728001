"""Training runs: one row per run a user launched, the database's word on where it stands.

The row is the source of truth for every job backend: a worker claims a queued row
atomically, writes its progress and a heartbeat into it, reads `cancel_requested` as the
engine's `should_stop`, and writes the outcome. The run's files (the engine's outputs) live in
`DATA_DIR/runs/<id>/`.

The family, as in full-stack-fastapi-template: `RunBase` (what a caller chooses) → `Run` (the
table, with the owner) → `RunPublic` (what the JSON API returns).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index
from sqlmodel import Column, Field, SQLModel, Text

from app.models.common import UTCDateTime, utcnow

QUEUED, RUNNING = "queued", "running"
SUCCEEDED, FAILED, CANCELLED, INTERRUPTED = "succeeded", "failed", "cancelled", "interrupted"
LIVE_STATUSES = (QUEUED, RUNNING)
END_STATUSES = (SUCCEEDED, FAILED, CANCELLED, INTERRUPTED)
RUN_STATUSES = LIVE_STATUSES + END_STATUSES


class RunBase(SQLModel):
    # The complete RunConfig as a dict (every default filled in), as `RunConfig.to_dict` gives.
    config: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))


class Run(RunBase, table=True):
    # AUTOINCREMENT on SQLite: a deleted run's id (and so its folder name) is never reused.
    __table_args__ = (
        Index("ix_run_status_id", "status", "id"),
        {"sqlite_autoincrement": True},
    )

    id: int | None = Field(default=None, primary_key=True)
    owner_id: int = Field(foreign_key="user.id", index=True, ondelete="CASCADE")
    # queued | running | succeeded | failed | cancelled | interrupted
    status: str = Field(default=QUEUED, max_length=12)
    # Progress, from the engine's StepProgress: epoch and step count from 1 (0 = not yet).
    epoch: int = 0
    epochs: int = 0
    step: int = 0
    steps: int = 0  # steps per epoch
    loss: float | None = None  # the last reported training loss
    images_per_s: float | None = None  # training throughput in the current epoch
    eta_s: float | None = None  # seconds until the last epoch ends, at the current rate
    # [[epoch as a fraction, loss], ...]: the live loss curve, thinned to a few hundred points.
    curve: list[Any] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    # One entry per finished epoch: train/val loss and accuracy, F1, ECE, grad norms, ...
    history: list[Any] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    # The latest validation figures; at the end, metrics.json's figures (history and the
    # per-step losses are elsewhere).
    metrics: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    # From the Started event: classes, train/val sizes, device, precision, data counts.
    info: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    error: str | None = Field(default=None, sa_column=Column(Text))
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False)
    )
    started_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime))
    finished_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime))
    # Written by the worker at least every second while it holds the run.
    heartbeat_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime))
    worker_id: str | None = Field(default=None, max_length=120)  # "<host>:<pid>" of the holder
    attempt: int = 0  # how many times a worker claimed it
    cancel_requested: bool = False  # the engine's should_stop reads it

    @property
    def live(self) -> bool:
        return self.status in LIVE_STATUSES

    @property
    def seconds(self) -> float | None:
        """Wall-clock seconds from start to end (or to now, while it runs)."""
        if self.started_at is None:
            return None
        return ((self.finished_at or utcnow()) - self.started_at).total_seconds()


class RunProgress(SQLModel):
    epoch: int
    epochs: int
    step: int
    steps: int = Field(description="Steps per epoch")
    loss: float | None
    images_per_s: float | None
    eta_s: float | None = Field(description="Seconds until the last epoch ends")


class RunPublic(SQLModel):
    """A run as the JSON API shows it."""

    id: int
    status: str = Field(description=" | ".join(RUN_STATUSES))
    config: dict[str, Any]
    progress: RunProgress
    queue_position: int | None = Field(
        description="While queued: 1 = the next run to start, across all users"
    )
    metrics: dict[str, Any] | None = Field(
        description="val_accuracy, macro_f1, ece, confusion_matrix, classes, per_class, ... "
        "(the latest epoch's while it runs; null before the first epoch ends)"
    )
    history: list[dict[str, Any]] = Field(description="One entry per finished epoch")
    error: str | None
    attempt: int
    created: datetime
    started: datetime | None
    finished: datetime | None

    @classmethod
    def of(cls, run: Run, *, queue_position: int | None = None) -> RunPublic:
        assert run.id is not None
        return cls(
            id=run.id,
            status=run.status,
            config=run.config,
            progress=RunProgress(
                epoch=run.epoch,
                epochs=run.epochs or int(run.config.get("epochs", 0)),
                step=run.step,
                steps=run.steps,
                loss=run.loss,
                images_per_s=run.images_per_s,
                eta_s=run.eta_s,
            ),
            queue_position=queue_position,
            metrics=run.metrics,
            history=run.history,
            error=run.error,
            attempt=run.attempt,
            created=run.created_at,
            started=run.started_at,
            finished=run.finished_at,
        )


def best_val_accuracy(run: Run) -> float | None:
    """The highest validation accuracy over the run's epochs (None before the first ends)."""
    values = [h.get("val_accuracy") for h in run.history if isinstance(h, dict)]
    numbers = [v for v in values if isinstance(v, int | float)]
    return max(numbers) if numbers else None


class RunSummary(SQLModel):
    """One line of the caller's list of runs."""

    id: int
    status: str
    dataset: str
    model: str
    epochs: int
    best_val_accuracy: float | None = Field(description="The best epoch's, not the last's")
    error: str | None
    created: datetime
    started: datetime | None
    finished: datetime | None

    @classmethod
    def of(cls, run: Run) -> RunSummary:
        assert run.id is not None
        return cls(
            id=run.id,
            status=run.status,
            dataset=str(run.config.get("dataset", "")),
            model=str(run.config.get("model", "")),
            epochs=int(run.config.get("epochs", 0)),
            best_val_accuracy=best_val_accuracy(run),
            error=run.error,
            created=run.created_at,
            started=run.started_at,
            finished=run.finished_at,
        )


class RunAccepted(SQLModel):
    id: int
    status: str
