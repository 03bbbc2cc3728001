"""The runs JSON API and the run forms: bad input, limits, who may see and change what.

On SQLite and PostgreSQL, through the ASGI app with no worker started (RUN_WORKERS=0): runs
stay queued unless a test trains one itself with `execute_run`, the function a worker calls.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.db import write_session
from app.main import create_app
from app.models.common import utcnow
from app.repos import runs as run_rows
from app.runs.execute import execute_run
from app.settings import Settings
from app.worker.errors import InvalidInput
from app.worker.training import RunConfig
from app.worker.training.config import DATASETS, MODELS
from app.worker.training.models import check_imagenet
from tests.web import csrf, login, logout, register

SMALLEST = {"dataset": "shapes", "model": "smallcnn", "epochs": 1}
TINY = {
    "dataset": "shapes",
    "image_size": 16,
    "images_per_class": 12,
    "num_classes": 3,
    "epochs": 1,
    "batch_size": 8,
    "width": 8,
}


def train_now(client: TestClient, run_id: int) -> None:
    """Train a queued run in this process, as the worker would."""
    engine = client.app.state.engine
    with write_session(engine) as session:
        assert run_rows.claim(session, run_id=run_id, worker_id="test:1", now=utcnow())
    settings = client.app.state.settings
    assert execute_run(run_id, engine=engine, settings=settings, worker_id="test:1") == "succeeded"


@pytest.fixture
def finished(db_client: TestClient) -> int:
    """A run of db_client's user, trained to the end."""
    run_id = db_client.post("/api/runs", json=TINY).json()["id"]
    train_now(db_client, run_id)
    return run_id


def test_the_smallest_body_queues_a_run_with_every_default_filled_in(db_client: TestClient) -> None:
    created = db_client.post("/api/runs", json=SMALLEST)
    assert created.status_code == 202
    run_id = created.json()["id"]
    assert created.json() == {"id": run_id, "status": "queued"}
    body = db_client.get(f"/api/runs/{run_id}").json()
    assert body["config"] == RunConfig.from_dict(SMALLEST).to_dict()
    assert body["status"] == "queued" and body["queue_position"] == 1
    assert body["progress"] == {
        "epoch": 0,
        "epochs": 1,
        "step": 0,
        "steps": 0,
        "loss": None,
        "images_per_s": None,
        "eta_s": None,
    }
    assert body["metrics"] is None and body["error"] is None and body["finished"] is None


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"epochs": 0}, "epochs: expected an integer from 1 to 1000, got 0"),
        ({"epochs": "5"}, "epochs: expected an integer from 1 to 1000, got '5'"),
        ({"lr": "fast"}, "lr: expected a number from 1e-07 to 10, got 'fast'"),
        ({"lr": 10**400}, "lr: must be a number between"),
        ({"batch_norm": "yes"}, "batch_norm: expected true or false, got 'yes'"),
        ({"image_size": 8.5}, "image_size: expected an integer from 8 to 512, got 8.5"),
        ({"colour": "red"}, "colour: unknown field; the fields are "),
        ({"epochs": 1, "warmup_epochs": 3}, "warmup_epochs: must be at most epochs (1), got 3"),
        ({"folder": "cats"}, "folder: only used with dataset 'folder', not 'shapes'"),
        ({"dataset": "folder", "folder": "../etc"}, "folder: must be a relative path"),
        ({"init": "zeros\x00"}, "init: must not contain NUL characters"),
        ({"dataset": "folder", "folder": "a" * 5000}, "folder: at most 200 characters, got 5000"),
    ],
)
def test_an_invalid_field_is_a_422_naming_it_and_nothing_is_queued(
    db_client: TestClient, body: dict, message: str
) -> None:
    response = db_client.post("/api/runs", json=body)
    assert response.status_code == 422
    assert response.json()["detail"].startswith(message)
    assert db_client.get("/api/runs").json() == []


@pytest.mark.parametrize(("field", "valid"), [("dataset", DATASETS), ("model", MODELS)])
def test_an_unknown_data_set_or_model_lists_the_valid_ones(
    db_client: TestClient, field: str, valid: tuple[str, ...]
) -> None:
    response = db_client.post("/api/runs", json={field: "mnist-vgg"})
    assert response.status_code == 422
    assert (
        response.json()["detail"] == f"{field}: expected one of {', '.join(valid)}, got 'mnist-vgg'"
    )


