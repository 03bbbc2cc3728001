"""Training on an uploaded data set: `dataset_id` in the runs API and the New-run form, the run
executed by the real engine (as a worker does), and other users' data sets out of reach."""

from __future__ import annotations

import io

from bs4 import BeautifulSoup
from fastapi.testclient import TestClient
from PIL import Image

from app.db import write_session
from app.models.common import utcnow
from app.repos import runs as run_rows
from app.runs.execute import execute_run
from tests.datasets_zips import make_zip, upload
from tests.test_runs_execute import WORKER, row
from tests.test_runs_pages import form_data
from tests.web import csrf

TINY = {"image_size": 16, "epochs": 1, "batch_size": 8, "width": 8, "val_fraction": 0.25}


def colour_zip() -> bytes:
    """Two classes a small net tells apart: reddish and bluish squares, 12 each, as PNGs."""
    entries = []
    for name, base in (("red", (200, 30, 30)), ("blue", (30, 30, 200))):
        for i in range(12):
            image = Image.new("RGB", (20, 20), tuple(min(255, c + 3 * i) for c in base))
            out = io.BytesIO()
            image.save(out, format="PNG")
            entries.append((f"colours/{name}/{i}.png", out.getvalue()))
    return make_zip(entries)


def test_upload_then_run_on_it_trains_on_the_uploaded_classes(db_client: TestClient) -> None:
    dataset = upload(db_client, colour_zip()).json()
    assert dataset["classes"] == {"blue": 12, "red": 12}
    response = db_client.post(
        "/api/runs", json={"dataset": "folder", "dataset_id": dataset["id"], **TINY}
    )
    assert response.status_code == 202, response.text
    run_id = response.json()["id"]
    config = db_client.get(f"/api/runs/{run_id}").json()["config"]
    assert config["dataset"] == "folder"
    assert config["folder"].startswith("uploads/") and config["folder"].endswith(
        f"/{dataset['id']}"
    )
    engine = db_client.app.state.engine
    with write_session(engine) as session:
        assert run_rows.claim(session, run_id=run_id, worker_id=WORKER, now=utcnow())
    settings = db_client.app.state.settings
    status = execute_run(run_id, engine=engine, settings=settings, worker_id=WORKER)
    assert status == "succeeded", row(engine, run_id).error
    run = row(engine, run_id)
    assert run.info["classes"] == ["blue", "red"]
    assert run.info["train_size"] + run.info["val_size"] == 24
    assert run.metrics["classes"] == ["blue", "red"]


def test_another_users_data_set_cannot_be_trained_on(db_client: TestClient) -> None:
    dataset = upload(db_client, colour_zip()).json()
    with TestClient(db_client.app) as other:
        by_id = other.post("/api/runs", json={"dataset": "folder", "dataset_id": dataset["id"]})
        assert by_id.status_code == 422
        assert by_id.json()["detail"] == f"dataset_id: you have no data set {dataset['id']}"
        # Typing the folder's path is refused too (the path is not secret, the data is).
        mine = db_client.post(
            "/api/runs", json={"dataset": "folder", "dataset_id": dataset["id"], **TINY}
        )
        folder = db_client.get(f"/api/runs/{mine.json()['id']}").json()["config"]["folder"]
        for typed in (folder, f"./{folder}", folder.replace("/", "//")):
            by_path = other.post("/api/runs", json={"dataset": "folder", "folder": typed})
            assert by_path.status_code == 422, typed
            assert by_path.json()["detail"].startswith("folder: uploaded data sets are chosen")
        # Nor is a folder that holds uploads/: its images would be one class of the run.
        for typed in (".", "./"):
            above = other.post("/api/runs", json={"dataset": "folder", "folder": typed})
            assert above.status_code == 422, typed
            assert above.json()["detail"].startswith("folder: holds everyone's"), typed
        assert other.get("/api/runs").json() == []


