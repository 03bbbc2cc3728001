"""The Celery backend's rules on SQLite and PostgreSQL, without a worker: what a delivered run
id does to the row (`app.runs.celery_tasks.decide`), and a launch while Redis is down."""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, update

from app.cli import build_parser
from app.db import read_session, write_session
from app.main import create_app
from app.models import Run
from app.models.common import utcnow
from app.repos import runs as run_rows
from app.repos import users
from app.runs.celery_tasks import RUN, SKIP, WAIT, decide
from app.settings import Settings
from tests.test_runs_pages import form_data
from tests.web import csrf, soup

HOST = socket.gethostname()


def rules(db_settings: Settings, **extra: object) -> Settings:
    return db_settings.model_copy(update=extra)


def queue(engine: Engine, count: int, owner_id: int | None = None) -> list[int]:
    with write_session(engine) as session:
        if owner_id is None:
            owner = users.create_guest(session)
            owner_id = owner.id
        assert owner_id is not None
        runs = [
            run_rows.create_run(session, owner_id=owner_id, config={"epochs": 1}, now=utcnow())
            for _ in range(count)
        ]
        session.commit()
    return [run.id for run in runs if run.id is not None]


def row(engine: Engine, run_id: int) -> Run:
    with read_session(engine) as session:
        found = run_rows.run_by_id(session, run_id=run_id)
    assert found is not None
    return found


def set_row(engine: Engine, run_id: int, **values: object) -> None:
    with write_session(engine) as session:
        session.exec(update(Run).where(Run.id == run_id).values(**values))  # type: ignore[call-overload]
        session.commit()


def dead_pid() -> int:
    """The pid of a process of this machine that has ended (and been reaped)."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_a_queued_run_is_claimed_once_and_counts_an_attempt(
    engine: Engine, db_settings: Settings
) -> None:
    [run_id] = queue(engine, 1)
    assert decide(run_id, engine=engine, settings=db_settings, worker_id="a:1")[0] == RUN
    taken = row(engine, run_id)
    assert (taken.status, taken.worker_id, taken.attempt) == ("running", "a:1", 1)
    # The same message again, while worker a:1 (this process, alive) trains it: skipped.
    set_row(engine, run_id, worker_id=f"{HOST}:{os.getpid()}")
    verdict, why = decide(run_id, engine=engine, settings=db_settings, worker_id="b:2")
    assert verdict == SKIP and "running on" in why
    assert row(engine, run_id).attempt == 1


def test_an_ended_or_deleted_run_is_skipped(engine: Engine, db_settings: Settings) -> None:
    [run_id] = queue(engine, 1)
    with write_session(engine) as session:
        run = run_rows.run_by_id(session, run_id=run_id)
        assert run is not None
        run_rows.request_cancel(session, run=run, now=utcnow())
    assert decide(run_id, engine=engine, settings=db_settings, worker_id="a:1") == (
        SKIP,
        "already cancelled",
    )
    assert row(engine, run_id).attempt == 0
    assert decide(run_id + 100, engine=engine, settings=db_settings, worker_id="a:1")[0] == SKIP


def test_a_users_runs_beyond_the_fair_share_wait_without_counting_an_attempt(
    engine: Engine, db_settings: Settings
) -> None:
    first, second = queue(engine, 2)
    owner = row(engine, first).owner_id
    [other] = queue(engine, 1)
    assert decide(first, engine=engine, settings=db_settings, worker_id="a:1")[0] == RUN
    verdict, why = decide(second, engine=engine, settings=db_settings, worker_id="b:2")
    assert verdict == WAIT and "RUN_MAX_RUNNING_PER_USER" in why
    assert (row(engine, second).status, row(engine, second).attempt) == ("queued", 0)
    # Another user's run starts meanwhile; with a cap of 2 the first user's second run does too.
    assert decide(other, engine=engine, settings=db_settings, worker_id="c:3")[0] == RUN
    wider = rules(db_settings, run_max_running_per_user=2)
    assert decide(second, engine=engine, settings=wider, worker_id="b:2")[0] == RUN
    [third] = queue(engine, 1, owner_id=owner)
    assert decide(third, engine=engine, settings=wider, worker_id="d:4")[0] == WAIT


def test_a_run_whose_worker_died_ends_interrupted_and_is_not_trained_again(
    engine: Engine, db_settings: Settings
) -> None:
    [run_id] = queue(engine, 1)
    dead = f"{HOST}:{dead_pid()}"
    assert decide(run_id, engine=engine, settings=db_settings, worker_id=dead)[0] == RUN
    verdict, why = decide(run_id, engine=engine, settings=db_settings, worker_id="b:2")
    assert verdict == SKIP and "interrupted" in why
    ended = row(engine, run_id)
    assert (ended.status, ended.attempt, ended.worker_id) == ("interrupted", 1, dead)
    assert "died" in (ended.error or "")
    # Delivered once more (a visibility timeout, say): it has ended, nothing happens.
    assert decide(run_id, engine=engine, settings=db_settings, worker_id="c:3") == (
        SKIP,
        "already interrupted",
    )


def test_with_more_attempts_a_dead_workers_run_starts_afresh_then_fails_with_the_count(
    engine: Engine, db_settings: Settings
) -> None:
    settings = rules(db_settings, run_max_attempts=2)
    [run_id] = queue(engine, 1)
    first = f"{HOST}:{dead_pid()}"
    assert decide(run_id, engine=engine, settings=settings, worker_id=first)[0] == RUN
    set_row(engine, run_id, epoch=3, step=7, history=[{"epoch": 1}], metrics={"x": 1})
    second = f"{HOST}:{dead_pid()}"
    verdict, why = decide(run_id, engine=engine, settings=settings, worker_id=second)
    assert verdict == RUN and why.startswith("attempt 2 of 2")
    again = row(engine, run_id)
    assert (again.status, again.worker_id, again.attempt) == ("running", second, 2)
    assert (again.epoch, again.step, again.history, again.metrics) == (0, 0, [], None)
    verdict, _ = decide(run_id, engine=engine, settings=settings, worker_id="c:3")
    failed = row(engine, run_id)
    assert verdict == SKIP and (failed.status, failed.attempt) == ("failed", 2)
    assert "each of its 2 attempts" in (failed.error or "")


def test_a_holder_on_another_machine_is_dead_once_its_heartbeat_is_stale(
    engine: Engine, db_settings: Settings
) -> None:
    [run_id] = queue(engine, 1)
    assert decide(run_id, engine=engine, settings=db_settings, worker_id="elsewhere:1")[0] == RUN
    # Its heartbeat is fresh: maybe alive, maybe not yet seen dead; the message is kept.
    verdict, why = decide(run_id, engine=engine, settings=db_settings, worker_id="b:2")
    assert verdict == WAIT and "elsewhere:1" in why
    assert (row(engine, run_id).status, row(engine, run_id).attempt) == ("running", 1)
    stale = utcnow() - timedelta(seconds=db_settings.run_heartbeat_timeout + 1)
    set_row(engine, run_id, heartbeat_at=stale)
    assert decide(run_id, engine=engine, settings=db_settings, worker_id="b:2")[0] == SKIP
    assert row(engine, run_id).status == "interrupted"


@pytest.fixture
def unreachable(db_settings: Settings) -> Iterator[TestClient]:
    """The app with JOBS_BACKEND=celery and a Redis URL whose port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again when the block ends: refused
    settings = rules(
        db_settings, jobs_backend="celery", redis_url=f"redis://:sekrit@127.0.0.1:{port}/0"
    )
    with TestClient(create_app(settings)) as client:
        yield client


