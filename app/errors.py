"""Errors as clients see them: JSON `{"detail": …}` under /api, the error page elsewhere.

- HTTPException and request validation errors get the same two shapes (handlers below).
- An unexpected exception is caught inside the security-headers and session middleware, so
  its 500 still carries those headers, is JSON under /api, keeps the connection open, and
  names an error id that is also in the log beside the traceback.
- A write that waited out the database's busy timeout (SQLite's one writer) is a 503 with
  `Retry-After`, not a 500: the server is overloaded, not broken.
"""

from __future__ import annotations

import json
import logging
import secrets
from typing import Any

from fastapi import Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.db import BUSY_RETRY_AFTER_S, is_database_busy
from app.web import templates

logger = logging.getLogger("cvprep.errors")

API_PREFIXES = ("/api/", "/openapi.json")
# FastAPI's words for a body it could not decode; the client is told what to fix instead.
_UNPARSABLE_BODY = "There was an error parsing the body"


class ErrorJSONResponse(JSONResponse):
    """JSON with every non-ASCII character escaped: an error that echoes the input stays
    sendable even when the input held a lone surrogate (valid in JSON, not in UTF-8)."""

    def render(self, content: Any) -> bytes:
        return json.dumps(
            content, ensure_ascii=True, allow_nan=False, separators=(",", ":")
        ).encode()


class ErrorBody(BaseModel):
    """Every 4xx and 5xx of the JSON API."""

    detail: str
    errors: list[dict[str, Any]] | None = None  # pydantic's list, for a validation error


# The documented error answers of a JSON route (add 404/409/415 where a route gives them).
API_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "The body is not valid JSON", "model": ErrorBody},
    422: {
        "description": "Invalid input; `detail` starts with the field's name",
        "model": ErrorBody,
    },
}


def wants_json(request: Request) -> bool:
    return request.url.path.startswith(API_PREFIXES)


def error_page(request: Request, status_code: int, messages: list[str]) -> Response:
    context = {"status_code": status_code, "messages": messages}
    return templates.TemplateResponse(request, "pages/error.html", context, status_code=status_code)


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    detail = str(exc.detail)
    if exc.status_code == 400 and detail == _UNPARSABLE_BODY:
        detail = "body: not valid JSON (send UTF-8 JSON as application/json)"
    if wants_json(request):
        return ErrorJSONResponse(
            {"detail": detail}, status_code=exc.status_code, headers=exc.headers
        )
    response = error_page(request, exc.status_code, [detail])
    for name, value in (exc.headers or {}).items():
        response.headers[name] = value
    return response


def field_messages(exc: RequestValidationError) -> list[str]:
    """One "field: message" line per error, the way the forms and the API both show them."""
    messages = []
    for error in exc.errors():
        location = [str(part) for part in error["loc"] if part not in ("query", "path", "body")]
        message = str(error["msg"]).removeprefix("Value error, ")
        messages.append(f"{'.'.join(location) or 'request'}: {message}")
    return messages


async def validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    messages = field_messages(exc)
    if wants_json(request):
        body = {"detail": "; ".join(messages), "errors": exc.errors()}
        return ErrorJSONResponse(_jsonable(body), status_code=422)
    return error_page(request, 422, messages)


def _jsonable(value: object) -> object:
    # Pydantic puts the original exception in `ctx`, and the rejected input in `input`: neither
    # need be JSON (a lone surrogate, bytes); their text is.
    return jsonable_encoder(
        value, custom_encoder={Exception: str, bytes: lambda b: b.decode("utf-8", "replace")}
    )


class UnexpectedErrorMiddleware:
    """Turns an exception no handler took into a 500 the client can read, logged with an id.

    If the response had already started there is nothing left to send: the exception goes on
    to the server, which closes that connection.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_tracking(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, send_tracking)
        except Exception as exc:
            if started:
                raise
            if is_database_busy(exc):
                logger.warning("database busy on %s %s", scope["method"], scope["path"])
                await _busy(Request(scope, receive))(scope, receive, send)
                return
            error_id = secrets.token_hex(6)
            logger.exception(
                "unexpected error %s on %s %s", error_id, scope["method"], scope["path"]
            )
            response = _unexpected(Request(scope, receive), error_id)
            await response(scope, receive, send)


def _busy(request: Request) -> Response:
    text = "The server is busy saving other work; try again in a few seconds."
    headers = {"Retry-After": str(BUSY_RETRY_AFTER_S), "Cache-Control": "no-store"}
    if wants_json(request):
        return ErrorJSONResponse({"detail": text}, status_code=503, headers=headers)
    response = error_page(request, 503, [text])
    response.headers.update(headers)
    return response


def _unexpected(request: Request, error_id: str) -> Response:
    text = f"Something went wrong on our side (error id {error_id}). Please try again."
    headers = {"X-Error-Id": error_id, "Cache-Control": "no-store"}
    if wants_json(request):
        return ErrorJSONResponse({"detail": text}, status_code=500, headers=headers)
    try:
        response = error_page(request, 500, [text])
    except Exception:  # the page itself failed: plain HTML, still with the id
        logger.exception("the error page failed for error %s", error_id)
        response = HTMLResponse(f"<!doctype html><title>500</title><p>{text}</p>", 500)
    response.headers.update(headers)
    return response