def test_the_body_must_be_json(db_client: TestClient) -> None:
    assert db_client.post("/api/runs", data={"epochs": "1"}).status_code == 415
    broken = db_client.post(
        "/api/runs", content=b"{epochs: 1", headers={"content-type": "application/json"}
    )
    assert broken.status_code == 400 and broken.json()["detail"].startswith("body:")
    listed = db_client.post("/api/runs", json=[1, 2])
    assert listed.status_code == 422 and listed.json()["detail"].startswith("config:")
    nested = db_client.post(
        "/api/runs", content=b"[" * 50_000, headers={"content-type": "application/json"}
    )
    assert nested.status_code == 400
    huge = db_client.post("/api/runs", json={"folder": "x" * 70_000})
    assert huge.status_code == 413
    surrogate = db_client.post(
        "/api/runs",
        content=b'{"dataset": "folder", "folder": "x\\ud800"}',
        headers={"content-type": "application/json"},
    )
    assert surrogate.status_code == 422 and surrogate.json()["detail"].startswith("folder:")


@pytest.fixture
def limited(database_url: str, tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(
        DATA_DIR=tmp_path / "data",
        DATABASE_URL=database_url,
        SECRET_KEY="k",
        RUN_MAX_EPOCHS=3,
        RUN_MAX_IMAGE_SIZE=32,
        RUN_MAX_IMAGES=100,
        RUN_MAX_QUEUED=2,
    )
    with TestClient(create_app(settings)) as client:
        yield client


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"epochs": 4}, "epochs: at most 3 per run here (RUN_MAX_EPOCHS), got 4"),
        ({"image_size": 48}, "image_size: at most 32 px here (RUN_MAX_IMAGE_SIZE), got 48"),
        (
            {"images_per_class": 11},
            "images_per_class: 11 per class × 10 classes is 110 images, more than the limit "
            "of 100 per run (RUN_MAX_IMAGES)",
        ),
    ],
)
def test_a_run_over_a_limit_is_a_422_naming_the_limit(
    limited: TestClient, body: dict, message: str
) -> None:
    response = limited.post("/api/runs", json={"epochs": 1, "images_per_class": 10, **body})
    assert response.status_code == 422
    assert response.json()["detail"] == message


def test_more_live_runs_than_the_limit_is_a_429_naming_it(limited: TestClient) -> None:
    body = {"epochs": 1, "images_per_class": 5}
    first = limited.post("/api/runs", json=body).json()["id"]
    assert limited.post("/api/runs", json=body).status_code == 202
    refused = limited.post("/api/runs", json=body)
    assert refused.status_code == 429
    assert "RUN_MAX_QUEUED = 2" in refused.json()["detail"]
    # Ending one frees a place.
    assert limited.delete(f"/api/runs/{first}").json()["status"] == "cancelled"
    assert limited.post("/api/runs", json=body).status_code == 202


