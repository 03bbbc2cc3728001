"""Register, log in, log out, the account page ("log out everywhere").

Each route keeps its database transactions short and hashes passwords between them, in a
worker thread with no transaction open: a login never holds the SQLite write lock while argon2
runs. A guest's progress moves into the account (at registration as at login: the account
is always a new row); its data sets, runs and experiments only when the person ticks the box
that lists them; the guest's session never does.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError

from app import login_limit
from app.auth import (
    OptionalUser,
    Username,
    adopted,
    end_session,
    ended,
    hash_password,
    parse_username,
    start_session,
    verify_password,
)
from app.csrf import CsrfChecked
from app.db import EngineDep, read_session, write_session
from app.deps import SettingsDep
from app.inputs import FormText
from app.models import User
from app.models.common import utcnow
from app.repos import guest_work, users
from app.repos import sessions as session_rows
from app.runs.limits import merge_refusal
from app.settings import Settings
from app.web import render, safe_next

router = APIRouter(tags=["accounts"], include_in_schema=False)

PASSWORD_MIN, PASSWORD_MAX = 8, 256
WRONG_CREDENTIALS = "Wrong username or password."
USERNAME_RULE = "username: use 3 to 40 letters, digits, '.', '_' or '-'."

Text = Annotated[FormText, Form(max_length=400)]


DEFAULT_LANDING = "/progress"


def _form(
    request: Request,
    page: str,
    *,
    error: str = "",
    username: str = "",
    next_page: str | None = None,
    status: int = 200,
    guest_work: str = "",
) -> HTMLResponse:
    """The login or register form; `next_page` (checked by `safe_next`) rides along in it;
    `guest_work` lists what the browser's guest would move at login besides progress."""
    kept = safe_next(next_page if next_page is not None else request.query_params.get("next"))
    context = {
        "error": error,
        "username": username[:40],
        "next": kept or "",
        "guest_work": guest_work,
        "guest_retention_hours": request.app.state.settings.guest_retention_hours,
    }
    return render(request, page, context, status_code=status)


def _landing(next_page: str) -> RedirectResponse:
    """Back to the page the learner came from, when it is a page of this site."""
    return RedirectResponse(safe_next(next_page) or DEFAULT_LANDING, status_code=303)


def client_address(request: Request) -> str:
    """The client's IP address (uvicorn applies X-Forwarded-For from trusted proxies)."""
    return request.client.host if request.client else "unknown"


def lifetime(settings: Settings) -> session_rows.Lifetime:
    return session_rows.Lifetime(
        idle=timedelta(days=settings.session_idle_days),
        absolute=timedelta(days=settings.session_max_days),
    )


# --- registration ----------------------------------------------------------------------------


@router.get("/register", response_class=HTMLResponse)
def register_form(request: Request, engine: EngineDep, current: OptionalUser) -> HTMLResponse:
    work = _guest_work(engine, current)
    return _form(request, "pages/register.html", guest_work=work)


def _name_taken(engine: Engine, key: str) -> bool:
    with read_session(engine) as session:
        return users.find_by_username_key(session, username_key=key) is not None


def _register(
    engine: Engine,
    request: Request,
    current: User | None,
    name: Username,
    password_hash: str,
    move_work: bool,
) -> tuple[str, User] | None:
    """A new account row, and the browser's guest moved into it as at login: its practice
    progress always, its data sets, runs and experiments only when `move_work` (the box the
    person ticked) and the caps allow. None if the name was taken meanwhile; raises
    MergeRefused (nothing written) when moving the work would pass a cap.

    The guest never becomes the account itself: its cookie may have been planted, and what
    it holds is then someone else's. Every session the guest had ends here either way."""
    with write_session(engine) as session:
        account = users.create_guest(session)
        assert account.id is not None
        try:
            users.register(
                session,
                user=account,
                username=name.shown,
                username_key=name.key,
                password_hash=password_hash,
            )
        except IntegrityError:
            session.rollback()
            return None
        guest = session.get(User, current.id) if current is not None and current.is_guest else None
        if guest is not None and guest.id is not None:
            held = guest_work.holdings(session, user_id=guest.id)
            work = held.empty or move_work
            if work and not held.empty:
                mine = guest_work.holdings(session, user_id=account.id)
                refusal = merge_refusal(held, mine, request.app.state.settings)
                if refusal is not None:
                    session.rollback()
                    raise MergeRefused(refusal)
            # Every cookie the guest had (copied, planted or this one) stops working here.
            session_rows.end_user_sessions(session, user_id=guest.id)
            users.merge_guest(session, guest=guest, account=account, work=work)
        key = start_session(session, request, account)
        session.commit()
        return key, account


