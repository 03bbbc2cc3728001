"""Experiments and run comparison over HTTP: the API, the pages, ownership and CSRF."""

from __future__ import annotations

from typing import get_args

import pytest
from fastapi.testclient import TestClient

from app.content import QuestionBank
from app.content.schema import ExperimentName
from app.db import write_session
from app.experiments.presets import PRESETS
from app.models.common import utcnow
from app.repos import runs as run_rows
from app.runs.present import duration
from app.worker.training import RunConfig
from tests.test_runs_api import TINY, train_now
from tests.web import csrf, login, register, soup

# --- experiments -------------------------------------------------------------------------------


def test_the_presets_list_names_each_question_and_its_runs(
    client: TestClient, bank: QuestionBank
) -> None:
    listed = client.get("/api/experiments/presets").json()
    assert [p["name"] for p in listed] == list(PRESETS)
    assert len(listed) == 7
    # Every experiment name a question's front matter may use has a preset, and no more.
    assert set(PRESETS) == set(get_args(ExperimentName))
    for preset in listed:
        assert bank.get(preset["question"]) is not None, preset["question"]
        assert preset["name"] in bank.get(preset["question"]).meta.experiments
        assert preset["runs"] == len(preset["configs"]) == len(PRESETS[preset["name"]].plan())
        assert preset["seeds"] >= 3 and preset["design"]
        for config in preset["configs"]:  # every config is a valid run (placeholder aside)
            if config.get("init") == "run:{pretrain}":
                config = {**config, "init": "scratch"}
            RunConfig.from_dict(config)


def test_launch_read_and_ownership(db_client: TestClient, other_client: TestClient) -> None:
    made = db_client.post("/api/experiments", json={"preset": "residual"})
    assert made.status_code == 202
    body = made.json()
    assert len(body["runs"]) == 9  # 3 arms × 3 seeds
    read = db_client.get(f"/api/experiments/{body['id']}").json()
    assert read["preset"] == "residual" and read["question"] == "residual-connections"
    assert read["claim"] == PRESETS["residual"].claim
    assert read["status"] == "queued" and read["seeds"] == 3 and read["size"] == "default"
    assert [r["id"] for r in read["runs"]] == body["runs"]
    labels = [a.label for a in PRESETS["residual"].arms]
    assert [r["label"] for r in read["runs"][:3]] == [f"{label}, seed 0" for label in labels]
    assert [(r["arm"], r["seed"]) for r in read["runs"][3:6]] == [
        ("shallow", 1),
        ("deep", 1),
        ("residual", 1),
    ]
    assert read["finding"]["outcome"] == "pending" and read["finding"]["shown"] is None
    assert read["finding"]["summary"] == "Waiting for the runs: 0 of 9 finished."
    for entry in read["runs"]:
        config = db_client.get(f"/api/runs/{entry['id']}").json()["config"]
        assert config["residual"] is (entry["arm"] == "residual")
        assert config["depth"] == (1 if entry["arm"] == "shallow" else 4)
        assert config["seed"] == config["data_seed"] == entry["seed"]
    other_client.get("/")  # a session of its own
    assert other_client.get(f"/api/experiments/{body['id']}").status_code == 404
    assert other_client.get(f"/experiments/{body['id']}").status_code == 404
    page = soup(db_client.get(f"/experiments/{body['id']}"))
    assert PRESETS["residual"].claim in page.text
    assert page.select_one("#experiment-status")["hx-trigger"] == "load delay:1s"


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({"preset": "nonsense"}, 422, "preset: expected one of pooling, residual"),
        ({}, 422, "preset: expected one of"),
        ({"preset": "residual", "extra": 1}, 422, '{"preset": NAME'),
        (["residual"], 422, '{"preset": NAME'),
        ({"preset": "residual", "size": "huge"}, 422, "size: expected default, full or test"),
    ],
)
def test_bad_launches_are_refused_naming_the_field(
    client: TestClient, body: object, status: int, words: str
) -> None:
    refused = client.post("/api/experiments", json=body)
    assert refused.status_code == status
    assert words in refused.json()["detail"]
    assert client.get("/api/runs").json() == []


