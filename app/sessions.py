"""Server-side sessions: the cookie carries one signed random key, the database says whose it is.

The cookie's value is `<mark>.<key>`, signed (itsdangerous, HMAC-SHA256, with a timestamp):
`key` is 256 random bits and `mark` says whether a `browser_session` row was made for it
(`s`) or not (`a`, a visitor who has saved nothing). Nothing else is in it: no user id, no
name. The row is found by the key's SHA-256, so a stolen database holds no usable cookie.

- A visitor without a row costs nothing: no database read, no thread (the question-page cache
  relies on it). Their CSRF token (app.csrf) is derived from the key, so forms work before any row exists.
- A row is made with a fresh key at login, at registration and when a visitor becomes a guest
  (their first saved action): a key issued before, copied or planted, is never promoted into
  anyone's session (no fixation). The response that changes the key carries the new CSRF
  token in `X-CSRF-Token`, which the page's script puts into its forms and htmx headers.
- Served over HTTPS (or with COOKIE_SECURE=true) the cookie is `__Host-cvprep_session`: the
  browser accepts it only from this host, Secure, for Path=/, so a sibling subdomain or a plain
  HTTP answer cannot plant one; the unprefixed name is then ignored.
- Logout, "log out everywhere", expiry (idle and absolute) and the user being merged away
  delete rows; a cookie naming a missing row is answered with a fresh anonymous key.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING

import anyio.to_thread
from itsdangerous import BadSignature, TimestampSigner
from sqlalchemy import Engine
from starlette.datastructures import MutableHeaders
from starlette.requests import Request, cookie_parser
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.db import is_database_busy, read_session, write_session
from app.models.common import utcnow
from app.repos import sessions as session_rows
from app.settings import Settings

if TYPE_CHECKING:
    from app.models import User

SESSION_COOKIE = "cvprep_session"
# The name over HTTPS: a `__Host-` cookie can only be set Secure, by this host, for Path=/.
HOST_SESSION_COOKIE = "__Host-" + SESSION_COOKIE
# The response header that hands a page the CSRF token of a key that changed under it
# (app.csrf gives the token; main.py passes it in as `renewed_token`).
CSRF_RENEWED_HEADER = "X-CSRF-Token"
SCOPE_KEY = "cvprep.browser"
ANONYMOUS, STORED = "a", "s"
# A session's last use is written at most this often (the idle expiry counts in days).
TOUCH_AFTER = timedelta(minutes=5)
# Routes that never look at the session: no lookup for them.
UNAUTHENTICATED_PREFIXES = ("/static/", "/assets/", "/healthz")
# Responses that show one person's data: never stored by a browser or proxy cache.
PERSONAL_PREFIXES = (
    "/progress",
    "/practice",
    "/account",
    "/login",
    "/register",
    "/logout",
    "/api/quiz",
    "/api/progress",
)


def new_key() -> str:
    """256 random bits, URL-safe: the secret a session cookie carries."""
    return secrets.token_urlsafe(32)


def key_hash(key: str) -> str:
    """Hex SHA-256 of a session key: what the database stores and looks up."""
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass
class BrowserState:
    """What one request knows about its browser's session; the middleware writes the cookie."""

    presented_key: str | None  # the key of a validly signed cookie sent with the request
    key: str | None  # the key the response leaves the browser with
    stored: bool  # a session row was made for `key`
    user: User | None = None  # the session's user, once looked up (None: no session)
    changed: bool = field(default=False)  # the response must send a new cookie

    def current_key(self) -> str:
        """The browser's key, minted (and sent in a cookie) if it has none yet."""
        if self.key is None:
            self.key, self.stored, self.changed = new_key(), False, True
        return self.key

    def adopt(self, key: str, user: User) -> None:
        """From now on the browser holds `key`, whose session row belongs to `user`."""
        self.key, self.stored, self.user, self.changed = key, True, user, True

    def end(self) -> None:
        """No session any more: a fresh anonymous key (the old one is never used again)."""
        self.key, self.stored, self.user, self.changed = new_key(), False, None, True


