"""Runs through a real `cvprep serve` and its worker process, over HTTP.

The worker is the one the server starts (RUN_WORKERS=1, "spawn"); runs are tiny (shapes at
16 px) so each takes seconds. Waits are generous: the CPU is shared.
"""

from __future__ import annotations

import io
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
import sqlalchemy
import torch
from sklearn.metrics import confusion_matrix

from benchmarks.load import serving

TINY = {
    "dataset": "shapes",
    "model": "smallcnn",
    "image_size": 16,
    "images_per_class": 20,
    "num_classes": 4,
    "epochs": 3,
    "batch_size": 8,
    "width": 8,
}
# Hundreds of one-image steps: time to cancel it, kill its worker or stop its server.
LONG = {**TINY, "epochs": 40, "batch_size": 1, "images_per_class": 30}
LIVE = ("queued", "running")


SERVER_PID: dict[str, int] = {}


@pytest.fixture(scope="module")
def trainer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A server with one run worker, shared by the tests of this module."""
    data = tmp_path_factory.mktemp("runs-served")
    env = {"DATA_DIR": str(data), "DATABASE_URL": "", "RUN_WORKERS": "1"}
    with serving(env) as (process, base_url):
        SERVER_PID["pid"] = process.pid
        yield base_url, data


def wait_for(client: httpx.Client, run_id: int, done, timeout: float = 180) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        body = client.get(f"/api/runs/{run_id}").json()
        if done(body):
            return body
        assert time.monotonic() < deadline, f"run {run_id} stuck at {body['status']}"
        time.sleep(0.2)


def ended(body: dict) -> bool:
    return body["status"] not in LIVE


def training(body: dict) -> bool:
    assert body["status"] in LIVE, body["error"]
    return body["status"] == "running" and body["progress"]["step"] >= 2


def worker_pid(data: Path, run_id: int) -> int:
    engine = sqlalchemy.create_engine(f"sqlite:///{data / 'cvprep.sqlite3'}")
    with engine.connect() as connection:
        worker = connection.exec_driver_sql(
            "SELECT worker_id FROM run WHERE id = ?", (run_id,)
        ).scalar_one()
    engine.dispose()
    return int(worker.rsplit(":", 1)[1])


def test_a_run_end_to_end_through_the_api(trainer: tuple[str, Path]) -> None:
    base_url, data = trainer
    with httpx.Client(base_url=base_url, timeout=60) as client:
        created = client.post("/api/runs", json=TINY)
        assert created.status_code == 202 and created.json()["status"] == "queued"
        run_id = created.json()["id"]
        seen: list[tuple[str, int, int]] = []
        deadline = time.monotonic() + 180
        while True:
            body = client.get(f"/api/runs/{run_id}").json()
            progress = body["progress"]
            seen.append((body["status"], progress["epoch"], progress["step"]))
            if ended(body):
                break
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert body["status"] == "succeeded", body["error"]
        assert body["started"] and body["finished"] and body["attempt"] == 1
        # Trained in the worker process, never in the web process, with its threads capped
        # so the web process keeps a core.
        assert worker_pid(data, run_id) != SERVER_PID["pid"]
        assert body["metrics"]["runtime"]["threads"] == max(1, (os.cpu_count() or 1) - 1)
        assert [h["epoch"] for h in body["history"]] == [1, 2, 3]
        # The figures agree with the predictions file, recomputed here.
        raw = client.get(f"/api/runs/{run_id}/files/predictions.npz")
        assert raw.status_code == 200
        predictions = np.load(io.BytesIO(raw.content))
        y_true, y_pred = predictions["y_true"], predictions["y_prob"].argmax(1)
        metrics = body["metrics"]
        assert metrics["val_accuracy"] == pytest.approx(float((y_pred == y_true).mean()))
        assert (
            metrics["confusion_matrix"]
            == confusion_matrix(y_true, y_pred, labels=range(4)).tolist()
        )
        assert metrics["classes"] == ["circle", "square", "triangle", "star"]
        # The checkpoint is a plain dict that loads without pickled objects.
        checkpoint = client.get(f"/api/runs/{run_id}/files/checkpoint.pt")
        loaded = torch.load(io.BytesIO(checkpoint.content), weights_only=True)
        assert loaded["epoch"] == 3 and loaded["classes"] == metrics["classes"]
        listed = client.get("/api/runs").json()
        assert [r["id"] for r in listed] == [run_id]
        assert listed[0]["best_val_accuracy"] == max(h["val_accuracy"] for h in body["history"])
        page = client.get(f"/runs/{run_id}")
        assert page.status_code == 200 and 'id="confusion-chart"' in page.text


def test_cancel_mid_run_ends_cancelled_within_seconds(trainer: tuple[str, Path]) -> None:
    base_url, _ = trainer
    with httpx.Client(base_url=base_url, timeout=60) as client:
        run_id = client.post("/api/runs", json=LONG).json()["id"]
        wait_for(client, run_id, training)
        asked = time.monotonic()
        cancel = client.delete(f"/api/runs/{run_id}")
        assert cancel.status_code == 202 and cancel.json()["status"] == "running"
        body = wait_for(client, run_id, ended, timeout=60)
        assert body["status"] == "cancelled" and body["error"] is None
        assert time.monotonic() - asked < 10
        assert body["progress"]["epoch"] < LONG["epochs"]
        # A cancelled run keeps what it saved; an ended run is not cancelled twice.
        assert client.get(f"/api/runs/{run_id}/files/checkpoint.pt").status_code == 200
        assert client.delete(f"/api/runs/{run_id}").status_code == 409


def test_kill_9_of_the_worker_interrupts_its_run_and_the_next_run_succeeds(
    trainer: tuple[str, Path],
) -> None:
    base_url, data = trainer
    with httpx.Client(base_url=base_url, timeout=60) as client:
        run_id = client.post("/api/runs", json=LONG).json()["id"]
        wait_for(client, run_id, training)
        os.kill(worker_pid(data, run_id), signal.SIGKILL)
        killed = time.monotonic()
        body = wait_for(client, run_id, ended, timeout=30)
        assert time.monotonic() - killed < 10
        assert body["status"] == "interrupted"
        assert "killed by SIGKILL" in body["error"]
        after = client.post("/api/runs", json=TINY).json()["id"]
        body = wait_for(client, after, ended)
        assert body["status"] == "succeeded", body["error"]


def test_a_queued_run_survives_a_server_restart_and_then_runs(tmp_path: Path) -> None:
    env = {"DATA_DIR": str(tmp_path / "data"), "DATABASE_URL": "", "RUN_WORKERS": "1"}
    with httpx.Client(timeout=60) as client:
        with serving(env) as (process, base_url):
            client.base_url = httpx.URL(base_url)
            first = client.post("/api/runs", json=LONG).json()["id"]
            wait_for(client, first, training)
            waiting = client.post("/api/runs", json=TINY).json()["id"]
            assert client.get(f"/api/runs/{waiting}").json()["queue_position"] == 1
            process.terminate()
            process.wait(30)
        with serving(env) as (_, base_url):
            client.base_url = httpx.URL(base_url)
            stopped = client.get(f"/api/runs/{first}").json()
            assert stopped["status"] == "interrupted"
            assert "server stopped" in stopped["error"]
            body = wait_for(client, waiting, ended)
            assert body["status"] == "succeeded", body["error"]
