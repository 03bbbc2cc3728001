"""Templates and the page-or-fragment decision shared by every HTML view."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.templating import Jinja2Templates
from starlette.responses import HTMLResponse

from app import __version__
from app.auth import CSRF_FIELD, csrf_token, signed_in_name
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


def is_fragment_request(request: Request) -> bool:
    """True for an htmx request that swaps part of a page (not a history restore)."""
    return (
        request.headers.get("HX-Request") == "true"
        and request.headers.get("HX-History-Restore-Request") != "true"
    )


def render(
    request: Request,
    page: str,
    context: dict[str, Any],
    *,
    fragment: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    """Render `page`, or `fragment` for an htmx request; one URL serves both (Vary: HX-Request)."""
    name = fragment if fragment and is_fragment_request(request) else page
    response = templates.TemplateResponse(request, name, context, status_code=status_code)
    response.headers["Vary"] = "HX-Request"
    return response


_TOKEN_SLOT = "\x00csrf-token\x00"


def render_shared(
    request: Request,
    key: tuple,
    page: str,
    context: dict[str, Any],
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
