"""The one narrow interface between the web side and whatever trains runs.

A route never trains and never talks to a worker: it writes a queued row, then calls
`submit(run_id)`; a cancel sets the row's flag, then calls `cancel(run_id)`. What happened is
learnt from the database (the row's status, progress, metrics and error), which every backend
keeps up to date through `app.runs.execute.execute_run`. A backend only has to get a claimed
run executed somewhere and say whether it can (`health`).

`make_backend` picks the implementation (JOBS_BACKEND): the local one (`app.runs.local`) is the
default, worker processes started with the server; `app.runs.celery_backend` sends runs to
Celery workers over Redis. The routes and the engine are the same for both.
"""

from __future__ import annotations

from typing import Any, Protocol

from sqlalchemy import Engine

from app.settings import Settings


class BackendUnavailable(RuntimeError):
    """`submit` could not hand the run over (the queue is unreachable); the message says why."""


class JobBackend(Protocol):
    name: str

    def start(self) -> None:
        """Begin accepting work (start workers, connect); called once at server start."""

    def stop(self) -> None:
        """Stop cleanly at server shutdown; a run in progress ends as `interrupted`."""

    def submit(self, run_id: int) -> None:
        """The queued row `run_id` is committed: get it trained. Must not block for long;
        raises BackendUnavailable when the run cannot be handed over."""

    def cancel(self, run_id: int) -> None:
        """The row's cancel flag is set: make the worker holding it notice soon. Must not block."""

    def health(self) -> dict[str, Any]:
        """JSON-able state for people and probes: at least `backend` and `ok`."""


def make_backend(settings: Settings, engine: Engine) -> JobBackend:
    """The configured backend (not started yet)."""
    if settings.jobs_backend == "celery":
        from app.runs.celery_backend import CeleryBackend

        return CeleryBackend(settings, engine)
    from app.runs.local import LocalBackend

    return LocalBackend(settings, engine)