def browser(request: Request) -> BrowserState:
    """The request's BrowserState (set by ServerSessionMiddleware)."""
    return request.scope[SCOPE_KEY]


class ServerSessionMiddleware:
    """Reads and verifies the session cookie, looks up the session row, writes the cookie back.

    Pure ASGI. A request whose cookie says a row exists gets one indexed read in a worker
    thread (and, every TOUCH_AFTER, a write of its last use); any other request none.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        engine: Engine,
        settings: Settings,
        renewed_token: Callable[[str], str],
    ) -> None:
        """`renewed_token(key)` is the CSRF token of a new session key (app.csrf.csrf_for),
        sent in CSRF_RENEWED_HEADER with the response that changes the key."""
        self.app = app
        self.engine = engine
        self.settings = settings
        self.renewed_token = renewed_token
        self.signer = TimestampSigner(
            settings.secret_key, salt="cvprep.session", digest_method=hashlib.sha256
        )
        self.lifetime = session_rows.Lifetime(
            idle=timedelta(days=settings.session_idle_days),
            absolute=timedelta(days=settings.session_max_days),
        )

    def _secure(self, scope: Scope) -> bool:
        """Cookies are Secure (and `__Host-` named): COOKIE_SECURE, or unset and HTTPS."""
        secure = self.settings.cookie_secure
        if secure is None:  # unset: Secure whenever the request came over HTTPS
            secure = scope.get("scheme") == "https"
        return secure

    def _read_cookie(self, scope: Scope) -> BrowserState:
        raw = ""
        cookie_name = HOST_SESSION_COOKIE if self._secure(scope) else SESSION_COOKIE
        for name, value in scope.get("headers", []):
            if name == b"cookie":
                raw = cookie_parser(value.decode("latin-1")).get(cookie_name, "")
                break
        if not raw:
            return BrowserState(None, None, False)
        try:
            payload = self.signer.unsign(raw, max_age=int(self.lifetime.absolute.total_seconds()))
        except BadSignature:
            return BrowserState(None, None, False)
        mark, _, key = payload.decode("ascii", "replace").partition(".")
        if mark not in (ANONYMOUS, STORED) or len(key) < 40:
            return BrowserState(None, None, False)
        return BrowserState(key, key, mark == STORED)

    def _lookup(self, key: str) -> User | None:
        now = utcnow()
        with read_session(self.engine) as session:
            found = session_rows.find_active(
                session, key_hash=key_hash(key), now=now, lifetime=self.lifetime
            )
        if found is None:
            return None
        if now - found.last_seen_at > TOUCH_AFTER:
            try:
                with write_session(self.engine) as session:
                    session_rows.touch(session, key_hash=found.key_hash, now=now)
                    session.commit()
            except Exception as exc:  # a busy database: the next request touches it
                if not is_database_busy(exc):
                    raise
        return found.user

    def _cookie(self, state: BrowserState, scope: Scope) -> str:
        assert state.key is not None
        mark = STORED if state.stored else ANONYMOUS
        value = self.signer.sign(f"{mark}.{state.key}").decode("ascii")
        max_age = int(self.lifetime.absolute.total_seconds())
        attributes = f"; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Lax"
        if self._secure(scope):
            return f"{HOST_SESSION_COOKIE}={value}{attributes}; Secure"
        return f"{SESSION_COOKIE}={value}{attributes}"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = self._read_cookie(scope)
        scope[SCOPE_KEY] = state
        path: str = scope["path"]
        if state.stored and state.key and not path.startswith(UNAUTHENTICATED_PREFIXES):
            user = await anyio.to_thread.run_sync(self._lookup, state.key)
            if user is None:
                state.end()
            else:
                state.user = user

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                if state.changed:
                    headers.append("Set-Cookie", self._cookie(state, scope))
                    if state.presented_key and state.key != state.presented_key:
                        assert state.key is not None
                        headers[CSRF_RENEWED_HEADER] = self.renewed_token(state.key)
                personal = state.user is not None or path.startswith(PERSONAL_PREFIXES)
                if personal and "cache-control" not in headers:
                    headers["Cache-Control"] = "no-store"
            await send(message)

        await self.app(scope, receive, send_with_cookie)