def test_missing_imagenet_weights_is_a_422_with_the_engines_message(
    db_client: TestClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty-torch-home"))
    with pytest.raises(InvalidInput) as expected:
        check_imagenet("resnet18")
    response = db_client.post(
        "/api/runs", json={"model": "resnet18", "init": "imagenet", "epochs": 1}
    )
    assert response.status_code == 422
    cache = str(tmp_path / "empty-torch-home" / "hub")
    assert cache in str(expected.value)  # the engine (and the CLI) name the full path
    assert response.json()["detail"] == str(expected.value).replace(cache, "torch's hub cache")
    assert "cvprep weights fetch resnet18" in response.json()["detail"]


def test_a_refused_folder_does_not_tell_where_data_dir_is(db_client: TestClient) -> None:
    data_dir = db_client.app.state.settings.data_dir
    for folder in ("nowhere", "pets/../../x"):
        response = db_client.post("/api/runs", json={"dataset": "folder", "folder": folder})
        assert response.status_code == 422
        detail = response.json()["detail"]
        assert detail.startswith("folder: ")
        assert str(data_dir) not in detail and str(data_dir.resolve()) not in detail
    missing = db_client.post("/api/runs", json={"dataset": "folder", "folder": "nowhere"})
    assert missing.json()["detail"] == "folder: no folder 'nowhere' in DATA_DIR/datasets"


def test_a_run_starts_only_from_scratch_imagenet_or_the_callers_own_run(
    db_client: TestClient, other_client: TestClient, finished: int
) -> None:
    for init in ("/etc/passwd.pt", "checkpoints/mine.pt", "run:abc"):
        refused = db_client.post("/api/runs", json={**TINY, "init": init})
        assert refused.status_code == 422
        assert refused.json()["detail"].startswith("init: expected scratch, imagenet, or run:<id>")
    theirs = other_client.post("/api/runs", json={**TINY, "init": f"run:{finished}"})
    assert theirs.status_code == 422
    assert theirs.json()["detail"] == f"init: you have no run {finished} to start from"
    mine = db_client.post("/api/runs", json={**TINY, "init": f"run:{finished}"})
    assert mine.status_code == 202


def test_another_users_run_is_404_everywhere(
    db_client: TestClient, other_client: TestClient, finished: int
) -> None:
    base = f"/runs/{finished}"
    token = csrf(other_client, "/runs/new")
    for response in (
        other_client.get(f"/api/runs/{finished}"),
        other_client.delete(f"/api/runs/{finished}"),
        other_client.delete(f"/api/runs/{finished}?purge=true"),
        other_client.get(f"/api/runs/{finished}/files/metrics.json"),
        other_client.get(f"/api/runs/{finished}/files/misclassified/0.png"),
        other_client.get(base),
        other_client.get(f"{base}/confusion?true=0&predicted=1"),
        other_client.get(f"/runs/new?from={finished}&mode=finetune"),
        other_client.post(f"{base}/cancel", data={"csrf_token": token}),
        other_client.post(f"{base}/delete", data={"csrf_token": token}),
    ):
        assert response.status_code == 404, response.request.url
    assert other_client.get("/api/runs").json() == []
    assert f'href="/runs/{finished}"' not in other_client.get("/runs").text
    # The owner still has all of it.
    assert db_client.get(f"/api/runs/{finished}").json()["status"] == "succeeded"
    assert db_client.get(f"/api/runs/{finished}/files/metrics.json").status_code == 200


def test_a_form_post_without_the_csrf_token_is_403_and_changes_nothing(
    db_client: TestClient,
) -> None:
    run_id = db_client.post("/api/runs", json=TINY).json()["id"]
    assert db_client.post("/runs", data={"form": "1", "epochs": "1"}).status_code == 403
    assert db_client.post(f"/runs/{run_id}/cancel", data={}).status_code == 403
    assert db_client.post(f"/runs/{run_id}/delete", data={"csrf_token": "x"}).status_code == 403
    assert [r["status"] for r in db_client.get("/api/runs").json()] == ["queued"]


def test_cancel_of_a_queued_run_is_at_once_and_purge_deletes_it(db_client: TestClient) -> None:
    run_id = db_client.post("/api/runs", json=TINY).json()["id"]
    assert db_client.delete(f"/api/runs/{run_id}?purge=true").status_code == 409
    cancelled = db_client.delete(f"/api/runs/{run_id}")
    assert cancelled.status_code == 202 and cancelled.json() == {
        "id": run_id,
        "status": "cancelled",
    }
    again = db_client.delete(f"/api/runs/{run_id}")
    assert again.status_code == 409 and "purge=true" in again.json()["detail"]
    assert db_client.delete(f"/api/runs/{run_id}?purge=true").status_code == 204
    assert db_client.get(f"/api/runs/{run_id}").status_code == 404


def test_deleting_a_run_removes_its_files(db_client: TestClient, finished: int) -> None:
    folder = db_client.app.state.settings.runs_dir / str(finished)
    assert (folder / "checkpoint.pt").is_file() and (folder / "metrics.json").is_file()
    response = db_client.post(
        f"/runs/{finished}/delete",
        data={"csrf_token": csrf(db_client, f"/runs/{finished}/delete")},  # its confirmation
        follow_redirects=False,
    )
    assert response.status_code == 303 and response.headers["location"] == "/runs"
    assert not folder.exists()
    assert db_client.get(f"/api/runs/{finished}").status_code == 404


def test_only_the_engines_files_are_served(db_client: TestClient, finished: int) -> None:
    folder = db_client.app.state.settings.runs_dir / str(finished)
    (folder / "notes.txt").write_text("private")
    for name in (
        "notes.txt",
        "%2e%2e/%2e%2e/secret_key",
        "misclassified/%2e%2e/metrics.json",
        "misclassified/x.png",
        "config.yaml%00",
    ):
        assert db_client.get(f"/api/runs/{finished}/files/{name}").status_code == 404, name
    metrics = db_client.get(f"/api/runs/{finished}/files/metrics.json")
    assert metrics.status_code == 200 and metrics.json()["status"] == "succeeded"
    assert "attachment" in metrics.headers["content-disposition"]


def test_a_guests_runs_move_into_the_account_it_logs_in_to(
    db_client: TestClient, other_client: TestClient
) -> None:
    assert register(other_client, "ada").status_code == 303
    logout(other_client)
    run_id = db_client.post("/api/runs", json=TINY).json()["id"]  # as a guest
    assert login(db_client, "ada").status_code == 303
    assert [r["id"] for r in db_client.get("/api/runs").json()] == [run_id]


def test_starting_from_a_queued_run_says_it_has_not_trained_yet(db_client: TestClient) -> None:
    queued = db_client.post("/api/runs", json=TINY).json()["id"]  # no worker: it stays queued
    response = db_client.post("/api/runs", json={**TINY, "init": f"run:{queued}"})
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert detail.startswith(f"init: run {queued} is still queued"), detail
    assert "once it has succeeded" in detail and "ended" not in detail
    db_client.delete(f"/api/runs/{queued}")  # cancelled: it ended without a checkpoint
    cancelled = db_client.post("/api/runs", json={**TINY, "init": f"run:{queued}"})
    assert (
        cancelled.json()["detail"]
        == f"init: run {queued} (cancelled) has no checkpoint to start from"
    )
