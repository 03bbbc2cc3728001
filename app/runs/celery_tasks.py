"""What a Celery worker does with a delivered run id: the row decides, never the message.

A message may arrive for a run that was cancelled while queued, that another worker trains,
that a dead worker left behind, or twice. `decide` reads and claims the row in one write
transaction and answers one of:

- RUN: this worker claimed the run (queued → running, `attempt` + 1): train it;
- SKIP: nothing to do (the run is gone, already ended, or trained by a live worker);
- WAIT: not now, offer it again in `WAIT_S` seconds (not counted as an attempt): the owner
  already has RUN_MAX_RUNNING_PER_USER runs training (fair share), the claim said "not yet"
  (the row is still queued, e.g. it waits for another run to end), or the run is held by a
  worker on another machine whose heartbeat is still fresh (the message came back because
  a worker lost it: look again until that worker is alive or dead for sure).

A run held by a worker that is provably dead (its process is gone on this machine, or its
heartbeat is older than RUN_HEARTBEAT_TIMEOUT) is a re-delivery after a crash: below
RUN_MAX_ATTEMPTS it is started again from scratch (visible: `attempt` goes up); at the limit it
ends `interrupted` (RUN_MAX_ATTEMPTS=1, the default: as with the local backend) or `failed`
with the number of attempts, so a run that kills its worker every time is not retried forever.
A run the heartbeat sweeper already marked `interrupted` has ended and is never trained again
(so on another machine's death the sweeper may end it before a further attempt starts).

`run` is the Celery task (`celery_app.TASK_NAME`, on the worker's app `celery_app.celery`):
each pool child of `cvprep worker` makes its database engine and imports torch when it
starts (`worker_process_init`), with the settings `configure` left in the main process
before the fork.
"""

from __future__ import annotations

import logging
import os
import socket
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from celery import Celery, Task, signals
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, col, select

from app.db import write_session
from app.models import Run
from app.models.common import utcnow
from app.models.runs import END_STATUSES, FAILED, INTERRUPTED, QUEUED, RUNNING
from app.repos import runs as run_rows
from app.repos.locks import lock_owner
from app.runs.celery_app import TASK_NAME, celery, celery_config
from app.settings import Settings

logger = logging.getLogger("cvprep.runs")

RUN, SKIP, WAIT = "run", "skip", "wait"
WAIT_S = 3.0  # a run that may not start yet is offered again after this many seconds
DB_RETRY_S = 10.0  # a delivery that met a database error is tried again after this long …
DB_RETRIES = 60  # … this many times (10 minutes), then Celery records the task failed


