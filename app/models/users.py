"""Users (guests, created on their first saved action, and registered accounts); failed logins."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Column, Field, SQLModel

from app.models.common import UTCDateTime, utcnow


class User(SQLModel, table=True):
    # AUTOINCREMENT on SQLite: a deleted row's id (a guest merged into an account) is never
    # handed to a later user. PostgreSQL's sequences never reuse one anyway.
    __table_args__ = {"sqlite_autoincrement": True}

    id: int | None = Field(default=None, primary_key=True)
    # NULL for a guest; the name as the person typed it (after NFKC), shown on pages.
    username: str | None = Field(default=None, max_length=40, unique=True, index=True)
    # NULL for a guest; the name case-folded: what logins compare and what must be unique,
    # so `admin`, `Admin` and `ＡＤＭＩＮ` are one account.
    username_key: str | None = Field(default=None, max_length=40, unique=True, index=True)
    password_hash: str | None = Field(default=None, max_length=255)
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False)
    )

    @property
    def is_guest(self) -> bool:
        return self.username is None


class LoginAttempt(SQLModel, table=True):
    """One login try, written before the password is checked and kept if it failed.

    Counted per username and per client address over LOGIN_WINDOW_MINUTES; a try that
    succeeds removes its row (and the name's earlier failures).
    """

    __tablename__ = "login_attempt"

    id: int | None = Field(default=None, primary_key=True)
    # The case-folded username tried ("" when the text could not be a username at all).
    username_key: str = Field(max_length=40, index=True)
    # The client's IP address as the server saw it (after trusted proxy headers).
    address: str = Field(max_length=64, index=True)
    attempted_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False, index=True)
    )