def test_redis_down_fails_the_launch_at_once_and_marks_the_run_failed(
    unreachable: TestClient,
) -> None:
    began = time.monotonic()
    response = unreachable.post("/api/runs", json={"dataset": "shapes", "epochs": 1})
    assert time.monotonic() - began < 5
    assert response.status_code == 503
    detail = response.json()["detail"]
    assert "job queue (Redis, REDIS_URL)" in detail and "cannot be reached" in detail
    # No host, port or password in what a web user sees (the log has them).
    assert "sekrit" not in detail and "127.0.0.1" not in detail
    assert unreachable.app.state.settings.redis_url.rsplit(":", 1)[1] not in detail
    [run] = unreachable.get("/api/runs").json()
    assert run["status"] == "failed" and run["error"] == detail
    # The form says the same, keeping what was typed.
    data = form_data(soup(unreachable.get("/runs/new")))
    data.update(epochs="2", csrf_token=csrf(unreachable, "/runs/new"))
    page = unreachable.post("/runs", data=data)
    assert page.status_code == 503 and "cannot be reached" in page.text
    assert [r["status"] for r in unreachable.get("/api/runs").json()] == ["failed", "failed"]
    jobs = unreachable.get("/healthz").json()["jobs"]
    assert jobs["backend"] == "celery" and jobs["ok"] is False
    assert jobs["redis"] == "unreachable"


def test_the_worker_command_loads_no_torch_before_its_children_fork(tmp_path: Path) -> None:
    script = (
        "import sys\n"
        "from app.cli import build_parser\n"
        "from app.runs import celery_backend, celery_tasks, celery_worker\n"
        "from app.runs.celery_app import make_celery\n"
        "from app.settings import Settings\n"
        "build_parser().parse_args(['worker', '--gpu', '0'])\n"
        "make_celery(Settings())\n"
        "print('torch' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parent.parent,
        env={**os.environ, "DATA_DIR": str(tmp_path)},
    )
    assert done.stdout.strip() == "False"


