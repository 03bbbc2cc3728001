"""Guests left behind are deleted with everything they own, files included; an account's
things, a guest still signed in somewhere and a guest with a run in the queue are kept.
SQLite and PostgreSQL; the CLI on SQLite."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from fastapi.testclient import TestClient
from sqlmodel import col, select

from app.db import read_session
from app.guest_sweep import sweep_guests
from app.models import Dataset, Run, User
from app.models.common import utcnow
from tests.datasets_zips import classes_zip, upload
from tests.test_capacity_pages import finished_with, report
from tests.test_runs_api import TINY
from tests.web import csrf, login, register


def _owned_by(client: TestClient, user_id: int) -> tuple[list[int], list[int]]:
    """(data set ids, run ids) of a user, read from the database."""
    with read_session(client.app.state.engine) as session:
        datasets = session.exec(select(Dataset.id).where(col(Dataset.owner_id) == user_id)).all()
        runs = session.exec(select(Run.id).where(col(Run.owner_id) == user_id)).all()
    return [int(i) for i in datasets if i], [int(i) for i in runs if i]


def _user_ids(client: TestClient) -> set[int]:
    with read_session(client.app.state.engine) as session:
        return {int(i) for i in session.exec(select(User.id)).all() if i}


def _work(client: TestClient) -> tuple[int, int]:
    """A data set (with a thumbnail made) and an ended run with files on disk: (ids)."""
    made = upload(client, classes_zip({"a": 2, "b": 2}))
    assert made.status_code == 201, made.text
    dataset_id = made.json()["id"]
    assert client.get(f"/datasets/{dataset_id}/images/0/0").status_code == 200
    run_id = finished_with(client, report(3)[0])
    folder = client.app.state.settings.runs_dir / str(run_id)
    folder.mkdir(parents=True)
    (folder / "metrics.json").write_text("{}")
    return dataset_id, run_id


def test_a_guest_left_behind_is_swept_with_its_files(
    db_client: TestClient, other_client: TestClient
) -> None:
    app = db_client.app
    settings = app.state.settings
    engine = app.state.engine
    # The account, with its own data set and run.
    assert register(other_client, "keeper").status_code == 303
    kept_dataset, kept_run = _work(other_client)
    # A guest's work in another browser, which then logs in to the account without moving it.
    guest_dataset, guest_run = _work(db_client)
    with read_session(engine) as session:
        account_id = session.exec(select(User.id).where(User.username == "keeper")).one()
    assert account_id is not None
    guest_id = next(iter(_user_ids(db_client) - {account_id}))
    guest_folder = settings.uploads_dir / str(guest_id)
    assert guest_folder.is_dir() and (settings.data_dir / "thumbs" / str(guest_dataset)).is_dir()
    assert login(db_client, "keeper", move=False).status_code == 303
    # A guest still signed in, and a guest with a queued run whose browser logged out.
    with TestClient(app) as signed_in, TestClient(app) as queued:
        assert (
            signed_in.post(
                "/api/quiz/answers", json={"item_id": "pool-gap-card", "answer": "good"}
            ).status_code
            == 200
        )
        assert queued.post("/api/runs", json=TINY).status_code == 202
        assert queued.post("/logout", data={"csrf_token": csrf(queued)}).status_code in (
            200,
            303,
        )
    before = _user_ids(db_client)
    assert len(before) == 4

    assert sweep_guests(engine, settings).guests == 0  # not yet: within GUEST_RETENTION_HOURS
    later = utcnow() + timedelta(hours=settings.guest_retention_hours + 1)
    swept = sweep_guests(engine, settings, now=later)

    assert (swept.guests, swept.datasets, swept.runs) == (1, 1, 1)
    assert _user_ids(db_client) == before - {guest_id}
    assert _owned_by(db_client, guest_id) == ([], [])
    assert not guest_folder.exists()
    assert not (settings.runs_dir / str(guest_run)).exists()
    assert not (settings.data_dir / "thumbs" / str(guest_dataset)).exists()
    # The account's things are untouched, in the database, on disk and on its pages.
    assert _owned_by(other_client, account_id) == ([kept_dataset], [kept_run])
    assert (settings.runs_dir / str(kept_run) / "metrics.json").is_file()
    assert [d["id"] for d in other_client.get("/api/datasets").json()] == [kept_dataset]
    assert db_client.get(f"/datasets/{kept_dataset}/images/0/0").status_code == 200
    # A second sweep finds nothing more to do.
    assert sweep_guests(engine, settings, now=later).guests == 0


def test_the_sweep_command(tmp_path: Path, monkeypatch, capsys) -> None:
    """`cvprep sweep-guests --retention-hours 0`: a guest whose session ended goes at once."""
    from app.cli import main
    from app.main import create_app
    from app.settings import Settings

    settings = Settings(DATA_DIR=tmp_path / "data", SECRET_KEY="k")
    with TestClient(create_app(settings)) as client:
        made = upload(client, classes_zip({"a": 2, "b": 2}))
        assert made.status_code == 201
        assert client.post("/logout", data={"csrf_token": csrf(client)}).status_code == 200
    monkeypatch.setenv("DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("DATABASE_URL", "")
    assert main(["sweep-guests"]) == 0  # within GUEST_RETENTION_HOURS: kept
    assert "Deleted 0 guests" in capsys.readouterr().out
    assert main(["sweep-guests", "--retention-hours", "0"]) == 0
    assert "Deleted 1 guest left behind (1 data sets, 0 runs)." in capsys.readouterr().out
    assert [p.name for p in settings.uploads_dir.iterdir() if p.name != ".incoming"] == []