def test_run_again_after_deleting_the_data_set_says_it_is_gone(db_client: TestClient) -> None:
    dataset = upload(db_client, colour_zip()).json()
    run = db_client.post("/api/runs", json={"dataset_id": dataset["id"], **TINY}).json()
    folder = db_client.get(f"/api/runs/{run['id']}").json()["config"]["folder"]
    db_client.delete(f"/api/runs/{run['id']}")  # cancelled: the data set may go
    assert db_client.delete(f"/api/datasets/{dataset['id']}").status_code == 204
    again = db_client.post("/api/runs", json={"dataset": "folder", "folder": folder, **TINY})
    assert again.status_code == 422
    detail = again.json()["detail"]
    assert f"none of yours is in '{folder}' (it was deleted" in detail, detail


def test_a_data_set_a_live_run_uses_cannot_be_deleted(db_client: TestClient) -> None:
    dataset = upload(db_client, colour_zip()).json()
    run = db_client.post("/api/runs", json={"dataset_id": dataset["id"], **TINY}).json()
    response = db_client.delete(f"/api/datasets/{dataset['id']}")
    assert response.status_code == 409
    assert f"used by run {run['id']}" in response.json()["detail"]
    assert db_client.delete(f"/api/runs/{run['id']}").json()["status"] == "cancelled"
    assert db_client.delete(f"/api/datasets/{dataset['id']}").status_code == 204


def test_bad_dataset_ids_name_the_field(db_client: TestClient) -> None:
    dataset = upload(db_client, colour_zip()).json()
    for body in (
        {"dataset_id": "1"},
        {"dataset_id": True},
        {"dataset_id": 0},
        {"dataset": "shapes", "dataset_id": dataset["id"]},
        {"dataset": "folder", "folder": "elsewhere", "dataset_id": dataset["id"]},
    ):
        response = db_client.post("/api/runs", json=body)
        assert response.status_code == 422, body
        assert response.json()["detail"].startswith("dataset_id: "), body


def test_the_form_offers_your_data_sets_and_starts_a_run_on_one(db_client: TestClient) -> None:
    dataset = upload(db_client, colour_zip(), name="Colours").json()
    page = BeautifulSoup(
        db_client.get(f"/runs/new?dataset=folder&dataset_id={dataset['id']}").text,
        "html.parser",
    )
    # One choice, the data set by its name (the engine's folder/dataset_id are not shown).
    assert page.select_one("select[name=dataset_id]") is None
    chosen = page.select_one("select[name=dataset] option[selected]")
    assert chosen["value"] == f"upload:{dataset['id']}"
    assert chosen.text.startswith("Colours: your upload, 2 classes, 24 images")
    assert page.select_one("#error-dataset").text == ""
    # The config checks out; its folder line says which data set it is.
    assert "# your data set 'Colours'" in page.select_one("#config-yaml").text
    form = form_data(page)  # what the browser sends: the data set chosen, the rest defaults
    assert form["dataset"] == f"upload:{dataset['id']}"
    form.update(csrf_token=csrf(db_client, "/runs/new"), epochs="1", image_size="16")
    response = db_client.post("/runs", data=form, follow_redirects=False)
    assert response.status_code == 303, response.text
    run_id = int(response.headers["location"].rsplit("/", 1)[1])
    assert db_client.get(f"/api/runs/{run_id}").json()["config"]["folder"].startswith("uploads/")
    listed = BeautifulSoup(db_client.get("/runs").text, "html.parser")
    link = listed.select_one(f'.run-list a[href="/datasets/{dataset["id"]}"]')
    assert link is not None and link.text == "Colours"
    assert link.parent.text == "Colours (your upload)"  # not the engine's "folder"
    # The run's title, and Run again, name the data set as the learner does.
    assert "smallcnn on Colours" in db_client.get(f"/runs/{run_id}").text
    again = BeautifulSoup(db_client.get(f"/runs/new?from={run_id}").text, "html.parser")
    assert again.select_one("select[name=dataset] option[selected]")["value"] == (
        f"upload:{dataset['id']}"
    )
    with TestClient(db_client.app) as other:
        token = csrf(other, "/runs/new")
        form["csrf_token"] = token
        refused = other.post("/runs", data=form, follow_redirects=False)
        assert refused.status_code == 422
        message = BeautifulSoup(refused.text, "html.parser").select_one("#error-dataset")
        assert message.text == f"dataset: you have no data set {dataset['id']}"