def pid_alive(pid: int) -> bool:
    """Whether process `pid` of this machine exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc: existence is all we can tell
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def _on_this_machine(row: Run) -> bool:
    host, _, pid = (row.worker_id or "").rpartition(":")
    return host == socket.gethostname() and pid.isdigit()


def holder_alive(row: Run, *, settings: Settings, now: datetime) -> bool:
    """Whether the worker holding a running row may still be training it.

    On this machine the holder's process is looked up (an exact answer at once); elsewhere
    the heartbeat decides: none for RUN_HEARTBEAT_TIMEOUT seconds means dead.
    """
    if _on_this_machine(row):
        return pid_alive(int((row.worker_id or "").rpartition(":")[2]))
    beat = row.heartbeat_at or row.started_at
    return beat is not None and now - beat < timedelta(seconds=settings.run_heartbeat_timeout)


def _after_death(
    session: Session, row: Run, *, settings: Settings, worker_id: str, now: datetime
) -> tuple[str, str]:
    assert row.id is not None and row.worker_id is not None
    limit, attempts = settings.run_max_attempts, row.attempt
    if attempts < limit:
        # (The UPDATE also refreshes `row` in the session: read the count before it.)
        taken = run_rows.take_over(
            session, run_id=row.id, dead_worker_id=row.worker_id, worker_id=worker_id, now=now
        )
        if taken:
            return RUN, f"attempt {attempts + 1} of {limit}: the previous worker died"
        return SKIP, "another worker took it over"
    if limit == 1:
        status, reason = (
            INTERRUPTED,
            (
                "the worker process training it died (killed or out of memory); "
                "start the run again to redo it"
            ),
        )
    else:
        status, reason = (
            FAILED,
            (
                f"the worker process training it died in each of its {attempts} attempts "
                f"(RUN_MAX_ATTEMPTS={limit}); the run may need more memory than a worker has"
            ),
        )
    run_rows.finish(
        session,
        run_id=row.id,
        worker_id=row.worker_id,
        status=status,
        error=reason,
        values={},
        now=now,
    )
    return SKIP, f"{status}: its worker died"


def decide(
    run_id: int, *, engine: Engine, settings: Settings, worker_id: str, now: datetime | None = None
) -> tuple[str, str]:
    """(RUN | SKIP | WAIT, why) for a delivered `run_id`; RUN means `worker_id` now holds it.

    Database errors propagate (the message is then retried by Celery's own failure path).
    """
    now = now or utcnow()
    with write_session(engine) as session:
        row = run_rows.run_by_id(session, run_id=run_id)
        if row is None:
            return SKIP, "no such run (deleted)"
        if row.status in END_STATUSES:
            return SKIP, f"already {row.status}"
        if row.status == RUNNING:
            if not holder_alive(row, settings=settings, now=now):
                return _after_death(session, row, settings=settings, worker_id=worker_id, now=now)
            if _on_this_machine(row):
                return SKIP, f"running on {row.worker_id}"
            # Its holder elsewhere looks alive by its heartbeat. A message comes back only
            # when a worker lost it, so look again until the heartbeat says for sure.
            return WAIT, f"running on {row.worker_id}, which may have died"
        lock_owner(session, row.owner_id)
        running = run_rows.count_running(session, owner_id=row.owner_id)
        if running >= settings.run_max_running_per_user:
            session.rollback()
            return WAIT, f"its owner has {running} runs training (RUN_MAX_RUNNING_PER_USER)"
        claimed = run_rows.claim(session, run_id=run_id, worker_id=worker_id, now=now)
    if claimed:
        return RUN, "claimed"
    # Not claimed: if it is still queued, the claim said "not yet"; ask again later.
    with write_session(engine) as session:
        status = session.exec(select(Run.status).where(col(Run.id) == run_id)).one_or_none()
    if status == QUEUED:
        return WAIT, "not ready to start yet"
    return SKIP, f"taken meanwhile ({status or 'deleted'})"


def run_delivered(
    run_id: int,
    *,
    engine: Engine,
    settings: Settings,
    worker_id: str,
    num_threads: int | None = None,
) -> tuple[str, str]:
    """Decide, and train the run if this worker claimed it; (RUN | SKIP | WAIT, what happened)."""
    from app.runs.execute import execute_run  # imports torch: only ever in a pool child

    verdict, why = decide(run_id, engine=engine, settings=settings, worker_id=worker_id)
    if verdict != RUN:
        logger.info("run %s: %s (%s)", run_id, verdict, why)
        return verdict, why
    logger.info("%s took run %s (%s)", worker_id, run_id, why)
    status = execute_run(
        run_id, engine=engine, settings=settings, worker_id=worker_id, num_threads=num_threads
    )
    return RUN, f"ended {status}"


class _Child:
    """What a pool child trains with: `settings` and `threads`, set by `configure` in the
    worker's main process and inherited through the fork, and the database engine, made in
    the child after the fork (pooled connections must never cross a fork)."""

    settings: Settings | None = None
    threads: int = 1
    engine: Engine | None = None


def configure(settings: Settings, *, threads: int) -> Celery:
    """The worker's Celery app, configured from `settings`, whose pool children train with
    `threads` torch threads each. Call it in the worker's main process before starting it."""
    celery.conf.update(celery_config(settings))
    _Child.settings, _Child.threads = settings, threads
    return celery


@celery.task(name=TASK_NAME, bind=True, acks_late=True)
def run(task: Task, run_id: int) -> str:
    """Decide on a delivered run id and train the run if this child claimed it.

    A WAIT sends the message again after WAIT_S seconds (not an attempt: the row's count is
    unchanged); a database error before the claim sends it again after DB_RETRY_S seconds, at
    most DB_RETRIES times, since the run is still queued and this is its only message.
    """
    from app.runs.local_worker import worker_id_for

    if _Child.settings is None or _Child.engine is None:
        raise RuntimeError("the worker's Celery app was started without configure()")
    try:
        verdict, why = run_delivered(
            int(run_id),
            engine=_Child.engine,
            settings=_Child.settings,
            worker_id=worker_id_for(os.getpid()),
            num_threads=_Child.threads,
        )
    except SQLAlchemyError as error:
        logger.warning("run %s: database error, retried in %g s: %s", run_id, DB_RETRY_S, error)
        raise task.retry(countdown=DB_RETRY_S, max_retries=DB_RETRIES) from error
    if verdict == WAIT:
        raise task.retry(countdown=WAIT_S, max_retries=None)
    return f"{verdict}: {why}"


@signals.worker_process_init.connect(weak=False)
def _child_ready(**_: Any) -> None:
    if _Child.settings is None:
        return  # a Celery worker that is not `cvprep worker`
    import torch  # after the fork, before any run: the next run starts warm

    from app.db import make_engine

    torch.set_num_threads(_Child.threads)
    _Child.engine = make_engine(_Child.settings.sqlalchemy_url)
    import app.runs.execute  # noqa: F401  (the engine and its imports, loaded once)


@signals.worker_process_shutdown.connect(weak=False)
def _child_done(**_: Any) -> None:
    if _Child.engine is not None:
        _Child.engine.dispose()
