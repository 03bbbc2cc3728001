"""The FastAPI application: content loaded and rendered before the first request."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial

import anyio
import anyio.to_thread
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.staticfiles import StaticFiles
from sqlalchemy import Engine
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.sessions import SessionMiddleware

from app import __version__
from app.auth import GuestLimiter
from app.content import load_questions
from app.csrf import csrf_for
from app.datasets import decoding
from app.db import make_engine
from app.errors import UnexpectedErrorMiddleware, http_error, validation_error
from app.guest_sweep import SWEEP_EVERY_S, sweep_guests
from app.malloc import large_blocks_from_the_kernel
from app.migrate import upgrade
from app.runs.backend import make_backend
from app.security import SecurityHeadersMiddleware
from app.sessions import ServerSessionMiddleware
from app.settings import ROOT, Settings, get_settings
from app.views import (
    accounts,
    api_compare,
    api_datasets,
    api_experiments,
    api_questions,
    api_quiz,
    api_runs,
    compare,
    datasets,
    demos,
    drafts,
    experiments,
    meta,
    mock,
    practice,
    progress,
    questions,
    runs,
)

# The practice round's cookie (ids and grades only, bounded: app.practice.rounds); the
# session cookie itself is app.sessions'.
ROUND_COOKIE = "cvprep_round"
logger = logging.getLogger("cvprep.guests")


async def _sweeping(engine: Engine, settings: Settings) -> None:
    """Sweep guests left behind (app.guest_sweep) now and every SWEEP_EVERY_S; a failed sweep
    (a busy database) is logged and tried again next time."""
    while True:
        try:
            await anyio.to_thread.run_sync(sweep_guests, engine, settings)
        except Exception:
            logger.exception("sweeping guests left behind failed; trying again later")
        await anyio.sleep(SWEEP_EVERY_S)


def create_app(settings: Settings | None = None, *, migrate: bool = True) -> FastAPI:
    """Build the app; raises ContentError before serving if any question file is invalid.

    The database is migrated to the latest revision first (`migrate=False` skips it for
    callers that already did, such as a test suite sharing one PostgreSQL database).
    """
    settings = settings or get_settings()
    # Image buffers from the kernel, not memset under the interpreter lock (app.malloc).
    large_blocks_from_the_kernel()
    bank = load_questions(settings.questions_dir)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    if migrate:
        upgrade(settings.sqlalchemy_url)
    engine = make_engine(
        settings.sqlalchemy_url, busy_timeout_ms=int(settings.database_busy_timeout * 1000)
    )
    jobs = make_backend(settings, engine)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # The run workers live as long as the server: queued runs (also those queued before a
        # restart) start once they are up; a run still training at shutdown ends interrupted.
        jobs.start()
        try:
            async with anyio.create_task_group() as tasks:
                # Guests left behind are deleted now and hourly (a cheap query when none is).
                tasks.start_soon(_sweeping, engine, settings)
                try:
                    yield
                finally:
                    tasks.cancel_scope.cancel()
        finally:
            await anyio.to_thread.run_sync(jobs.stop)
            await anyio.to_thread.run_sync(decoding.shutdown)

    app = FastAPI(
        title="cvprep",
        version=__version__,
        summary="Image-classification interview questions, practice and runnable demos.",
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.bank = bank
    app.state.engine = engine
    app.state.jobs = jobs
    app.state.guests = GuestLimiter(
        settings.guest_max_per_address, settings.guest_window_minutes * 60
    )
    # Outermost last: headers → session → round cookie → unexpected errors → routes, so even an
    # unexpected 500 carries the security headers and the session's cookie.
    app.add_middleware(UnexpectedErrorMiddleware)
    app.add_middleware(
        SessionMiddleware,
        secret_key=settings.secret_key,
        session_cookie=ROUND_COOKIE,
        max_age=None,  # the browser session: a round does not outlive the browser
        same_site="lax",
        https_only=bool(settings.cookie_secure),
    )
    app.add_middleware(
        ServerSessionMiddleware,
        engine=engine,
        settings=settings,
        renewed_token=partial(csrf_for, settings),
    )
    app.add_middleware(SecurityHeadersMiddleware)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.mount("/static", StaticFiles(directory=ROOT / "static"), name="static")
    routers = (
        questions,
        drafts,
        mock,
        practice,
        progress,
        accounts,
        api_questions,
        api_quiz,
        compare,
        experiments,
        runs,
        api_compare,
        api_experiments,
        api_runs,
        api_datasets,
        datasets,
        demos,
        meta,
    )
    for module in routers:
        app.include_router(module.router)
    return app
