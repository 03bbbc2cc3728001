"""A launch refused on a question's page, carried back to that page in its address.

The refusal (the preset and the reason, both the server's own words) travels signed
(itsdangerous, HMAC with SECRET_KEY), so the page shows only messages this server wrote;
the page is reached by a redirect (303), so reloading it shows the same message, not a
resubmitted form.
"""

from __future__ import annotations

import re

from itsdangerous import BadSignature, URLSafeSerializer

from app.settings import Settings

SALT = "cvprep.launch-refusal"
BACK = re.compile(r"/questions/[a-z0-9-]{1,80}", re.ASCII)


def _serializer(settings: Settings) -> URLSafeSerializer:
    return URLSafeSerializer(settings.secret_key, salt=SALT)


def back_path(value: object) -> str | None:
    """`value` if it is the path of a question's page (the only place a refusal goes back to)."""
    return value if isinstance(value, str) and BACK.fullmatch(value) else None


def sign(settings: Settings, preset: str, status: int, message: str) -> str:
    """The refusal as a URL-safe signed token."""
    return _serializer(settings).dumps([preset, status, message[:400]])


def read(settings: Settings, token: str | None) -> tuple[str, int, str] | None:
    """(preset, HTTP status, message) from a token; None for a missing or forged one."""
    if not token:
        return None
    try:
        preset, status, message = _serializer(settings).loads(token)
    except (BadSignature, ValueError, TypeError):
        return None
    if not (isinstance(preset, str) and isinstance(status, int) and isinstance(message, str)):
        return None
    return preset, status, message
