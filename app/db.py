"""The database engine and sessions. SQLite (WAL, foreign keys, busy timeout) or PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy import Engine, event
from sqlalchemy.exc import OperationalError
from sqlmodel import Session, create_engine

SQLITE_BUSY_TIMEOUT_MS = 10_000
# Seconds a client is told to wait (Retry-After) when the database stayed busy.
BUSY_RETRY_AFTER_S = 2


class DatabaseBusy(TimeoutError):
    """SQLite's write lock stayed taken for the whole busy timeout: answered 503 + Retry-After."""


def is_database_busy(exc: BaseException) -> bool:
    """True for a write that timed out waiting for SQLite's lock (ours or SQLite's own
    "database is locked"): a transient overload, not a bug."""
    if isinstance(exc, DatabaseBusy):
        return True
    if isinstance(exc, OperationalError):
        text = str(exc.orig).lower()
        return "database is locked" in text or "database table is locked" in text
    return False


def make_engine(url: str, *, busy_timeout_ms: int = SQLITE_BUSY_TIMEOUT_MS) -> Engine:
    """An engine for `url`; SQLite gets the pragmas that make concurrent writes safe, and a
    write waits at most `busy_timeout_ms` for the lock before DatabaseBusy."""
    if not url.startswith("sqlite"):
        return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)

    engine = create_engine(
        url,
        connect_args={"check_same_thread": False, "timeout": busy_timeout_ms / 1000},
        pool_size=10,
        max_overflow=20,
    )

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event issue BEGIN itself (see below), not the driver.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
        # FULL: a committed answer survives even a power cut, not only a killed process.
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.close()

    # SQLite has one writer at a time. Writers of this process queue on a lock, first come
    # first served, instead of polling in SQLite's busy handler (whose back-off sleeps make
    # for second-long tails under load); busy_timeout still arbitrates between processes.
    write_lock = threading.Lock()

    @event.listens_for(engine, "begin")
    def _begin(connection: Any) -> None:
        # A write transaction takes the write lock up front (BEGIN IMMEDIATE) so it waits on
        # busy_timeout instead of failing with SQLITE_BUSY when it upgrades a read lock.
        writes = connection.get_execution_options().get("writes", False)
        if writes and not connection.info.get("write_lock"):
            if not write_lock.acquire(timeout=busy_timeout_ms / 1000):
                raise DatabaseBusy("the database stayed busy; try again")
            connection.info["write_lock"] = True
        connection.exec_driver_sql("BEGIN IMMEDIATE" if writes else "BEGIN")

    @event.listens_for(engine, "checkin")
    def _checkin(_dbapi_connection: Any, record: Any) -> None:
        # The session hands its connection back after COMMIT or ROLLBACK: the write is over.
        if record.info.pop("write_lock", False):
            write_lock.release()

    return engine


def read_session(engine: Engine) -> Session:
    return Session(engine, expire_on_commit=False)


def write_session(engine: Engine) -> Session:
    return Session(engine.execution_options(writes=True), expire_on_commit=False)


# Creating a Session does no I/O (it connects on first use, inside the sync route's thread),
# so these are async: a page that never touches the database pays no thread hop for them.


async def get_session(request: Request) -> AsyncIterator[Session]:
    with read_session(request.app.state.engine) as session:
        yield session


async def get_write_session(request: Request) -> AsyncIterator[Session]:
    with write_session(request.app.state.engine) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]
WriteSessionDep = Annotated[Session, Depends(get_write_session)]


async def get_engine(request: Request) -> Engine:
    return request.app.state.engine


# The one way a route reaches the database: SessionDep / WriteSessionDep in a route whose work
# is one transaction in its thread; EngineDep where the route hands the work to a function that
# opens its own transactions off the event loop (a launch, an upload, a delete, a login).
EngineDep = Annotated[Engine, Depends(get_engine)]
