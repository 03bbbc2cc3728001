"""A run page whose size does not grow with the square of the classes: the top confusions, a
search for one class, the whole matrix as a CSV download; the confusion-cell route for every
class index. The figures come from the engine's own report and are checked with
scikit-learn. SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io

import numpy as np
from bs4 import BeautifulSoup
from fastapi.testclient import TestClient
from sklearn.metrics import confusion_matrix

from app.db import write_session
from app.models.common import utcnow
from app.repos import runs as run_rows
from app.worker.training.metrics import classification_report
from tests.test_runs_api import TINY


def finished_with(client: TestClient, metrics: dict) -> int:
    """A run of the client's user, ended with `metrics` as a worker writes them."""
    run_id = client.post("/api/runs", json=TINY).json()["id"]
    engine = client.app.state.engine
    with write_session(engine) as session:
        assert run_rows.claim(session, run_id=run_id, worker_id="test:1", now=utcnow())
    with write_session(engine) as session:
        assert run_rows.finish(
            session,
            run_id=run_id,
            worker_id="test:1",
            status="succeeded",
            error=None,
            values={"metrics": metrics},
            now=utcnow(),
        )
    return run_id


def report(classes: int, seed: int = 0) -> tuple[dict, np.ndarray, np.ndarray]:
    """The engine's metrics for a noisy classifier of `classes` classes, and its labels and
    predictions."""
    rng = np.random.default_rng(seed)
    y_true = np.repeat(np.arange(classes), 4)
    logits = rng.normal(size=(len(y_true), classes))
    logits[np.arange(len(y_true)), y_true] += 2.5  # right most of the time
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    names = [f"c{i:04d}" for i in range(classes)]
    flat = classification_report(y_true, probs, names)
    flat["val_accuracy"] = flat.pop("accuracy")
    return {**flat, "classes": names}, y_true, probs.argmax(axis=1)


def test_the_run_page_grows_linearly_with_the_classes(db_client: TestClient) -> None:
    sizes = {}
    for classes in (40, 240):
        metrics, _, _ = report(classes)
        run_id = finished_with(db_client, metrics)
        page = db_client.get(f"/runs/{run_id}")
        assert page.status_code == 200
        sizes[classes] = len(page.content)
        soup = BeautifulSoup(page.text, "html.parser")
        assert soup.select_one("#confusion-chart") is None  # no classes² heat map
        rows = soup.select("#confusions-heading ~ .table-wrap tbody tr")
        assert 1 <= len(rows) <= 50
    # 6× the classes: a page that grew with their square would be ~36× larger.
    assert sizes[240] < 8 * sizes[40], sizes


def test_the_top_confusions_search_and_csv_hold_the_true_counts(db_client: TestClient) -> None:
    metrics, y_true, predicted = report(120, seed=3)
    expected = confusion_matrix(y_true, predicted, labels=list(range(120)))
    run_id = finished_with(db_client, metrics)
    soup = BeautifulSoup(db_client.get(f"/runs/{run_id}").text, "html.parser")
    off = expected.copy()
    np.fill_diagonal(off, 0)
    first = soup.select("#confusions-heading ~ .table-wrap tbody tr")[0]
    true_name, predicted_name, count = (c.get_text(strip=True) for c in first.select("th, td")[:3])
    assert int(count) == off.max()
    assert off[int(true_name[1:]), int(predicted_name[1:])] == off.max()
    # One class's row and column, found by part of its name.
    found = db_client.get(f"/runs/{run_id}/confusions", params={"class": "C0007"})
    assert found.status_code == 200
    tables = BeautifulSoup(found.text, "html.parser").select(".class-confusions table")
    row_counts = {
        r.th.get_text(strip=True): int(r.td.get_text(strip=True))
        for r in tables[0].select("tbody tr")
        if r.td and r.td.a
    }
    assert row_counts == {f"c{j:04d}": int(n) for j, n in enumerate(off[7]) if n}
    missing = db_client.get(f"/runs/{run_id}/confusions", params={"class": "zebra"})
    assert missing.status_code == 200 and "No class matches" in missing.text
    # The whole matrix as a download, equal to scikit-learn's.
    download = db_client.get(f"/runs/{run_id}/confusion.csv")
    assert download.status_code == 200 and "attachment" in download.headers["content-disposition"]
    lines = list(csv.reader(io.StringIO(download.text)))
    assert lines[0][1:] == metrics["classes"]
    assert np.array_equal(np.array([[int(v) for v in line[1:]] for line in lines[1:]]), expected)


