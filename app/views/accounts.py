"""Register, log in, log out. A guest's progress moves into the account."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from app.auth import (
    CsrfChecked,
    OptionalUserToChange,
    hash_password,
    log_in,
    log_out,
    verify_password,
)
from app.db import WriteSessionDep
from app.deps import SettingsDep
from app.repos import users
from app.web import render

router = APIRouter(tags=["accounts"], include_in_schema=False)

USERNAME = re.compile(r"^[A-Za-z0-9_.-]{3,40}$")
PASSWORD_MIN, PASSWORD_MAX = 8, 256
WRONG_CREDENTIALS = "Wrong username or password."

Text = Annotated[str, Form(max_length=400)]


def _form(
    request: Request, page: str, *, error: str = "", username: str = "", status: int = 200
) -> HTMLResponse:
    return render(request, page, {"error": error, "username": username}, status_code=status)


@router.get("/register", response_class=HTMLResponse)
def register_form(request: Request) -> HTMLResponse:
    return _form(request, "pages/register.html")


@router.post("/register", response_class=HTMLResponse, dependencies=[CsrfChecked])
def register(
    request: Request,
    session: WriteSessionDep,
    user: OptionalUserToChange,
    username: Text = "",
    password: Text = "",
) -> Response:
    username = username.strip()
    error = ""
    if not USERNAME.match(username):
        error = "username: use 3 to 40 letters, digits, '.', '_' or '-'."
    elif not PASSWORD_MIN <= len(password) <= PASSWORD_MAX:
        error = f"password: use at least {PASSWORD_MIN} characters."
    elif users.find_by_username(session, username=username) is not None:
        error = "username: that name is taken; choose another."
    elif user is not None and not user.is_guest:
        error = "You are already logged in. Log out first to register another account."
    if error:
        return _form(request, "pages/register.html", error=error, username=username, status=422)
    # The guest row (with everything practised so far) becomes the account.
    account = user if user is not None else users.create_guest(session)
    users.register(session, user=account, username=username, password_hash=hash_password(password))
    session.commit()
    log_in(request, account)
    return RedirectResponse("/progress", status_code=303)


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request) -> HTMLResponse:
    return _form(request, "pages/login.html")


@router.post("/login", response_class=HTMLResponse, dependencies=[CsrfChecked])
def login(
    request: Request,
    session: WriteSessionDep,
    settings: SettingsDep,
    current: OptionalUserToChange,
    username: Text = "",
    password: Text = "",
) -> Response:
    username = username.strip()
    window = timedelta(minutes=settings.login_window_minutes)
    failures = users.recent_failed_logins(session, username=username, window=window)
    if failures >= settings.login_max_failures:
        message = f"Too many failed attempts for this name; try again in {settings.login_window_minutes} minutes."
        return _form(request, "pages/login.html", error=message, username=username, status=429)
    account = users.find_by_username(session, username=username)
    if account is None or not verify_password(password, account.password_hash):
        users.record_failed_login(session, username=username[:40])
        session.commit()
        return _form(
            request, "pages/login.html", error=WRONG_CREDENTIALS, username=username, status=401
        )
    users.clear_failed_logins(session, username=username)
    if current is not None and current.is_guest and current.id != account.id:
        users.merge_guest(session, guest=current, account=account)
    session.commit()
    log_in(request, account)
    return RedirectResponse("/progress", status_code=303)


@router.post("/logout", dependencies=[CsrfChecked])
def logout(request: Request) -> Response:
    log_out(request)
    return RedirectResponse("/", status_code=303)
