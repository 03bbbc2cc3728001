"""The training pages as a learner meets them, over HTTP: a delete asks first and says what
depends on it, a refused launch goes back where the learner was, Compare with one run
explains itself, runs are labelled with their experiment and arm, a cancelled run says
where its results come from, and a default run's config is shown whole."""

from __future__ import annotations

import re

import yaml
from fastapi.testclient import TestClient

from app.db import write_session
from app.experiments.presets import PRESETS
from app.models import Run
from app.worker.training import RunConfig
from tests.datasets_zips import classes_zip, upload
from tests.test_runs_api import TINY, train_now
from tests.web import csrf, soup


def cancelled_experiment(client: TestClient, preset: str) -> dict:
    """An experiment of `preset` whose runs were all cancelled while queued (ended, so they
    can be deleted, and the next experiment may start)."""
    made = client.post("/api/experiments", json={"preset": preset}).json()
    for run_id in made["runs"]:
        assert client.delete(f"/api/runs/{run_id}").status_code == 202
    return made


def test_deleting_a_run_asks_first_names_its_experiment_and_the_question_falls_back(
    client: TestClient,
) -> None:
    older = cancelled_experiment(client, "residual")
    newer = cancelled_experiment(client, "residual")
    run_id = newer["runs"][0]
    run_page = soup(client.get(f"/runs/{run_id}"))
    assert run_page.select_one("#delete-run")["href"] == f"/runs/{run_id}/delete"
    assert not run_page.select(f"form[action='/runs/{run_id}/delete']")  # one click deletes nothing
    confirm = soup(client.get(f"/runs/{run_id}/delete"))
    assert confirm.h1.text == f"Delete run {run_id}?"
    link = confirm.select_one(f".confirm-depends a[href='/experiments/{newer['id']}']")
    assert link is not None and link.text == f"Experiment {newer['id']}"
    assert (
        "question page shows your latest experiment" in confirm.select_one(".confirm-depends").text
    )
    form = confirm.select_one("form.confirm-delete")
    assert form["action"] == f"/runs/{run_id}/delete" and form["method"] == "post"
    assert confirm.select_one("#keep-it")["href"] == f"/runs/{run_id}"
    token = form.select_one("input[name=csrf_token]")["value"]
    deleted = client.post(form["action"], data={"csrf_token": token}, follow_redirects=False)
    assert deleted.status_code == 303
    assert client.get(f"/runs/{run_id}").status_code == 404
    page = soup(client.get("/questions/residual-connections"))
    latest = page.select_one("#preset-residual .experiment-latest a")
    assert latest["href"] == f"/experiments/{older['id']}"
    assert f"/experiments/{newer['id']}" in [
        a["href"] for a in page.select("#preset-residual .hint a")
    ]


def test_a_live_run_cannot_be_deleted_from_its_confirmation(client: TestClient) -> None:
    run_id = client.post("/api/runs", json=TINY).json()["id"]
    confirm = soup(client.get(f"/runs/{run_id}/delete"))
    assert "queued: cancel it before deleting it" in confirm.select_one("[role=alert]").text
    assert confirm.select_one("form.confirm-delete") is None


def test_deleting_a_data_set_asks_first_and_names_the_runs_on_it(client: TestClient) -> None:
    client.get("/")
    dataset = upload(client, classes_zip({"a": 4, "b": 4}), name="letters").json()
    run_id = client.post(
        "/api/runs", json={**TINY, "dataset": "folder", "dataset_id": dataset["id"]}
    ).json()["id"]
    page = soup(client.get(f"/datasets/{dataset['id']}"))
    assert page.select_one("#delete-dataset")["href"] == f"/datasets/{dataset['id']}/delete"
    listed = soup(client.get("/datasets"))
    assert not listed.select(f"form[action='/datasets/{dataset['id']}/delete']")
    confirm = soup(client.get(f"/datasets/{dataset['id']}/delete"))
    assert confirm.h1.text == "Delete the data set 'letters'?"
    assert confirm.select_one(f".confirm-depends a[href='/runs/{run_id}']").text == f"Run {run_id}"
    assert "is queued on it" in confirm.select_one("[role=alert]").text  # live: not yet
    assert client.delete(f"/api/runs/{run_id}").status_code == 202
    confirm = soup(client.get(f"/datasets/{dataset['id']}/delete"))
    form = confirm.select_one("form.confirm-delete")
    token = form.select_one("input[name=csrf_token]")["value"]
    assert client.post(form["action"], data={"csrf_token": token}).status_code == 200
    assert client.get(f"/api/datasets/{dataset['id']}").status_code == 404


