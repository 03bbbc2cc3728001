"""Practice state: one FSRS card per (user, quiz item), the append-only review log, drafts."""

from __future__ import annotations

from datetime import datetime
from uuid import uuid4

from sqlalchemy import Index, UniqueConstraint
from sqlmodel import Column, Field, SQLModel, Text

from app.models.common import UTCDateTime, utcnow


class CardState(SQLModel, table=True):
    """The scheduler's memory of one quiz item for one user (mirrors fsrs.Card)."""

    __tablename__ = "card_state"
    __table_args__ = (UniqueConstraint("user_id", "item_id"),)

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="user.id", index=True, ondelete="CASCADE")
    item_id: str = Field(max_length=80)
    question_slug: str = Field(max_length=60)
    state: int  # fsrs.State: 1 learning, 2 review, 3 relearning
    step: int | None = None
    stability: float | None = None
    difficulty: float | None = None
    due: datetime = Field(sa_column=Column(UTCDateTime, nullable=False, index=True))
    last_review: datetime | None = Field(default=None, sa_column=Column(UTCDateTime))
    reps: int = 0
    lapses: int = 0


class ReviewLog(SQLModel, table=True):
    """Every graded attempt. Rows are only ever inserted (and removed by an explicit undo)."""

    __tablename__ = "review_log"
    __table_args__ = (
        UniqueConstraint("user_id", "idempotency_key"),
        UniqueConstraint("user_id", "uid"),
        Index("ix_review_log_user_time", "user_id", "reviewed_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    # Stable identity of a review across export and import (unique per user).
    uid: str = Field(default_factory=lambda: uuid4().hex, max_length=32)
    user_id: int = Field(foreign_key="user.id", ondelete="CASCADE")
    item_id: str = Field(max_length=80)
    question_slug: str = Field(max_length=60)
    rating: int  # fsrs.Rating: 1 again, 2 hard, 3 good, 4 easy
    correct: bool | None = None  # None for self-graded recall cards
    answer: str = Field(default="", sa_column=Column(Text, nullable=False))
    seed: int | None = None
    # Multiple choice: the options' indices (as in the question file) in the order shown,
    # e.g. "2,0,3,1"; `answer` is the chosen option's index in the file. None: the file's order.
    choice_order: str | None = Field(default=None, max_length=40)
    mode: str = Field(default="practice", max_length=20)  # practice | mock | api
    reviewed_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False)
    )
    duration_ms: int | None = None
    idempotency_key: str | None = Field(default=None, max_length=100)
    # The card as it was before this review (JSON), so an undo restores it exactly.
    card_before: str | None = Field(default=None, sa_column=Column(Text))


class Draft(SQLModel, table=True):
    """A learner's own answer to a question, written before revealing the model answer."""

    __table_args__ = (UniqueConstraint("user_id", "question_slug"),)

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="user.id", index=True, ondelete="CASCADE")
    question_slug: str = Field(max_length=60)
    text: str = Field(default="", sa_column=Column(Text, nullable=False))
    updated_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False)
    )
