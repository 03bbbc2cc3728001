"""Who is asking: the signed session cookie, guests, passwords, CSRF tokens."""

from __future__ import annotations

import hmac
import secrets
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from pwdlib import PasswordHash
from sqlalchemy import Engine
from sqlmodel import Session

from app.db import WriteSessionDep, read_session, write_session
from app.models import User
from app.repos import users

CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"

password_hasher = PasswordHash.recommended()  # argon2id with the library's current parameters
# Verifying against this keeps a login for an unknown user as slow as one with a wrong password.
_DUMMY_HASH = password_hasher.hash(secrets.token_urlsafe(16))


def csrf_token(request: Request) -> str:
    """The session's CSRF token, created on first use (the cookie then carries it)."""
    token = request.session.get("csrf")
    if not token:
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return token


async def require_csrf(request: Request) -> None:
    """403 unless the form field or the htmx header carries this session's token."""
    expected = request.session.get("csrf")
    submitted = request.headers.get(CSRF_HEADER)
    if submitted is None and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        form = await request.form()
        value = form.get(CSRF_FIELD)
        submitted = value if isinstance(value, str) else None
    if not expected or not submitted or not hmac.compare_digest(expected, submitted):
        raise HTTPException(
            status_code=403,
            detail="This form has expired or did not come from cvprep. Reload the page and try again.",
        )


CsrfChecked = Depends(require_csrf)


def _session_user(request: Request, session: Session) -> User | None:
    user_id = request.session.get("uid")
    if not isinstance(user_id, int):
        return None
    return users.get_user(session, user_id=user_id)


async def optional_user(request: Request) -> User | None:
    """The caller's user, or None for a first-time visitor who has saved nothing yet.

    A visitor without a user id in the cookie costs nothing (no session, no thread); a known
    one is looked up in a worker thread.
    """
    user_id = request.session.get("uid")
    if not isinstance(user_id, int):
        return None
    return await run_in_threadpool(_load_user, request.app.state.engine, user_id)


def _load_user(engine: Engine, user_id: int) -> User | None:
    with read_session(engine) as session:
        return users.get_user(session, user_id=user_id)


def optional_user_to_change(request: Request, session: WriteSessionDep) -> User | None:
    """Like optional_user, but attached to the request's write session (to modify the user)."""
    return _session_user(request, session)


async def acting_user(
    request: Request, user: Annotated[User | None, Depends(optional_user)]
) -> User:
    """The caller's user, creating the guest account on their first saved action."""
    if user is not None:
        return user
    guest = await run_in_threadpool(_create_guest, request.app.state.engine)
    request.session["uid"] = guest.id
    return guest


def _create_guest(engine: Engine) -> User:
    with write_session(engine) as session:
        guest = users.create_guest(session)
        session.commit()
        return guest


def log_in(request: Request, user: User) -> None:
    """Start a fresh session for `user` (a new CSRF token too: no session fixation)."""
    request.session.clear()
    request.session["uid"] = user.id
    request.session["username"] = user.username
    csrf_token(request)


def log_out(request: Request) -> None:
    request.session.clear()


def hash_password(password: str) -> str:
    return password_hasher.hash(password)


def verify_password(password: str, password_hash: str | None) -> bool:
    if password_hash is None:
        password_hasher.verify(password, _DUMMY_HASH)
        return False
    return password_hasher.verify(password, password_hash)


OptionalUser = Annotated[User | None, Depends(optional_user)]
OptionalUserToChange = Annotated[User | None, Depends(optional_user_to_change)]
ActingUser = Annotated[User, Depends(acting_user)]
