"""Runs under load from one client: fair share in the local backend's claim (as Celery's
workers keep it), a run's memory estimated before it is queued. SQLite and PostgreSQL."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from app.db import make_engine, write_session
from app.main import create_app
from app.migrate import upgrade
from app.models.common import utcnow
from app.repos import runs as run_rows
from app.runs.memory import estimate
from app.settings import ROOT, Settings
from app.worker.training import RunConfig
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


# --- memory: estimated before a run is queued ------------------------------------------------

PEAK_SCRIPT = """
import json, resource, sys, tempfile, pathlib
from app.worker.training import RunConfig, run
config = RunConfig.from_dict(json.loads(sys.argv[1]))
out = pathlib.Path(tempfile.mkdtemp())
run(config, lambda e: None, lambda: False, out_dir=out / "run", data_dir=out, runs_dir=out,
    num_threads=1)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
"""


def test_the_memory_estimate_bounds_a_real_runs_peak() -> None:
    values = {
        "dataset": "shapes",
        "model": "resnet18",
        "image_size": 64,
        "images_per_class": 40,
        "num_classes": 10,
        "epochs": 1,
        "batch_size": 32,
    }
    done = subprocess.run(
        [sys.executable, "-c", PEAK_SCRIPT, json.dumps(values)],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        timeout=300,
    )
    peak = int(done.stdout.split()[-1])
    guess = estimate(RunConfig.from_dict(values), 400, 10).total
    assert peak <= guess <= 3 * peak, (peak, guess)


def test_a_run_above_the_memory_a_worker_may_use_is_refused_with_the_figure(
    database_url: str, tmp_path: Path
) -> None:
    big = {
        "dataset": "shapes",
        "model": "resnet18",
        "image_size": 128,
        "images_per_class": 20,
        "epochs": 1,
        "batch_size": 64,
    }
    settings = Settings(
        DATA_DIR=tmp_path / "data",
        DATABASE_URL=database_url,
        SECRET_KEY="k",
        RUN_MAX_MEMORY_MB=1536,
    )
    with TestClient(create_app(settings)) as client:
        refused = client.post("/api/runs", json=big)
        assert refused.status_code == 422
        detail = refused.json()["detail"]
        assert "RUN_MAX_MEMORY_MB" in detail and "1,536 MB" in detail
        assert re.search(r"about [0-9,]+ MB", detail)
        assert client.get("/api/runs").json() == []
        small = client.post("/api/runs", json={**big, "model": "smallcnn", "image_size": 32})
        assert small.status_code == 202, small.text