@pytest.mark.parametrize(("given", "pinned"), [("0", "0"), ("2,3", "2,3"), ("01", "1")])
def test_the_gpu_option_takes_indices_as_cuda_visible_devices_does(given: str, pinned: str) -> None:
    assert build_parser().parse_args(["worker", "--gpu", given]).gpu == pinned


@pytest.mark.parametrize("given", ["", "gpu0", "-1", "0,", "١"])
def test_a_gpu_option_that_is_no_index_is_refused(
    given: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(["worker", "--gpu", given])
    assert exited.value.code == 2
    assert "expected a GPU index" in capsys.readouterr().err


def test_the_run_page_says_when_a_run_started_again_after_its_worker_died(
    db_client: TestClient, db_settings: Settings, engine: Engine
) -> None:
    run_id = db_client.post("/api/runs", json={"dataset": "shapes", "epochs": 1}).json()["id"]
    settings = rules(db_settings, run_max_attempts=2)
    dead = f"{HOST}:{dead_pid()}"
    assert decide(run_id, engine=engine, settings=settings, worker_id=dead)[0] == RUN
    page = soup(db_client.get(f"/runs/{run_id}"))
    assert page.select_one(".run-attempt") is None
    assert decide(run_id, engine=engine, settings=settings, worker_id="b:2")[0] == RUN
    page = soup(db_client.get(f"/runs/{run_id}"))
    assert page.select_one(".run-attempt").text.startswith("Attempt 2:")
    assert db_client.get(f"/api/runs/{run_id}").json()["attempt"] == 2


def test_redis_down_fails_an_experiments_launch_and_each_of_its_runs(
    unreachable: TestClient,
) -> None:
    response = unreachable.post("/api/experiments", json={"preset": "residual"})
    assert response.status_code == 503
    assert "cannot be reached" in response.json()["detail"]
    runs = unreachable.get("/api/runs").json()
    assert runs and {r["status"] for r in runs} == {"failed"}
    assert {r["error"] for r in runs} == {response.json()["detail"]}


def test_a_run_that_starts_from_an_unfinished_run_waits_for_it(
    engine: Engine, db_settings: Settings
) -> None:
    settings = rules(db_settings, run_max_running_per_user=5)
    [first] = queue(engine, 1)
    owner = row(engine, first).owner_id
    with write_session(engine) as session:
        made = run_rows.create_run(
            session, owner_id=owner, config={"epochs": 1, "init": f"run:{first}"}, now=utcnow()
        )
        session.commit()
    second = made.id
    assert second is not None
    # The claim answers "not yet" while the run it starts from is queued or training.
    assert decide(second, engine=engine, settings=settings, worker_id="a:1") == (
        WAIT,
        "not ready to start yet",
    )
    assert decide(first, engine=engine, settings=settings, worker_id="a:1")[0] == RUN
    assert decide(second, engine=engine, settings=settings, worker_id="b:2")[0] == WAIT
    assert (row(engine, second).status, row(engine, second).attempt) == ("queued", 0)
    with write_session(engine) as session:
        assert run_rows.finish(
            session,
            run_id=first,
            worker_id="a:1",
            status="succeeded",
            error=None,
            values={},
            now=utcnow(),
        )
    assert decide(second, engine=engine, settings=settings, worker_id="b:2")[0] == RUN
    assert row(engine, second).attempt == 1


def test_queued_runs_are_sent_again_when_the_web_process_starts(
    engine: Engine, db_settings: Settings, redis_url: str
) -> None:
    """A web process that died between saving a run and sending its id left the run with no
    message; the next start sends every queued run's id again (ended runs are not sent)."""
    import redis

    from app.runs.celery_backend import CeleryBackend
    from tests.test_runs_celery import forget_queue

    waiting, ended = queue(engine, 2)
    set_row(engine, ended, status="succeeded")
    name = f"cvprep-resend-{os.getpid()}-{time.time_ns()}"
    backend = CeleryBackend(
        rules(db_settings, jobs_backend="celery", redis_url=redis_url, celery_queue=name), engine
    )
    client = redis.Redis.from_url(redis_url)
    try:
        sent = backend.resend_queued()
        assert waiting in sent and ended not in sent
        # Celery's message protocol 2: the body is base64 JSON [args, kwargs, embed].
        messages = [json.loads(raw) for raw in client.lrange(name, 0, -1)]
        delivered = [json.loads(base64.b64decode(m["body"]))[0][0] for m in messages]
        assert sorted(delivered) == sorted(sent)
    finally:
        client.close()
        forget_queue(redis_url, name)
