"""Runs under load from one client: fair share in the local backend's claim (as Celery's
workers keep it). SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import Engine

from app.db import make_engine, write_session
from app.migrate import upgrade
from app.models.common import utcnow
from app.repos import runs as run_rows
from tests.test_runs_repo import queue


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    upgrade(database_url)
    made = make_engine(database_url)
    yield made
    made.dispose()


def claim(engine: Engine, cap: int = 1) -> int | None:
    with write_session(engine) as session:
        return run_rows.claim_next(session, worker_id="w", now=utcnow(), max_running_per_user=cap)


def end(engine: Engine, run_id: int, later: timedelta = timedelta(0)) -> None:
    with write_session(engine) as session:
        assert run_rows.finish(
            session,
            run_id=run_id,
            worker_id="w",
            status="succeeded",
            error=None,
            values={},
            now=utcnow() + later,
        )


def test_one_users_queue_does_not_hold_the_worker_while_another_waits(engine: Engine) -> None:
    greedy = queue(engine, 4)  # queued first, by one user
    patient = queue(engine, 1)  # then one run of another user
    first = claim(engine)
    assert first == greedy[0]
    # The greedy user is at RUN_MAX_RUNNING_PER_USER: the other user's run goes next …
    assert claim(engine) == patient[0]
    assert claim(engine) is None  # … and nobody gets a second run while both train
    end(engine, first)
    end(engine, patient[0])
    assert claim(engine) == greedy[1]


def test_after_each_run_the_user_who_started_least_recently_goes_first(engine: Engine) -> None:
    a = queue(engine, 3)
    b = queue(engine, 3)
    order = []
    for _ in range(6):  # one worker: claim, train, end
        run_id = claim(engine)
        assert run_id is not None
        order.append(run_id)
        end(engine, run_id)
    assert order == [a[0], b[0], a[1], b[1], a[2], b[2]]


def test_racing_claims_never_pass_the_per_user_cap(engine: Engine, database_url: str) -> None:
    queue(engine, 12)  # all of one user
    taken: list[int] = []
    start = threading.Barrier(4)

    def worker(name: str) -> None:
        own = make_engine(database_url)
        start.wait()
        with write_session(own) as session:
            got = run_rows.claim_next(session, worker_id=name, now=utcnow(), max_running_per_user=2)
        if got is not None:
            taken.append(got)
        own.dispose()

    threads = [threading.Thread(target=worker, args=(f"w{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(taken) == 2
