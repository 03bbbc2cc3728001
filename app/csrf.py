"""CSRF: every state-changing request carries its browser session's token.

The token is an HMAC-SHA256 of the session key under a key derived from SECRET_KEY, so forms
work before any session row exists, and a new session key (login, registration, a visitor
becoming a guest) makes every earlier token useless; the response that changes the key hands
the page its new token in `X-CSRF-Token` (app.sessions), which the page's script puts into its
forms and htmx headers.

- A form sends it in the `csrf_token` field, htmx and API clients in the `X-CSRF-Token` header.
- `CsrfChecked` guards a route: a 403 unless the token matches (`require_csrf`).
- A streamed upload checks it as the file part begins (app.datasets.accept), with
  `token_check`, and raises `CsrfRefused`, so a forged upload never gets a byte written.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from functools import lru_cache

from fastapi import Depends, HTTPException, Request

from app.sessions import browser
from app.settings import Settings

CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
EXPIRED = "This form has expired or did not come from cvprep. Reload the page and try again."
UPLOAD_REFUSED = (
    "This upload did not carry this session's CSRF token (the X-CSRF-Token header, or a "
    "csrf_token field before the file). Reload the page and try again."
)
_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


class CsrfRefused(Exception):
    """The request carried no valid CSRF token (a 403)."""


@lru_cache(maxsize=8)
def _csrf_secret(secret_key: str) -> bytes:
    return hashlib.sha256(b"cvprep.csrf\x00" + secret_key.encode()).digest()


def csrf_for(settings: Settings, key: str) -> str:
    """The CSRF token bound to a session key: HMAC-SHA256 under a key derived from SECRET_KEY,
    43 hex characters."""
    secret = _csrf_secret(settings.secret_key)
    return hmac.new(secret, key.encode(), hashlib.sha256).hexdigest()[:43]


def csrf_token(request: Request) -> str:
    """The token this browser's forms must carry (derived from its current session key)."""
    return csrf_for(request.app.state.settings, browser(request).current_key())


def token_check(request: Request) -> Callable[[str | None], bool]:
    """Whether a token is the one of the session key this request presented (compared in
    constant time; no key presented, no token matches)."""
    presented = browser(request).presented_key
    expected = csrf_for(request.app.state.settings, presented) if presented else None

    def matches(token: str | None) -> bool:
        return bool(expected and token and hmac.compare_digest(expected, token))

    return matches


async def require_csrf(request: Request) -> None:
    """403 unless the `X-CSRF-Token` header or the form's `csrf_token` field carries this
    session's token."""
    submitted = request.headers.get(CSRF_HEADER)
    if submitted is None and request.headers.get("content-type", "").startswith(_FORM_TYPES):
        value = (await request.form()).get(CSRF_FIELD)
        submitted = value if isinstance(value, str) else None
    if not token_check(request)(submitted):
        raise HTTPException(status_code=403, detail=EXPIRED)


CsrfChecked = Depends(require_csrf)
