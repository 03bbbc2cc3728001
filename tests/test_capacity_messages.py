"""What a web user reads names no absolute path, host or port of the server; one spelling per
uploaded data set, so one in use by a queued run cannot be deleted through an alias.
SQLite and PostgreSQL."""

from __future__ import annotations

import shutil

from fastapi.testclient import TestClient

from app.db import write_session
from app.models.common import utcnow
from app.repos import runs as run_rows
from app.runs.execute import execute_run
from tests.datasets_zips import classes_zip, upload

FOLDER_RUN = {"dataset": "folder", "epochs": 1, "image_size": 16, "batch_size": 4, "width": 8}


def data_dir_text(client: TestClient) -> str:
    return str(client.app.state.settings.data_dir.resolve())


def test_a_missing_folder_is_refused_without_the_servers_path(db_client: TestClient) -> None:
    response = db_client.post("/api/runs", json={**FOLDER_RUN, "folder": "nowhere"})
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert detail.startswith("folder:") and "DATA_DIR/datasets" in detail
    assert data_dir_text(db_client) not in detail


def test_a_worker_side_failure_names_data_dir_not_its_absolute_path(db_client: TestClient) -> None:
    made = upload(db_client, classes_zip({"a": 3, "b": 3})).json()
    run = db_client.post("/api/runs", json={**FOLDER_RUN, "dataset_id": made["id"]})
    assert run.status_code == 202, run.text
    run_id = run.json()["id"]
    settings = db_client.app.state.settings
    # The folder vanishes between the check and the worker (a disk cleaned by hand).
    [folder] = [p for p in (settings.uploads_dir).glob("*/*") if p.name == str(made["id"])]
    shutil.rmtree(folder)
    engine = db_client.app.state.engine
    with write_session(engine) as session:
        assert run_rows.claim(session, run_id=run_id, worker_id="test:1", now=utcnow())
    assert execute_run(run_id, engine=engine, settings=settings, worker_id="test:1") == "failed"
    shown = db_client.get(f"/api/runs/{run_id}").json()["error"]
    page = db_client.get(f"/runs/{run_id}").text
    assert "DATA_DIR" in shown, shown
    assert data_dir_text(db_client) not in shown and data_dir_text(db_client) not in page


def test_a_folder_alias_is_refused_and_cannot_free_a_data_set_in_use(db_client: TestClient) -> None:
    made = upload(db_client, classes_zip({"a": 3, "b": 3})).json()
    queued = db_client.post("/api/runs", json={**FOLDER_RUN, "dataset_id": made["id"]}).json()
    folder = db_client.get(f"/api/runs/{queued['id']}").json()["config"]["folder"]
    for alias in (
        f"{folder}/.",
        f"{folder}/",
        folder.replace("/", "//"),
    ):
        refused = db_client.post("/api/runs", json={**FOLDER_RUN, "folder": alias})
        assert refused.status_code == 422, alias
        assert refused.json()["detail"].startswith("folder:") and f"'{folder}'" in refused.text
    assert db_client.post("/api/runs", json={**FOLDER_RUN, "folder": folder}).status_code == 202
    # A run queued before the one-spelling rule, through an alias: still counted as using it.
    engine = db_client.app.state.engine
    with write_session(engine) as session:
        row = run_rows.run_by_id(session, run_id=queued["id"])
        assert row is not None
        legacy = run_rows.create_run(
            session,
            owner_id=row.owner_id,
            config={**row.config, "folder": f"{folder}/."},
            now=utcnow(),
        )
        session.commit()
    for run_id in (r["id"] for r in db_client.get("/api/runs").json() if r["id"] != legacy.id):
        db_client.delete(f"/api/runs/{run_id}")  # cancelled: only the legacy run is live
    assert db_client.delete(f"/api/datasets/{made['id']}").status_code == 409
