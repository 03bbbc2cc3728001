"""Runs on a real `cvprep worker` fed as the web process would feed it (a queued row, then
its id through the real Redis), each test on a PostgreSQL database of its own: no server's
heartbeat sweeper ends these runs, so what is seen is the worker's doing alone."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy

from app.db import make_engine, write_session
from app.migrate import upgrade
from app.models.common import utcnow
from app.repos import runs as run_rows
from app.repos import users
from app.runs.celery_app import TASK_NAME, make_celery
from app.settings import Settings
from app.worker.training import RunConfig
from tests.test_runs_celery import forget_queue, start_worker, stop_worker
from tests.test_runs_worker import LONG, TINY


@contextmanager
def fresh_database(postgres_url: str, *, create: bool = True) -> Iterator[tuple[str, Callable]]:
    """A database of its own on the test PostgreSQL (no other server's sweeper sees its runs):
    (its URL, a function that creates and migrates it), dropped on exit."""
    admin = sqlalchemy.create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    name = f"cvprep_own_{os.getpid()}_{time.monotonic_ns()}"
    url = admin.url.set(database=name).render_as_string(hide_password=False)

    def make() -> None:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
        upgrade(url)

    if create:
        make()
    try:
        yield url, make
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def test_a_run_that_kills_its_worker_every_time_ends_failed_after_the_attempts(
    tmp_path: Path, postgres_url: str, redis_url: str
) -> None:
    """RUN_MAX_ATTEMPTS=2: the first death starts the run again from scratch, the second ends
    it failed with the count; nothing trains it a third time. The run is queued and sent as
    the web process would (a row, then its id through Redis)."""
    with fresh_database(postgres_url) as (url, _):
        attempts_on(url, tmp_path, redis_url)


def attempts_on(url: str, tmp_path: Path, redis_url: str) -> None:
    env = {
        "DATA_DIR": str(tmp_path / "data"),
        "DATABASE_URL": url,
        "REDIS_URL": redis_url,
        "CELERY_QUEUE": f"cvprep-test-attempts-{os.getpid()}-{int(time.time())}",
        "RUN_THREADS": "1",
        "RUN_MAX_ATTEMPTS": "2",
    }
    engine = make_engine(url)
    with write_session(engine) as session:
        owner = users.create_guest(session)
        assert owner.id is not None
        config = RunConfig.from_dict(LONG).to_dict()
        run_id = run_rows.create_run(session, owner_id=owner.id, config=config, now=utcnow()).id
        session.commit()
    assert run_id is not None

    def state() -> tuple[str, int, int, str | None, str | None]:
        with engine.connect() as connection:
            found = connection.exec_driver_sql(
                "SELECT status, attempt, step, worker_id, error FROM run WHERE id = %s", (run_id,)
            ).one()
        return found[0], found[1], found[2], found[3], found[4]

    def wait_until(done, timeout: float = 120) -> tuple:
        deadline = time.monotonic() + timeout
        while not done(now := state()):
            assert time.monotonic() < deadline, now
            time.sleep(0.2)
        return now

    worker = start_worker(env, tmp_path / "worker.log")
    celery = make_celery(Settings(**env))
    try:
        celery.send_task(TASK_NAME, args=[run_id], queue=env["CELERY_QUEUE"])
        for attempt in (1, 2):
            status, _, _, holder, _ = wait_until(
                lambda s, a=attempt: s[0] == "running" and s[1] == a and s[2] >= 2
            )
            os.kill(int(holder.rsplit(":", 1)[1]), signal.SIGKILL)
        status, attempts, _, _, error = wait_until(lambda s: s[0] != "running")
        assert (status, attempts) == ("failed", 2)
        assert "died in each of its 2 attempts (RUN_MAX_ATTEMPTS=2)" in error
        time.sleep(3)
        assert state()[:2] == ("failed", 2)
        assert worker.poll() is None
    finally:
        stop_worker(worker)
        celery.close()
        forget_queue(redis_url, env["CELERY_QUEUE"])
        engine.dispose()


def test_a_delivery_that_meets_no_database_is_tried_again_not_dropped(
    tmp_path: Path, postgres_url: str, redis_url: str
) -> None:
    """The run's only message must survive a database that is not there yet: the worker
    retries, and once the database and the queued row exist the run trains."""
    with fresh_database(postgres_url, create=False) as (url, create):
        late_database(url, create, tmp_path, redis_url)


def late_database(url: str, create: Callable, tmp_path: Path, redis_url: str) -> None:
    env = {
        "DATA_DIR": str(tmp_path / "data"),
        "DATABASE_URL": url,
        "REDIS_URL": redis_url,
        "CELERY_QUEUE": f"cvprep-test-late-{os.getpid()}-{int(time.time())}",
        "RUN_THREADS": "1",
    }
    log = tmp_path / "worker.log"
    worker = start_worker(env, log)
    celery = make_celery(Settings(**env))
    engine = None
    try:
        celery.send_task(TASK_NAME, args=[1], queue=env["CELERY_QUEUE"])
        deadline = time.monotonic() + 90
        while "run 1: database error, retried" not in log.read_text():
            assert time.monotonic() < deadline, log.read_text()[-2000:]
            time.sleep(0.3)
        create()
        engine = make_engine(url)
        with write_session(engine) as session:
            owner = users.create_guest(session)
            assert owner.id is not None
            config = RunConfig.from_dict(TINY).to_dict()
            run = run_rows.create_run(session, owner_id=owner.id, config=config, now=utcnow())
            session.commit()
        assert run.id == 1
        deadline = time.monotonic() + 120
        while True:
            with engine.connect() as connection:
                status = connection.exec_driver_sql("SELECT status FROM run WHERE id = 1").scalar()
            if status not in ("queued", "running"):
                break
            assert time.monotonic() < deadline, status
            time.sleep(0.3)
        assert status == "succeeded"
    finally:
        stop_worker(worker)
        celery.close()
        forget_queue(redis_url, env["CELERY_QUEUE"])
        if engine is not None:
            engine.dispose()
