"""Who is asking: the session's user, guests, usernames, passwords (CSRF is app.csrf).

The session itself (cookie, row, expiry) is `app.sessions`; this module is what routes use.
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import threading
import time
import unicodedata
import weakref
from collections import deque
from dataclasses import dataclass
from typing import Annotated

import anyio
import anyio.to_thread
from fastapi import Depends, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from pwdlib import PasswordHash
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from app.db import write_session
from app.models import User
from app.models.common import utcnow
from app.repos import sessions as session_rows
from app.repos import users
from app.sessions import browser, key_hash, new_key

password_hasher = PasswordHash.recommended()  # argon2id with the library's current parameters
# Verifying against this keeps a login for an unknown user as slow as one with a wrong password.
_DUMMY_HASH = password_hasher.hash(secrets.token_urlsafe(16))
# Password hashes run at most this many at a time (each argon2id hash takes 64 MiB and more
# than one core for ~0.1–0.2 s); the others wait in the event loop, not in worker threads, so
# a burst of logins neither exhausts the thread pool nor starves everyone else's requests.
HASH_CONCURRENCY = max(1, (os.cpu_count() or 2) // 2)

USERNAME = re.compile(r"[A-Za-z0-9_.-]{3,40}", re.ASCII)


# --- the session's user ----------------------------------------------------------------------


async def optional_user(request: Request) -> User | None:
    """The caller's user, or None for a visitor who has saved nothing (or whose session ended).

    The middleware has already looked the session up; this costs nothing.
    """
    return browser(request).user


async def acting_user(
    request: Request, user: Annotated[User | None, Depends(optional_user)]
) -> User:
    """The caller's user, creating the guest account (and its session) on a first saved action."""
    if user is not None:
        return user
    guests: GuestLimiter = request.app.state.guests
    address = request.client.host if request.client else "unknown"
    if not guests.allow(address):
        raise HTTPException(
            status_code=429,
            detail=(
                f"Too many new guests from your network: at most {guests.limit} every "
                f"{guests.window_s // 60} minutes (GUEST_MAX_PER_ADDRESS). Try again later, or "
                "log in."
            ),
            headers={"Retry-After": str(guests.retry_after(address))},
        )
    state = browser(request)
    # Always a fresh key: the browser's anonymous key may have been issued to someone else and
    # planted here, and whoever knows it would know the guest's CSRF token. The response hands
    # the page the new token (app.sessions).
    guest, key = await run_in_threadpool(_create_guest, request.app.state.engine, new_key())
    state.adopt(key, guest)
    return guest


class GuestLimiter:
    """At most `limit` guests per client address in a sliding window of `window_s` seconds.

    Kept in the web process (thread-safe; each web process counts its own): a guest account
    is made on a visitor's first saved action, and without this one client could mint any
    number of identities, each with its own per-user caps.
    """

    MAX_ADDRESSES = 100_000  # past this many tracked addresses the oldest are forgotten

    def __init__(self, limit: int, window_s: int) -> None:
        self.limit, self.window_s = limit, window_s
        self._seen: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, address: str, now: float) -> deque[float]:
        times = self._seen.setdefault(address, deque())
        while times and now - times[0] >= self.window_s:
            times.popleft()
        return times

    def allow(self, address: str) -> bool:
        """Count one new guest for `address` and say whether it is within the limit."""
        now = time.monotonic()
        with self._lock:
            times = self._recent(address, now)
            if len(times) >= self.limit:
                return False
            times.append(now)
            if len(self._seen) > self.MAX_ADDRESSES:
                for stale in list(self._seen)[: len(self._seen) // 2]:
                    del self._seen[stale]
            return True

    def retry_after(self, address: str) -> int:
        """Whole seconds until `address` may make a guest again (at least 1)."""
        now = time.monotonic()
        with self._lock:
            times = self._recent(address, now)
            return max(1, int(self.window_s - (now - times[0])) + 1) if times else 1


def _create_guest(engine: Engine, key: str) -> tuple[User, str]:
    for _ in range(3):
        with write_session(engine) as session:
            guest = users.create_guest(session)
            assert guest.id is not None
            try:
                session_rows.create_session(
                    session, key_hash=key_hash(key), user_id=guest.id, now=utcnow()
                )
                session.commit()
            except IntegrityError:
                session.rollback()
                key = new_key()
                continue
            return guest, key
    raise RuntimeError("could not create a session with a fresh key")


def start_session(session: Session, request: Request, user: User) -> str:
    """In the caller's write transaction: a session row with a fresh key for `user`, and the
    browser's previous session ended. Call `adopted` once the transaction has committed."""
    assert user.id is not None
    state = browser(request)
    if state.stored and state.key:
        session_rows.end_session(session, key_hash=key_hash(state.key))
    key = new_key()
    session_rows.create_session(session, key_hash=key_hash(key), user_id=user.id, now=utcnow())
    return key


def adopted(request: Request, key: str, user: User) -> None:
    """The browser now holds `key` (login, registration); the practice round starts over."""
    browser(request).adopt(key, user)
    request.session.clear()


def end_session(session: Session, request: Request) -> None:
    """In the caller's write transaction: delete this browser's session row, if any."""
    state = browser(request)
    if state.stored and state.key:
        session_rows.end_session(session, key_hash=key_hash(state.key))


def ended(request: Request) -> None:
    """After logout: a fresh anonymous key, nothing of the old session kept."""
    browser(request).end()
    request.session.clear()


def signed_in_name(request: Request) -> str | None:
    """The registered user's name for the page header, or None (guests and visitors)."""
    user = browser(request).user
    return user.username if user is not None and not user.is_guest else None


OptionalUser = Annotated[User | None, Depends(optional_user)]
ActingUser = Annotated[User, Depends(acting_user)]


# --- usernames and passwords -----------------------------------------------------------------


@dataclass(frozen=True)
class Username:
    shown: str  # as typed, after NFKC
    key: str  # case-folded: what is compared and unique


def parse_username(text: str) -> Username | None:
    """A username from typed text (NFKC, stripped), or None if it cannot be one.

    Names are 3–40 ASCII letters, digits, `.`, `_`, `-` after NFKC, so full-width `ＡＤＭＩＮ`
    reads as `ADMIN`; the key is the case-folded form (Unicode default caseless matching).
    """
    shown = unicodedata.normalize("NFKC", text).strip()
    if not USERNAME.fullmatch(shown):
        return None
    return Username(shown, unicodedata.normalize("NFKC", shown.casefold()))


# One limiter per event loop: a server has one; a test suite starts many, one per client.
_hash_limiters: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, anyio.CapacityLimiter] = (
    weakref.WeakKeyDictionary()
)


def _limiter() -> anyio.CapacityLimiter:
    loop = asyncio.get_running_loop()
    limiter = _hash_limiters.get(loop)
    if limiter is None:
        limiter = _hash_limiters[loop] = anyio.CapacityLimiter(HASH_CONCURRENCY)
    return limiter


async def hash_password(password: str) -> str:
    """argon2id hash of `password`, computed in a worker thread (never in a DB transaction)."""
    return await anyio.to_thread.run_sync(password_hasher.hash, password, limiter=_limiter())


async def verify_password(password: str, password_hash: str | None) -> bool:
    """True if `password` matches. With no hash (unknown user) the dummy hash is verified, so
    both cost one argon2id computation and take the same time."""
    return await anyio.to_thread.run_sync(_verify, password, password_hash, limiter=_limiter())


def _verify(password: str, password_hash: str | None) -> bool:
    if password_hash is None:
        password_hasher.verify(password, _DUMMY_HASH)
        return False
    return password_hasher.verify(password, password_hash)
