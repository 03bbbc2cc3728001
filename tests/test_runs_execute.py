"""app.runs.execute: one claimed run trained by the real engine, its events written to the row.

These call `execute_run` in the test process, as a worker process (or a task-queue task) does,
on SQLite and PostgreSQL; the worker process itself is tested in test_runs_worker.py.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import Engine

from app.db import make_engine, read_session, write_session
from app.migrate import upgrade
from app.models.common import utcnow
from app.repos import runs as run_rows
from app.repos import users
from app.runs.execute import execute_run
from app.settings import Settings
from app.worker.training import RunConfig

WORKER = "test-host:1"
# A few seconds on a busy 2-core CPU: 4 shapes at 16 px, 2 epochs of 4 steps.
TINY = {
    "dataset": "shapes",
    "image_size": 16,
    "images_per_class": 20,
    "num_classes": 4,
    "epochs": 2,
    "batch_size": 16,
    "width": 8,
}
# Long enough to stop part-way (many steps of one image each).
LONG = {**TINY, "epochs": 50, "batch_size": 1, "images_per_class": 30}


def make_settings(tmp_path: Path, url: str, **extra: object) -> Settings:
    return Settings(DATA_DIR=tmp_path / "data", DATABASE_URL=url, SECRET_KEY="k", **extra)


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Engine:
    url = f"sqlite:///{tmp_path / 'runs.sqlite3'}"
    upgrade(url)
    made = make_engine(url)
    yield made
    made.dispose()


def queue_and_claim(engine: Engine, config: dict) -> int:
    with write_session(engine) as session:
        owner = users.create_guest(session)
        assert owner.id is not None
        run = run_rows.create_run(
            session,
            owner_id=owner.id,
            config=RunConfig.from_dict(config).to_dict(),
            now=utcnow(),
        )
        session.commit()
    assert run.id is not None
    with write_session(engine) as session:
        assert run_rows.claim(session, run_id=run.id, worker_id=WORKER, now=utcnow())
    return run.id


def row(engine: Engine, run_id: int):
    with read_session(engine) as session:
        found = run_rows.run_by_id(session, run_id=run_id)
    assert found is not None
    return found


def test_a_run_is_trained_and_every_event_lands_in_its_row(
    engine: Engine, database_url: str, tmp_path: Path
) -> None:
    settings = make_settings(tmp_path, database_url)
    run_id = queue_and_claim(engine, TINY)
    status = execute_run(run_id, engine=engine, settings=settings, worker_id=WORKER)
    assert status == "succeeded"
    run = row(engine, run_id)
    assert run.status == "succeeded" and run.error is None and run.finished_at is not None
    assert run.attempt == 1 and run.heartbeat_at is not None
    assert (run.epoch, run.epochs, run.steps) == (2, 2, 4)
    assert [h["epoch"] for h in run.history] == [1, 2]
    assert run.info["classes"] == ["circle", "square", "triangle", "star"]
    assert run.info["train_size"] + run.info["val_size"] == 80
    # The final curve is every step's loss from metrics.json, on an epoch axis.
    on_disk = json.loads((settings.runs_dir / str(run_id) / "metrics.json").read_text())
    assert [p[1] for p in run.curve] == pytest.approx(on_disk["step_loss"])
    assert run.curve[-1][0] == pytest.approx(2.0)
    # The row's metrics are metrics.json's figures, recomputed here from the predictions.
    predictions = np.load(settings.runs_dir / str(run_id) / "predictions.npz")
    y_true, y_prob = predictions["y_true"], predictions["y_prob"]
    assert run.metrics["val_accuracy"] == pytest.approx(float((y_prob.argmax(1) == y_true).mean()))
    assert run.metrics["classes"] == list(predictions["classes"])
    assert run.metrics["confusion_matrix"] == on_disk["confusion_matrix"]
    assert "step_loss" not in run.metrics and "history" not in run.metrics


def test_a_cancelled_run_stops_within_seconds_and_keeps_its_checkpoint(
    engine: Engine, database_url: str, tmp_path: Path
) -> None:
    settings = make_settings(tmp_path, database_url)
    run_id = queue_and_claim(engine, LONG)
    result: list[str | None] = []
    worker = threading.Thread(
        target=lambda: result.append(
            execute_run(run_id, engine=engine, settings=settings, worker_id=WORKER)
        )
    )
    worker.start()
    deadline = time.monotonic() + 120
    while row(engine, run_id).step < 3:
        assert time.monotonic() < deadline, "the run never got going"
        time.sleep(0.1)
    with write_session(engine) as session:
        assert run_rows.request_cancel(session, run=row(engine, run_id), now=utcnow()) == "running"
    asked = time.monotonic()
    worker.join(60)
    assert result == ["cancelled"]
    assert time.monotonic() - asked < 15
    run = row(engine, run_id)
    assert run.status == "cancelled" and run.error is None
    assert run.epoch < 50
    assert (settings.runs_dir / str(run_id) / "checkpoint.pt").is_file()


def test_a_run_that_raises_is_failed_with_its_message(
    sqlite_engine: Engine, tmp_path: Path
) -> None:
    settings = make_settings(tmp_path, str(sqlite_engine.url))
    # A folder of one class: the engine's data loading raises once training has begun.
    only = settings.data_dir / "datasets" / "one-class" / "cats"
    only.mkdir(parents=True)
    from PIL import Image

    for n in range(4):
        Image.new("RGB", (20, 20), (n * 40, 10, 10)).save(only / f"{n}.png")
    run_id = queue_and_claim(sqlite_engine, {**TINY, "dataset": "folder", "folder": "one-class"})
    assert (
        execute_run(run_id, engine=sqlite_engine, settings=settings, worker_id=WORKER) == "failed"
    )
    run = row(sqlite_engine, run_id)
    assert run.status == "failed" and run.finished_at is not None
    assert "class" in run.error


def test_a_config_this_machine_cannot_run_fails_with_the_engines_message(
    sqlite_engine: Engine, tmp_path: Path
) -> None:
    settings = make_settings(tmp_path, str(sqlite_engine.url))
    run_id = queue_and_claim(sqlite_engine, {"dataset": "cifar10", "epochs": 1})
    assert (
        execute_run(run_id, engine=sqlite_engine, settings=settings, worker_id=WORKER) == "failed"
    )
    error = row(sqlite_engine, run_id).error
    assert error.startswith("dataset: CIFAR-10 is not in") and "cvprep data fetch cifar10" in error


def test_the_run_time_limit_stops_a_run_and_says_so(sqlite_engine: Engine, tmp_path: Path) -> None:
    settings = make_settings(tmp_path, str(sqlite_engine.url), RUN_MAX_SECONDS=1)
    run_id = queue_and_claim(sqlite_engine, LONG)
    assert (
        execute_run(run_id, engine=sqlite_engine, settings=settings, worker_id=WORKER)
        == "cancelled"
    )
    run = row(sqlite_engine, run_id)
    assert "RUN_MAX_SECONDS" in run.error and "1 s" in run.error
    assert run.epoch < 50


def test_a_data_set_over_the_image_limit_fails_naming_the_limit(
    sqlite_engine: Engine, tmp_path: Path
) -> None:
    from sklearn.datasets import load_digits

    settings = make_settings(tmp_path, str(sqlite_engine.url), RUN_MAX_IMAGES=500)
    run_id = queue_and_claim(
        sqlite_engine, {**TINY, "dataset": "digits", "num_classes": 0, "images_per_class": 0}
    )
    assert (
        execute_run(run_id, engine=sqlite_engine, settings=settings, worker_id=WORKER) == "failed"
    )
    error = row(sqlite_engine, run_id).error
    total = len(load_digits().target)
    assert error == (
        f"images: the data set has {total} images, more than the limit of 500 per run "
        "(RUN_MAX_IMAGES)"
    )


def test_a_worker_that_lost_its_run_writes_nothing_more(
    sqlite_engine: Engine, tmp_path: Path
) -> None:
    settings = make_settings(tmp_path, str(sqlite_engine.url))
    run_id = queue_and_claim(sqlite_engine, LONG)
    result: list[str | None] = []
    worker = threading.Thread(
        target=lambda: result.append(
            execute_run(run_id, engine=sqlite_engine, settings=settings, worker_id=WORKER)
        )
    )
    worker.start()
    deadline = time.monotonic() + 120
    while row(sqlite_engine, run_id).step < 2:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    # The supervisor gives up on the worker (say, its heartbeat was late) ...
    with write_session(sqlite_engine) as session:
        assert run_rows.interrupt_held_by(
            session, worker_ids=[WORKER], reason="gone", now=utcnow()
        ) == [run_id]
    worker.join(60)
    # ... so the worker stops and the row keeps the supervisor's word.
    assert result == [None]
    run = row(sqlite_engine, run_id)
    assert (run.status, run.error) == ("interrupted", "gone")


def test_only_the_worker_holding_a_run_may_run_it(sqlite_engine: Engine, tmp_path: Path) -> None:
    settings = make_settings(tmp_path, str(sqlite_engine.url))
    run_id = queue_and_claim(sqlite_engine, TINY)
    assert execute_run(run_id, engine=sqlite_engine, settings=settings, worker_id="other:2") is None
    assert row(sqlite_engine, run_id).status == "running"
