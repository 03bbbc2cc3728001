"""app.repos.runs on SQLite and PostgreSQL: atomic claims, the holder's writes, cancel, sweeps."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import Engine

from app.db import make_engine, read_session, write_session
from app.models.common import utcnow
from app.repos import runs as run_rows
from app.repos import users


def queue(engine: Engine, count: int) -> list[int]:
    with write_session(engine) as session:
        owner = users.create_guest(session)
        assert owner.id is not None
        ids = [
            run_rows.create_run(session, owner_id=owner.id, config={"epochs": 1}, now=utcnow()).id
            for _ in range(count)
        ]
        session.commit()
    return [i for i in ids if i is not None]


def test_concurrent_workers_claim_every_queued_run_exactly_once(
    engine: Engine, database_url: str
) -> None:
    ids = queue(engine, 12)
    claimed: dict[str, list[int]] = {}
    start = threading.Barrier(4)

    def worker(name: str) -> None:
        # Each worker has its own engine, as separate processes would.
        own = make_engine(database_url)
        start.wait()
        mine = claimed.setdefault(name, [])
        while True:
            with write_session(own) as session:
                run_id = run_rows.claim_next(session, worker_id=name, now=utcnow())
            if run_id is None:
                break
            mine.append(run_id)
        own.dispose()

    threads = [threading.Thread(target=worker, args=(f"w{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    every = [run_id for taken in claimed.values() for run_id in taken]
    assert sorted(every) == ids  # all taken, none twice
    with read_session(engine) as session:
        for name, taken in claimed.items():
            for run_id in taken:
                run = run_rows.run_by_id(session, run_id=run_id)
                assert run is not None
                assert (run.status, run.worker_id, run.attempt) == ("running", name, 1)


def test_the_oldest_queued_run_is_claimed_first(engine: Engine) -> None:
    first, second = queue(engine, 2)
    with write_session(engine) as session:
        assert run_rows.claim_next(session, worker_id="w", now=utcnow()) == first
        assert run_rows.claim_next(session, worker_id="w", now=utcnow()) == second
        assert run_rows.claim_next(session, worker_id="w", now=utcnow()) is None


def test_a_named_run_is_claimed_only_while_queued(engine: Engine) -> None:
    (run_id,) = queue(engine, 1)
    with write_session(engine) as session:
        assert run_rows.claim(session, run_id=run_id, worker_id="a", now=utcnow())
        assert not run_rows.claim(session, run_id=run_id, worker_id="b", now=utcnow())


def test_only_the_holder_writes_and_the_cancel_flag_reaches_it(engine: Engine) -> None:
    (run_id,) = queue(engine, 1)
    with write_session(engine) as session:
        run_rows.claim(session, run_id=run_id, worker_id="a", now=utcnow())
        assert run_rows.report(session, run_id=run_id, worker_id="b", values={"step": 9}) is False
        assert run_rows.beat(session, run_id=run_id, worker_id="b", now=utcnow()) is None
        assert run_rows.report(session, run_id=run_id, worker_id="a", values={"step": 3}) is True
        assert run_rows.beat(session, run_id=run_id, worker_id="a", now=utcnow()) is False
        run = run_rows.run_by_id(session, run_id=run_id)
        assert run is not None
        assert run_rows.request_cancel(session, run=run, now=utcnow()) == "running"
        assert run_rows.beat(session, run_id=run_id, worker_id="a", now=utcnow()) is True
        assert run_rows.finish(
            session,
            run_id=run_id,
            worker_id="a",
            status="cancelled",
            error=None,
            values={},
            now=utcnow(),
        )
        run = run_rows.run_by_id(session, run_id=run_id)
        assert run is not None and (run.status, run.step) == ("cancelled", 3)


def test_runs_of_a_dead_or_silent_worker_are_interrupted_with_the_reason(engine: Engine) -> None:
    dead, silent, fresh, waiting = queue(engine, 4)
    now = utcnow()
    with write_session(engine) as session:
        run_rows.claim(session, run_id=dead, worker_id="dead", now=now)
        run_rows.claim(session, run_id=silent, worker_id="far", now=now - timedelta(minutes=5))
        run_rows.claim(session, run_id=fresh, worker_id="near", now=now)
        assert run_rows.interrupt_held_by(
            session, worker_ids=["dead"], reason="killed", now=now
        ) == [dead]
        assert run_rows.interrupt_silent(
            session, before=now - timedelta(seconds=30), reason="quiet", now=now
        ) == [silent]
        statuses = {
            run_id: (run.status, run.error)
            for run_id in (dead, silent, fresh, waiting)
            if (run := run_rows.run_by_id(session, run_id=run_id)) is not None
        }
    assert statuses == {
        dead: ("interrupted", "killed"),
        silent: ("interrupted", "quiet"),
        fresh: ("running", None),
        waiting: ("queued", None),
    }


def test_queue_position_counts_the_queued_runs_ahead(engine: Engine) -> None:
    first, second, third = queue(engine, 3)
    with write_session(engine) as session:
        run_rows.claim(session, run_id=first, worker_id="w", now=utcnow())
        positions = [
            run_rows.queue_position(session, run=run)
            for run_id in (first, second, third)
            if (run := run_rows.run_by_id(session, run_id=run_id)) is not None
        ]
    assert positions == [None, 1, 2]


def queue_configs(engine: Engine, configs: list[dict]) -> list[int]:
    """Queue one run per config for one new guest, in order; the configs may name earlier
    runs of the list as "run:{0}", "run:{1}", ... (their positions)."""
    with write_session(engine) as session:
        owner = users.create_guest(session)
        assert owner.id is not None
        ids: list[int] = []
        for config in configs:
            init = config.get("init", "scratch")
            if init.startswith("run:{"):
                init = f"run:{ids[int(init[5:-1])]}"
            run = run_rows.create_run(
                session, owner_id=owner.id, config={**config, "init": init}, now=utcnow()
            )
            assert run.id is not None
            ids.append(run.id)
        session.commit()
    return ids


def end_run(engine: Engine, run_id: int, worker: str, status: str) -> None:
    with write_session(engine) as session:
        assert run_rows.finish(
            session,
            run_id=run_id,
            worker_id=worker,
            status=status,
            error=None,
            values={},
            now=utcnow(),
        )


def test_a_run_that_starts_from_another_waits_until_that_one_succeeds(engine: Engine) -> None:
    base, child, other = queue_configs(engine, [{}, {"init": "run:{0}"}, {}])
    with write_session(engine) as session:
        assert run_rows.claim(session, run_id=child, worker_id="w", now=utcnow()) == "not_yet"
        assert run_rows.claim_next(session, worker_id="w", now=utcnow()) == base
        # The base is running: the child still waits and the next free run is taken instead.
        assert run_rows.claim(session, run_id=child, worker_id="w", now=utcnow()) == "not_yet"
        assert run_rows.claim_next(session, worker_id="w", now=utcnow()) == other
        assert run_rows.claim_next(session, worker_id="w", now=utcnow()) is None
    end_run(engine, base, "w", "succeeded")
    with write_session(engine) as session:
        assert run_rows.claim_next(session, worker_id="w", now=utcnow()) == child


@pytest.mark.parametrize("ending", ["failed", "cancelled", "interrupted"])
def test_a_run_whose_base_ended_without_success_fails_with_the_reason(
    engine: Engine, ending: str
) -> None:
    base, by_next, by_name = queue_configs(engine, [{}, {"init": "run:{0}"}, {"init": "run:{0}"}])
    with write_session(engine) as session:
        assert run_rows.claim(session, run_id=base, worker_id="w", now=utcnow())
    end_run(engine, base, "w", ending)
    with write_session(engine) as session:
        assert run_rows.claim_next(session, worker_id="w", now=utcnow()) is None
        result = run_rows.claim(session, run_id=by_name, worker_id="w", now=utcnow())
        assert result == run_rows.Claim.GONE and not result
    with read_session(engine) as session:
        for run_id in (by_next, by_name):
            run = run_rows.run_by_id(session, run_id=run_id)
            assert run is not None and run.status == "failed"
            assert run.error == (
                f"run {base}, which this run starts from, ended {ending}: nothing to start from"
            )
            assert run.finished_at is not None


def test_a_run_whose_base_was_deleted_fails(engine: Engine) -> None:
    (child,) = queue_configs(engine, [{"init": "run:999999"}])
    with write_session(engine) as session:
        assert run_rows.claim(session, run_id=child, worker_id="w", now=utcnow()) == "gone"
        run = run_rows.run_by_id(session, run_id=child)
        assert run is not None and run.status == "failed"
        assert "run 999999" in (run.error or "") and "no longer exists" in (run.error or "")


def test_claim_results_are_strings_and_only_claimed_is_true(engine: Engine) -> None:
    (run_id,) = queue(engine, 1)
    with write_session(engine) as session:
        taken = run_rows.claim(session, run_id=run_id, worker_id="a", now=utcnow())
        again = run_rows.claim(session, run_id=run_id, worker_id="b", now=utcnow())
    assert (taken, bool(taken)) == ("claimed", True)
    assert (again, bool(again)) == ("gone", False)
    assert not run_rows.Claim.NOT_YET