def test_a_refused_experiment_launch_goes_back_to_its_question_with_what_to_do(
    client: TestClient,
) -> None:
    assert client.post("/api/experiments", json={"preset": "residual"}).status_code == 202
    token = csrf(client, "/questions/class-imbalance")
    page = soup(client.get("/questions/class-imbalance"))
    form = page.select_one("#launch-imbalance").find_parent("form")
    assert form.select_one("input[name=back]")["value"] == "/questions/class-imbalance"
    refused = client.post(
        "/experiments",
        data={"preset": "imbalance", "back": "/questions/class-imbalance", "csrf_token": token},
        follow_redirects=False,
    )
    assert refused.status_code == 303
    location = refused.headers["location"]
    assert location.startswith("/questions/class-imbalance?refused=")
    assert location.endswith("#preset-imbalance")
    for _ in range(2):  # reloading shows the same page
        shown = soup(client.get(location.split("#")[0]))
        message = shown.select_one("#preset-imbalance .launch-refused")
        assert "EXPERIMENT_MAX_LIVE" in message.text
        assert {a["href"] for a in message.select("a")} == {"/runs", "/experiments"}
    # Only this server's own messages are shown: a forged one is ignored.
    forged = soup(client.get("/questions/class-imbalance?refused=WyJpbWJhbGFuY2UiXQ.bad"))
    assert forged.select_one(".launch-refused") is None
    # Without a question to go back to (another page's form), the refusal stays a 422.
    elsewhere = client.post(
        "/experiments", data={"preset": "imbalance", "back": "//evil", "csrf_token": token}
    )
    assert elsewhere.status_code == 422


def test_compare_with_one_ticked_run_explains_itself_on_the_runs_list(
    client: TestClient,
) -> None:
    first = client.post("/api/runs", json=TINY).json()["id"]
    client.post("/api/runs", json=TINY)
    response = client.get(f"/runs/compare?ids={first}")
    assert response.status_code == 422
    page = soup(response)
    assert page.h1.text == "Training runs"
    problem = page.select_one("#compare-problem").text
    assert "you ticked one run" in problem and "Tick at least two" in problem
    assert page.select_one(f"#compare-{first}").has_attr("checked")


def test_runs_list_labels_experiment_runs_and_shows_times_for_the_readers_zone(
    client: TestClient,
) -> None:
    made = client.post("/api/experiments", json={"preset": "pooling"}).json()
    preset = PRESETS["pooling"]
    cells = client.get(f"/api/experiments/{made['id']}").json()["runs"]
    labels = {arm.key: arm.label for arm in preset.arms}
    page = soup(client.get("/runs"))
    for run in cells:
        shown = page.select_one(f"a[href='/runs/{run['id']}']").find_parent("th")
        arm = shown.select_one("a.run-arm")
        assert arm["href"] == f"/experiments/{made['id']}"
        assert arm.text == f"Experiment {made['id']}: {labels[run['arm']]}, seed {run['seed']}"
    for run_id in made["runs"]:
        client.delete(f"/api/runs/{run_id}")  # cancelled while queued: no worker needed
    train_now(client, client.post("/api/runs", json=TINY).json()["id"])
    time = soup(client.get("/runs")).select_one("time[data-local=datetime]")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", time["datetime"])


def test_a_cancelled_run_says_how_many_epochs_finished_and_what_its_results_are(
    client: TestClient,
) -> None:
    run_id = client.post("/api/runs", json={**TINY, "epochs": 8}).json()["id"]
    with write_session(client.app.state.engine) as session:
        run = session.get(Run, run_id)
        run.status, run.epochs, run.epoch = "cancelled", 8, 2
        run.history = [{"epoch": 1, "train_loss": 1.0, "val_loss": 1.1, "val_accuracy": 0.5}]
        session.add(run)
        session.commit()
    page = soup(client.get(f"/runs/{run_id}"))
    assert "1 of 8 epochs finished" in page.select_one(".run-state").text
    stopped = page.select_one(".run-stopped").text
    assert "Stopped after 1 finished epoch:" in stopped
    assert "those of the model at the end of epoch 1" in stopped


