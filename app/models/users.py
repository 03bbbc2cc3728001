"""Users: guests (created on their first saved action) and registered accounts."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Column, Field, SQLModel

from app.models.common import UTCDateTime, utcnow


class User(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    # NULL for a guest; unique among registered users.
    username: str | None = Field(default=None, max_length=40, unique=True, index=True)
    password_hash: str | None = Field(default=None, max_length=255)
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False)
    )

    @property
    def is_guest(self) -> bool:
        return self.username is None


class LoginAttempt(SQLModel, table=True):
    """Failed logins, counted per username over a window to slow down password guessing."""

    __tablename__ = "login_attempt"

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(max_length=40, index=True)
    attempted_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False, index=True)
    )
