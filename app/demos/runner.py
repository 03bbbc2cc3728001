"""Runs worker functions off the event loop, at most `DEMO_THREADS` at a time."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import ParamSpec, TypeVar

import anyio
from fastapi import FastAPI, Request

from app.worker.runtime import configure_threads

P = ParamSpec("P")
T = TypeVar("T")


def demo_limiter(app: FastAPI) -> anyio.CapacityLimiter:
    """The app's limiter, made on first use (it needs a running event loop)."""
    limiter: anyio.CapacityLimiter | None = getattr(app.state, "demo_limiter", None)
    if limiter is None:
        threads = app.state.settings.demo_threads
        configure_threads(threads)
        limiter = anyio.CapacityLimiter(threads)
        app.state.demo_limiter = limiter
    return limiter


async def run_demo(request: Request, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """`fn(*args, **kwargs)` in a worker thread; requests beyond DEMO_THREADS wait their turn."""
    return await anyio.to_thread.run_sync(
        partial(fn, *args, **kwargs), limiter=demo_limiter(request.app)
    )