@router.post("/register", response_class=HTMLResponse, dependencies=[CsrfChecked])
async def register(
    request: Request,
    engine: EngineDep,
    user: OptionalUser,
    username: Text = "",
    password: Text = "",
    next_page: Annotated[FormText, Form(alias="next", max_length=2000)] = "",
    move_guest_work: Annotated[bool, Form()] = False,
) -> Response:
    name = parse_username(username)
    error = ""
    status = 422
    if name is None:
        error = USERNAME_RULE
    elif not PASSWORD_MIN <= len(password) <= PASSWORD_MAX:
        error = f"password: use {PASSWORD_MIN} to {PASSWORD_MAX} characters."
    elif user is not None and not user.is_guest:
        error = "You are already logged in. Log out first to register another account."
    elif await run_in_threadpool(_name_taken, engine, name.key):
        error = "username: that name is taken; choose another."
    if not error and name is not None:
        password_hash = await hash_password(password)
        try:
            registered = await run_in_threadpool(
                _register, engine, request, user, name, password_hash, move_guest_work
            )
        except MergeRefused as refused:
            error, status = str(refused), 409
        else:
            if registered is not None:
                key, account = registered
                adopted(request, key, account)
                return _landing(next_page)
            error = "username: that name is taken; choose another."
    return _form(
        request,
        "pages/register.html",
        error=error,
        username=username,
        next_page=next_page,
        status=status,
        guest_work=await run_in_threadpool(_guest_work, engine, user),
    )


# --- login -----------------------------------------------------------------------------------


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, engine: EngineDep, current: OptionalUser) -> HTMLResponse:
    work = _guest_work(engine, current)
    return _form(request, "pages/login.html", guest_work=work)


def _find_account(engine: Engine, name_key: str) -> User | None:
    with read_session(engine) as session:
        return users.find_by_username_key(session, username_key=name_key)


class MergeRefused(Exception):
    """Moving the guest's work would take the account past a cap (the message names it)."""


def _finish_login(
    engine: Engine,
    request: Request,
    attempt: login_limit.Attempt,
    account: User,
    current: User | None,
    name_key: str,
    move_work: bool,
) -> str:
    """Start the account's session and move the browser's guest into it: its practice
    progress always, its data sets, runs and experiments only when `move_work` (the box the
    person ticked) and the account's caps allow. Raises MergeRefused (nothing written but
    the cleared attempt) when they do not."""
    with write_session(engine) as session:
        login_limit.forget(session, attempt, name_key)
        target = session.get(User, account.id)
        assert target is not None and target.id is not None
        refusal = None
        key = start_session(session, request, target)
        if current is not None and current.is_guest and current.id != target.id:
            guest = session.get(User, current.id)
            if guest is not None and guest.id is not None:
                held = guest_work.holdings(session, user_id=guest.id)
                work = held.empty or move_work
                if work and not held.empty:
                    mine = guest_work.holdings(session, user_id=target.id)
                    refusal = merge_refusal(held, mine, request.app.state.settings)
                if refusal is None:
                    users.merge_guest(session, guest=guest, account=target, work=work)
        if refusal is not None:
            session.rollback()
            login_limit.forget(session, attempt, name_key)
            session.commit()
            raise MergeRefused(refusal)
        session.commit()
        return key


