"""The FastAPI application: content loaded and rendered before the first request."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.sessions import SessionMiddleware

from app import __version__
from app.content import load_questions
from app.db import make_engine
from app.migrate import upgrade
from app.security import SecurityHeadersMiddleware
from app.settings import ROOT, Settings, get_settings
from app.views import (
    accounts,
    api_questions,
    api_quiz,
    demos,
    drafts,
    meta,
    practice,
    progress,
    questions,
)
from app.web import templates

API_PREFIXES = ("/api/", "/openapi.json")


def _wants_json(request: Request) -> bool:
    return request.url.path.startswith(API_PREFIXES)


def _error_page(request: Request, status_code: int, messages: list[str]) -> Response:
    context = {"status_code": status_code, "messages": messages}
    return templates.TemplateResponse(request, "pages/error.html", context, status_code=status_code)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if _wants_json(request):
        return JSONResponse(
            {"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers
        )
    return _error_page(request, exc.status_code, [str(exc.detail)])


def _field_messages(exc: RequestValidationError) -> list[str]:
    messages = []
    for error in exc.errors():
        location = [str(part) for part in error["loc"] if part not in ("query", "path", "body")]
        messages.append(f"{'.'.join(location) or 'request'}: {error['msg']}")
    return messages


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    messages = _field_messages(exc)
    if _wants_json(request):
        body = {"detail": "; ".join(messages), "errors": exc.errors()}
        return JSONResponse(_jsonable(body), status_code=422)
    return _error_page(request, 422, messages)


def _jsonable(value: object) -> object:
    # Pydantic puts the original exception in `ctx`; it is not JSON, its message is.
    return jsonable_encoder(value, custom_encoder={Exception: str})


SESSION_COOKIE = "cvprep_session"
SESSION_MAX_AGE = 365 * 24 * 3600


def create_app(settings: Settings | None = None, *, migrate: bool = True) -> FastAPI:
    """Build the app; raises ContentError before serving if any question file is invalid.

    The database is migrated to the latest revision first (`migrate=False` skips it for
    callers that already did, such as a test suite sharing one PostgreSQL database).
    """
    settings = settings or get_settings()
    bank = load_questions(settings.questions_dir)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    if migrate:
        upgrade(settings.sqlalchemy_url)
    engine = make_engine(settings.sqlalchemy_url)

    app = FastAPI(
        title="cvprep",
        version=__version__,
        summary="Image-classification interview questions, practice and runnable demos.",
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.bank = bank
    app.state.engine = engine
    app.add_middleware(
        SessionMiddleware,
        secret_key=settings.secret_key,
        session_cookie=SESSION_COOKIE,
        max_age=SESSION_MAX_AGE,
        same_site="lax",
        https_only=settings.cookie_secure,
    )
    app.add_middleware(SecurityHeadersMiddleware)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.mount("/static", StaticFiles(directory=ROOT / "static"), name="static")
    routers = (
        questions,
        drafts,
        practice,
        progress,
        accounts,
        api_questions,
        api_quiz,
        demos,
        meta,
    )
    for module in routers:
        app.include_router(module.router)
    return app
