"""What the routes ask of runs: launch one, cancel one, delete one. The pages and the JSON API
call these same functions, so a run started from either is checked and queued the same way.
"""

from __future__ import annotations

from sqlalchemy import Engine

from app.db import read_session, write_session
from app.models import Run, User
from app.models.common import utcnow
from app.repos import runs as run_rows
from app.repos.locks import lock_guests, lock_owner
from app.runs.backend import BackendUnavailable, JobBackend
from app.runs.files import remove_run_files
from app.runs.limits import check_guest_queue, check_queue
from app.runs.validate import check_for_user
from app.settings import Settings
from app.worker.training import RunConfig


def launch(
    config: RunConfig,
    *,
    owner: User,
    engine: Engine,
    settings: Settings,
    backend: JobBackend,
) -> Run:
    """Queue a run of `config` for `owner` and hand it to the backend.

    Raises InvalidInput (the field, with the engine's reason or the limit passed) or QueueFull
    (RUN_MAX_QUEUED, or RUN_MAX_QUEUED_GUESTS for a guest); nothing is written then. Raises BackendUnavailable when the backend
    cannot take the run (the job queue is unreachable): the run is then marked failed with
    that message, never left queued. Blocking (reads the file system, may load an
    earlier run's checkpoint): call it from a worker thread.
    """
    assert owner.id is not None
    with read_session(engine) as session:
        check_for_user(config, session, owner_id=owner.id, settings=settings)
    with write_session(engine) as session:
        lock_owner(session, owner.id)
        check_queue(run_rows.count_live(session, owner_id=owner.id), settings)
        if owner.is_guest:
            lock_guests(session)
            check_guest_queue(run_rows.count_live_of_guests(session), 1, settings)
        run = run_rows.create_run(session, owner_id=owner.id, config=config.to_dict(), now=utcnow())
        session.commit()
    assert run.id is not None
    try:
        backend.submit(run.id)
    except BackendUnavailable as error:
        with write_session(engine) as session:
            run_rows.fail_queued(session, run_id=run.id, reason=str(error), now=utcnow())
        raise
    return run


def cancel(run: Run, *, engine: Engine, backend: JobBackend) -> str:
    """Cancel a queued run now or ask a running one to stop; returns its status afterwards.

    An ended run is left as it is (its status is returned).
    """
    assert run.id is not None
    with write_session(engine) as session:
        status = run_rows.request_cancel(session, run=run, now=utcnow())
    backend.cancel(run.id)
    return status


def delete(run: Run, *, engine: Engine, settings: Settings) -> bool:
    """Delete an ended run and its folder; False (nothing done) while it is queued or running."""
    assert run.id is not None
    with write_session(engine) as session:
        deleted = run_rows.delete_run(session, run=run)
    if deleted:
        remove_run_files(settings, run.id)
    return deleted


def owned_run(engine: Engine, *, run_id: int, owner: User | None) -> Run | None:
    """The run if it is `owner`'s; None for a missing run and for another user's alike."""
    if owner is None or owner.id is None:
        return None
    with read_session(engine) as session:
        return run_rows.get_run(session, run_id=run_id, owner_id=owner.id)