def _guest_work(engine: Engine, user: User | None) -> str:
    """What the browser's guest would move at login besides progress ("" if nothing)."""
    if user is None or not user.is_guest or user.id is None:
        return ""
    with read_session(engine) as session:
        return guest_work.holdings(session, user_id=user.id).summary()


@router.post("/login", response_class=HTMLResponse, dependencies=[CsrfChecked])
async def login(
    request: Request,
    engine: EngineDep,
    settings: SettingsDep,
    current: OptionalUser,
    username: Text = "",
    password: Text = "",
    next_page: Annotated[FormText, Form(alias="next", max_length=2000)] = "",
    move_guest_work: Annotated[bool, Form()] = False,
) -> Response:
    name = parse_username(username)
    name_key = name.key if name is not None else ""
    attempt = await run_in_threadpool(
        login_limit.open_attempt,
        engine,
        settings,
        name_key,
        client_address(request),
        lifetime(settings),
    )
    if attempt.limited:
        return _form(
            request,
            "pages/login.html",
            error=attempt.refusal(settings),
            username=username,
            next_page=next_page,
            status=429,
        )
    account = await run_in_threadpool(_find_account, engine, name_key) if name else None
    # Unknown names verify the dummy hash: the same work, the same time, the same answer.
    matches = await verify_password(password, account.password_hash if account else None)
    if account is None or not matches:
        return _form(
            request,
            "pages/login.html",
            error=WRONG_CREDENTIALS,
            username=username,
            next_page=next_page,
            status=401,
            guest_work=await run_in_threadpool(_guest_work, engine, current),
        )
    try:
        key = await run_in_threadpool(
            _finish_login, engine, request, attempt, account, current, name_key, move_guest_work
        )
    except MergeRefused as refused:
        return _form(
            request,
            "pages/login.html",
            error=str(refused),
            username=username,
            next_page=next_page,
            status=409,
            guest_work=await run_in_threadpool(_guest_work, engine, current),
        )
    adopted(request, key, account)
    return _landing(next_page)


# --- logout and the account page -------------------------------------------------------------


def _end(engine: Engine, request: Request) -> None:
    with write_session(engine) as session:
        end_session(session, request)
        session.commit()


@router.post("/logout", dependencies=[CsrfChecked])
async def logout(engine: EngineDep, request: Request) -> Response:
    await run_in_threadpool(_end, engine, request)
    ended(request)
    return RedirectResponse("/", status_code=303)


def _session_count(engine: Engine, settings: Settings, user_id: int) -> int:
    with read_session(engine) as session:
        return session_rows.count_user_sessions(
            session, user_id=user_id, now=utcnow(), lifetime=lifetime(settings)
        )


@router.get("/account", response_class=HTMLResponse)
async def account_page(
    request: Request, engine: EngineDep, settings: SettingsDep, user: OptionalUser
) -> Response:
    """The signed-in account: its name, how many browsers are signed in, log out everywhere."""
    if user is None or user.is_guest or user.id is None:
        return RedirectResponse("/login", status_code=303)
    count = await run_in_threadpool(_session_count, engine, settings, user.id)
    context = {"account": user, "sessions": count, "settings": settings}
    return render(request, "pages/account.html", context)


def _end_everywhere(engine: Engine, user_id: int) -> None:
    with write_session(engine) as session:
        session_rows.end_user_sessions(session, user_id=user_id)
        session.commit()


@router.post("/account/logout-everywhere", dependencies=[CsrfChecked])
async def logout_everywhere(request: Request, engine: EngineDep, user: OptionalUser) -> Response:
    """End every session of this account, on every browser (this one included)."""
    if user is not None and user.id is not None and not user.is_guest:
        await run_in_threadpool(_end_everywhere, engine, user.id)
    ended(request)
    return RedirectResponse("/login", status_code=303)
