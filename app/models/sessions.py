"""Server-side sessions: who a browser's session cookie belongs to, and until when."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Column, Field, SQLModel

from app.models.common import UTCDateTime, utcnow


class BrowserSession(SQLModel, table=True):
    """One signed-in browser (a guest's or an account's).

    The cookie carries a random key (256 bits, signed); only its SHA-256 is stored, so a copy
    of the database holds no usable cookie. Deleting the row ends the session: logout, "log
    out everywhere", expiry, or the user being merged away.
    """

    __tablename__ = "browser_session"

    key_hash: str = Field(primary_key=True, max_length=64)  # hex SHA-256 of the cookie's key
    user_id: int = Field(foreign_key="user.id", index=True, ondelete="CASCADE")
    # The absolute expiry counts from here (SESSION_MAX_DAYS) …
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False)
    )
    # … and the idle expiry from here (SESSION_IDLE_DAYS); refreshed at most every few minutes.
    last_seen_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False, index=True)
    )