def test_a_launch_needs_json_and_the_form_needs_csrf(client: TestClient) -> None:
    assert client.post("/api/experiments", data={"preset": "residual"}).status_code == 415
    assert client.post("/experiments", data={"preset": "residual"}).status_code == 403
    assert client.get("/api/runs").json() == []


def test_a_second_live_experiment_is_refused_naming_the_limit(client: TestClient) -> None:
    assert client.post("/api/experiments", json={"preset": "residual"}).status_code == 202
    refused = client.post("/api/experiments", json={"preset": "imbalance"})
    assert refused.status_code == 422
    assert "EXPERIMENT_MAX_LIVE" in refused.json()["detail"]
    assert len(client.get("/api/runs").json()) == 9  # nothing more created


def test_the_question_page_launches_a_preset_and_shows_the_latest_result(
    client: TestClient,
) -> None:
    page = soup(client.get("/questions/residual-connections"))
    button = page.select_one("#launch-residual")
    assert button is not None and "Run it" in button.text
    form = button.find_parent("form")
    assert form["action"] == "/experiments" and form["method"] == "post"
    launched = client.post(
        "/experiments",
        data={"preset": "residual", "csrf_token": csrf(client, "/questions/residual-connections")},
        follow_redirects=False,
    )
    assert launched.status_code == 303
    experiment_url = launched.headers["location"]
    assert experiment_url.startswith("/experiments/")
    page = soup(client.get("/questions/residual-connections"))
    latest = page.select_one("#preset-residual .experiment-latest")
    assert latest is not None
    assert latest.select_one("a")["href"] == experiment_url
    assert "Pending." in latest.text
    assert "Run it again" in page.select_one("#launch-residual").text


# --- compare -------------------------------------------------------------------------------


@pytest.fixture
def two_runs(db_client: TestClient) -> list[int]:
    ids = [
        db_client.post("/api/runs", json=TINY).json()["id"],
        db_client.post("/api/runs", json={**TINY, "downsample": "avgpool", "lr": 0.01}).json()[
            "id"
        ],
    ]
    for run_id in ids:
        train_now(db_client, run_id)
    return ids


def test_compare_json_marks_the_best_and_shows_only_the_differences(
    db_client: TestClient, two_runs: list[int]
) -> None:
    first, second = two_runs
    data = db_client.get(f"/api/runs/compare?ids={first},{second}").json()
    runs = [db_client.get(f"/api/runs/{i}").json() for i in two_runs]
    assert [r["id"] for r in data["runs"]] == two_runs
    assert data["config"]["differ"] == {"downsample": ["maxpool", "avgpool"], "lr": [0.003, 0.01]}
    assert data["config"]["same"]["epochs"] == 1 and "downsample" not in data["config"]["same"]
    accuracies = [r["metrics"]["val_accuracy"] for r in runs]
    best = max(accuracies)
    assert data["metrics"]["best"]["val_accuracy"] == [
        i for i, a in zip(two_runs, accuracies, strict=True) if a == best
    ]
    losses = [r["metrics"]["val_loss"] for r in runs]
    assert data["metrics"]["best"]["val_loss"] == [
        i for i, v in zip(two_runs, losses, strict=True) if v == min(losses)
    ]
    classes = runs[0]["metrics"]["classes"]
    assert data["per_class_recall"]["classes"] == classes
    for index, name in enumerate(classes):
        assert data["per_class_recall"]["recall"][name] == [
            r["metrics"]["per_class"][index]["recall"] for r in runs
        ]
    assert [len(points) for points in data["curves"].values()] == [1, 1]


