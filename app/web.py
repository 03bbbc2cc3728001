"""Templates and the page-or-fragment decision shared by every HTML view."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode, urlsplit

from fastapi import Request
from fastapi.templating import Jinja2Templates
from markupsafe import Markup
from starlette.responses import HTMLResponse

from app import __version__
from app.auth import signed_in_name
from app.csrf import CSRF_FIELD, csrf_token
from app.demos.present import short_count
from app.settings import ROOT

templates = Jinja2Templates(directory=ROOT / "templates")
# Templates are read once; `cvprep serve --reload` restarts the server when one changes.
templates.env.auto_reload = False
templates.env.globals["version"] = __version__
templates.env.globals["csrf_token"] = csrf_token
templates.env.globals["csrf_field"] = CSRF_FIELD
templates.env.globals["signed_in_name"] = signed_in_name
templates.env.filters["short_count"] = short_count

TIME_STYLES = {"datetime": "%Y-%m-%d %H:%M", "time": "%H:%M:%S"}


def local_time(moment: datetime, style: str = "datetime") -> Markup:
    """`<time>` for a moment: UTC text that static/js/app.js rewrites in the reader's own
    time zone (the UTC text stays without JavaScript). `style`: "datetime" or "time"."""
    utc = moment.astimezone(UTC)
    text = f"{utc.strftime(TIME_STYLES[style])} UTC"
    return Markup('<time datetime="{}" data-local="{}">{}</time>').format(
        utc.isoformat(timespec="seconds").replace("+00:00", "Z"), style, text
    )


templates.env.globals["local_time"] = local_time

# Pages a login must not return to: they would loop, or undo what was just done.
NO_RETURN = ("/login", "/register", "/logout", "/account/logout-everywhere")


def safe_next(value: str | None) -> str | None:
    """`value` if it is a path on this site to return to after logging in, else None.

    Only a local path is accepted: it starts with one "/" (not "//" or "/\\", which browsers
    read as another host), has no scheme or host, no backslash, no control character, and is
    not a page that logs in or out. Anything else could send the learner to another site.
    """
    if not value or len(value) > 2000 or not value.startswith("/"):
        return None
    if value.startswith(("//", "/\\")) or "\\" in value:
        return None
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        return None
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or not parts.path.startswith("/"):
        return None
    if parts.path.rstrip("/") in NO_RETURN:
        return None
    return value


def return_query(request: Request) -> str:
    """`?next=<this page's path>` for links to the login and register pages ("" where it would
    loop). The path only: pages served from the shared cache must not carry one visitor's
    query string to the next."""
    if request.url.path in ("/login", "/register"):
        kept = safe_next(request.query_params.get("next"))
        return f"?{urlencode({'next': kept})}" if kept else ""
    here = request.url.path
    return f"?{urlencode({'next': here})}" if safe_next(here) else ""


templates.env.globals["return_query"] = return_query


def is_fragment_request(request: Request) -> bool:
    """True for an htmx request that swaps part of a page (not a history restore)."""
    return (
        request.headers.get("HX-Request") == "true"
        and request.headers.get("HX-History-Restore-Request") != "true"
    )


def as_context(context: Any) -> dict[str, Any]:
    """A template context from a mapping or from a page's dataclass (its fields, one level:
    the values stay as they are, so a template reads `question.title` either way)."""
    if dataclasses.is_dataclass(context) and not isinstance(context, type):
        return {field.name: getattr(context, field.name) for field in dataclasses.fields(context)}
    if isinstance(context, Mapping):
        return dict(context)
    raise TypeError(f"a template context is a mapping or a dataclass, not {type(context)}")


def render(
    request: Request,
    page: str,
    context: Any,
    *,
    fragment: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    """Render `page`, or `fragment` for an htmx request; one URL serves both (Vary: HX-Request).

    `context` is a mapping or a page's dataclass (the bigger pages have one: its fields are
    the names the template reads). Raises TypeError for anything else."""
    name = fragment if fragment and is_fragment_request(request) else page
    response = templates.TemplateResponse(
        request, name, as_context(context), status_code=status_code
    )
    response.headers["Vary"] = "HX-Request"
    return response


_TOKEN_SLOT = "\x00csrf-token\x00"


def render_shared(
    request: Request,
    key: tuple,
    page: str,
    context: Any,
    *,
    fragment: str | None = None,
) -> HTMLResponse:
    """A page that is the same for every visitor without an account but for the CSRF token.

    Rendered once per process and `key` (keep the keys finite: no free text in them); each
    response gets the visitor's own token put back in.
    """
    cache: dict[tuple, str] = request.app.state.__dict__.setdefault("shared_pages", {})
    token = csrf_token(request)
    full_key = (*key, is_fragment_request(request))
    html = cache.get(full_key)
    if html is None:
        response = render(request, page, context, fragment=fragment)
        html = bytes(response.body).decode().replace(token, _TOKEN_SLOT)
        cache[full_key] = html
    return HTMLResponse(html.replace(_TOKEN_SLOT, token), headers={"Vary": "HX-Request"})