def test_a_default_runs_config_is_shown_whole(client: TestClient) -> None:
    run_id = client.post("/api/runs", json={"epochs": 1, "images_per_class": 20}).json()["id"]
    train_now(client, run_id)
    page = soup(client.get(f"/runs/{run_id}"))
    shown = yaml.safe_load(page.select_one("#config-heading").find_next("code").text)
    expected = RunConfig.from_dict({"epochs": 1, "images_per_class": 20}).to_dict()
    assert shown == expected
    devices = [dt for dt in page.select(".run-figures dt") if dt.text == "Device"]
    assert len(devices) == 1


def test_compare_downloads_curves_and_figures_as_csv_with_metrics_json_numbers(
    client: TestClient,
) -> None:
    import csv
    import io
    import json

    ids = [client.post("/api/runs", json={**TINY, "epochs": 2}).json()["id"] for _ in range(2)]
    for run_id in ids:
        train_now(client, run_id)
    page = soup(client.get(f"/runs/compare?ids={ids[0]},{ids[1]}"))
    assert page.select_one("#compare-controls")["hidden"] is not None  # shown by its script
    curves_href = page.select_one("#curves-csv")["href"]
    curves = client.get(curves_href)
    assert curves.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(curves.text)))
    figures = list(
        csv.DictReader(io.StringIO(client.get(page.select_one("#figures-csv")["href"]).text))
    )
    for run_id in ids:
        metrics = json.loads(client.get(f"/api/runs/{run_id}/files/metrics.json").content)
        mine = [r for r in rows if r["run"] == str(run_id)]
        assert [int(r["epoch"]) for r in mine] == [h["epoch"] for h in metrics["history"]]
        for row, entry in zip(mine, metrics["history"], strict=True):
            for key in ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr"):
                assert float(row[key]) == entry[key], key
        figure = next(f for f in figures if f["run"] == str(run_id))
        for key in ("val_accuracy", "val_loss", "macro_f1", "ece", "images_per_s"):
            assert float(figure[key]) == metrics[key], key
    assert client.get("/runs/compare/curves.csv?ids=1").status_code == 422


def test_the_form_estimates_the_duration_from_this_servers_measured_speed(
    client: TestClient,
) -> None:
    from app.runs.estimate import DEFAULT_RATE
    from app.runs.present import duration

    page = soup(client.get("/runs/new"))
    estimate = page.select_one("#run-estimate").text
    config = RunConfig()
    images = round(config.images_per_class * 10 * (1 - config.val_fraction))
    assert f"{images:,} training images per epoch" in estimate
    assert duration(config.epochs * images / DEFAULT_RATE["smallcnn"]) in estimate
    assert "none of your runs of it to measure yet" in estimate and "changes it" in estimate
    run_id = client.post("/api/runs", json=TINY).json()["id"]
    train_now(client, run_id)
    with write_session(client.app.state.engine) as session:
        row = session.get(Run, run_id)
        trained = sum(h["train_images"] for h in row.history)
        seconds = row.seconds
    rate = trained / seconds * (TINY["image_size"] / 32) ** 2
    estimate = soup(client.get("/runs/new")).select_one("#run-estimate").text
    assert "at the speed of your last 1 smallcnn run here" in estimate
    assert duration(config.epochs * images / rate) in estimate
    # The live check sends the estimate out of band, for the values as typed.
    data = {"form": "1", "epochs": "10", "dataset": "shapes"}
    fragment = soup(client.get("/runs/new", params=data, headers={"HX-Request": "true"}))
    assert fragment.select_one("#run-estimate[hx-swap-oob]") is not None


def test_run_again_on_a_deleted_upload_says_it_is_gone(client: TestClient) -> None:
    client.get("/")
    dataset = upload(client, classes_zip({"a": 4, "b": 4}), name="letters").json()
    run_id = client.post(
        "/api/runs", json={**TINY, "dataset": "folder", "dataset_id": dataset["id"]}
    ).json()["id"]
    client.delete(f"/api/runs/{run_id}")
    assert client.delete(f"/api/datasets/{dataset['id']}").status_code == 204
    page = soup(client.get(f"/runs/new?from={run_id}"))
    chosen = page.select_one("#input-dataset option[selected]")
    assert chosen.text == "An upload that is gone (deleted, or not yours)"
    assert page.select_one("#error-dataset").text.startswith("dataset: ")
    assert page.select_one("#config-yaml") is None