def test_compare_page_shows_curves_tables_and_folds_the_same_fields(
    db_client: TestClient, two_runs: list[int]
) -> None:
    page = soup(db_client.get(f"/runs/compare?ids={two_runs[0]},{two_runs[1]}"))
    assert page.select_one("#compare-accuracy-chart") is not None
    assert page.select_one("#compare-loss-chart") is not None
    differs = [tr.th.text for tr in page.select("table.compare-config tr.differs")]
    assert differs == ["downsample", "lr"]
    folded = page.select_one("details.compare-same")
    assert folded is not None and not folded.has_attr("open")
    assert "epochs" in folded.text
    assert page.select("table.compare-metrics td.best")
    assert len(page.select("table.compare-recall tbody tr")) == 3
    # The runs list's checkboxes send ids=1&ids=2, which the page takes too.
    listed = soup(db_client.get("/runs"))
    assert listed.select_one("form.compare-form")["action"] == "/runs/compare"
    assert len(listed.select("input[name=ids][type=checkbox]")) == 2
    repeated = db_client.get(f"/runs/compare?ids={two_runs[0]}&ids={two_runs[1]}")
    assert repeated.status_code == 200


def test_comparing_another_users_run_or_bad_ids_is_refused(
    db_client: TestClient, other_client: TestClient, two_runs: list[int]
) -> None:
    ids = ",".join(map(str, two_runs))
    other_client.get("/")
    theirs = other_client.post("/api/runs", json=TINY).json()["id"]
    mixed = f"{two_runs[0]},{theirs}"
    for url in (f"/api/runs/compare?ids={mixed}", f"/runs/compare?ids={mixed}"):
        assert db_client.get(url).status_code == 404
    assert other_client.get(f"/api/runs/compare?ids={ids}").status_code == 404
    for bad in ("", str(two_runs[0]), f"{two_runs[0]},x", "1,2,3,4,5,6,7,8,9", "0,1", "-1,2"):
        response = db_client.get(f"/api/runs/compare?ids={bad}")
        assert response.status_code == 422, bad
        assert response.json()["detail"].startswith("ids")
        assert db_client.get(f"/runs/compare?ids={bad}").status_code == 422
    assert db_client.get("/api/runs/compare").status_code == 422


def test_a_guests_experiment_moves_with_it_into_the_account_it_logs_into(
    db_client: TestClient, other_client: TestClient
) -> None:
    assert register(other_client, "ada").status_code == 303
    made = db_client.post("/api/experiments", json={"preset": "batchnorm"}).json()
    assert login(db_client, "ada").status_code == 303
    read = db_client.get(f"/api/experiments/{made['id']}")
    assert read.status_code == 200 and [r["id"] for r in read.json()["runs"]] == made["runs"]
    assert other_client.get(f"/api/experiments/{made['id']}").status_code == 200


def test_a_running_run_shows_its_epoch_and_time_left(client: TestClient) -> None:
    made = client.post("/api/experiments", json={"preset": "residual"}).json()
    # Take the first run and report progress as a worker does (no worker runs in this test).
    with write_session(client.app.state.engine) as session:
        run_id = run_rows.claim_next(session, worker_id="test-worker", now=utcnow())
        assert run_id == made["runs"][0]
        progress = {"epoch": 2, "epochs": 3, "eta_s": 42.0}
        assert run_rows.report(session, run_id=run_id, worker_id="test-worker", values=progress)
    first, second = client.get(f"/api/experiments/{made['id']}").json()["runs"][:2]
    assert (first["status"], first["epoch"], first["epochs"], first["eta_s"]) == (
        "running",
        2,
        3,
        42.0,
    )
    assert (second["status"], second["epoch"], second["eta_s"]) == ("queued", None, None)
    entries = soup(client.get(f"/experiments/{made['id']}")).select(".experiment-runs li")
    assert f"epoch 2 of 3, about {duration(42.0)} left" in entries[0].text
    assert "epoch" not in entries[1].text
