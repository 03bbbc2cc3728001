"""Service routes: health check, API docs page, generated stylesheet."""

from __future__ import annotations

from functools import cache
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from app.content.render import pygments_css
from app.web import templates

router = APIRouter(tags=["service"])

# Swagger UI sets inline styles; this page alone may use them (scripts stay same-origin only).
DOCS_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; object-src 'none'; base-uri 'self'; frame-ancestors 'none'"
)


@router.get("/healthz")
def healthz(request: Request) -> dict[str, Any]:
    """200 while the app is up and its content loaded; `jobs` is the job backend's state
    (`ok` false: runs cannot start now, e.g. no live worker or the job queue unreachable).

    A plain def: the Celery backend's check asks Redis (at most a second), off the event loop.
    """
    return {"status": "ok", "jobs": request.app.state.jobs.health()}


@router.get("/docs", include_in_schema=False, response_class=HTMLResponse)
def api_docs(request: Request) -> HTMLResponse:
    response = templates.TemplateResponse(request, "pages/api_docs.html", {})
    response.headers["Content-Security-Policy"] = DOCS_CSP
    return response


@cache
def _highlight_css() -> str:
    return pygments_css()


@router.get("/assets/highlight.css", include_in_schema=False)
def highlight_css() -> Response:
    return Response(
        _highlight_css(),
        media_type="text/css",
        headers={"Cache-Control": "public, max-age=86400"},
    )