def test_the_cell_route_answers_for_every_class_index(db_client: TestClient) -> None:
    classes = 1050
    matrix = np.eye(classes, dtype=int).tolist()
    matrix[1049][1000] = 3
    names = [f"k{i}" for i in range(classes)]
    metrics = {"classes": names, "confusion_matrix": matrix, "val_accuracy": 0.99}
    run_id = finished_with(db_client, metrics)
    cell = db_client.get(f"/runs/{run_id}/confusion", params={"true": 1049, "predicted": 1000})
    assert cell.status_code == 200 and "3 images" in cell.text
    outside = db_client.get(f"/runs/{run_id}/confusion", params={"true": 1050, "predicted": 0})
    assert outside.status_code == 422 and "0 to 1049" in outside.text
    page = db_client.get(f"/runs/{run_id}")
    assert page.status_code == 200 and len(page.content) < 500_000
    assert "k1049" in page.text and "1,102,500 cells" in page.text
    other = TestClient(db_client.app)
    assert other.get(f"/runs/{run_id}/confusion.csv").status_code == 404  # the owner's only


def test_an_ended_runs_results_are_rendered_once_and_only_for_its_owner(
    db_client: TestClient, other_client: TestClient
) -> None:
    metrics, _, _ = report(60)
    run_id = finished_with(db_client, metrics)
    first = db_client.get(f"/runs/{run_id}").text
    again = db_client.get(f"/runs/{run_id}").text
    cached = db_client.app.state.run_results
    assert len(cached._pages) == 1

    def results(html: str) -> str:
        return str(BeautifulSoup(html, "html.parser").select_one("#confusions-heading").parent)

    assert results(first) == results(again)  # the same results, from the cache
    assert other_client.get(f"/runs/{run_id}").status_code == 404
    assert db_client.delete(f"/api/runs/{run_id}?purge=true").status_code == 204
    assert db_client.get(f"/runs/{run_id}").status_code == 404


def test_a_kept_run_page_carries_each_browsers_token_and_follows_what_changes(
    db_client: TestClient, other_client: TestClient
) -> None:
    from tests.web import csrf, login, register

    assert register(db_client, "viewer").status_code == 303
    metrics, _, _ = report(3)
    run_id = finished_with(db_client, metrics)
    assert login(other_client, "viewer").status_code == 303  # the same account, a 2nd browser

    def token_in(page: str) -> str:
        body = BeautifulSoup(page, "html.parser").select_one("body")
        return body["hx-headers"].split('"X-CSRF-Token": "', 1)[1].split('"', 1)[0]

    first = db_client.get(f"/runs/{run_id}").text
    again = db_client.get(f"/runs/{run_id}").text
    elsewhere = other_client.get(f"/runs/{run_id}").text
    assert len(db_client.app.state.run_pages._pages) == 1  # kept once, served three times
    assert token_in(first) == token_in(again) == csrf(db_client, "/datasets")
    assert token_in(elsewhere) == csrf(other_client, "/datasets") != token_in(first)
    assert "Fine-tune from this run" not in again
    folder = db_client.app.state.settings.runs_dir / str(run_id)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "checkpoint.pt").write_bytes(b"weights")
    assert "Fine-tune from this run" in db_client.get(f"/runs/{run_id}").text


def test_one_user_is_served_run_pages_at_the_paced_rate(tmp_path) -> None:
    from app.main import create_app
    from app.runs.page_cache import Pace
    from app.settings import Settings

    pace = Pace(rate=10, max_wait=1)
    waits = [pace.reserve(7, now=100.0) for _ in range(21)]
    assert waits[:10] == [(True, 0.0)] * 10  # a second's worth at once
    assert [round(w, 3) for _, w in waits[10:20]] == [round(0.1 * i, 3) for i in range(1, 11)]
    assert waits[20][0] is False and pace.reserve(8, now=100.0) == (True, 0.0)  # per user

    # One view each 100 s, none waiting: a second view is refused at once, naming the setting.
    settings = Settings(
        DATA_DIR=tmp_path / "data", SECRET_KEY="k", RUN_PAGE_RATE=0.01, RUN_PAGE_MAX_WAIT=0
    )
    with TestClient(create_app(settings)) as client, TestClient(client.app) as other:
        run_id = finished_with(client, report(3)[0])
        assert client.get(f"/runs/{run_id}").status_code == 200
        refused = client.get(f"/runs/{run_id}")
        assert refused.status_code == 429 and "RUN_PAGE_RATE" in refused.text
        assert int(refused.headers["retry-after"]) >= 99
        other_run = finished_with(other, report(3)[0])
        assert other.get(f"/runs/{other_run}").status_code == 200  # another user's turn
