"""Alembic migrations: they build the schema the models describe, on both databases."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlmodel import SQLModel

import app.models  # noqa: F401
from app.migrate import alembic_config, upgrade
from app.settings import ROOT
from tests.conftest import POSTGRES_ADMIN_URL


def test_migrations_match_the_models(database_url: str) -> None:
    upgrade(database_url)
    engine = sqlalchemy.create_engine(database_url)
    with engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), SQLModel.metadata)
    engine.dispose()
    assert diff == []


def test_cvprep_db_upgrade_creates_the_sqlite_file(tmp_path: Path) -> None:
    env = {"DATA_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [sys.executable, "-m", "app.cli", "db", "upgrade"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    engine = sqlalchemy.create_engine(f"sqlite:///{tmp_path / 'cvprep.sqlite3'}")
    with engine.connect() as connection:
        tables = set(sqlalchemy.inspect(connection).get_table_names())
        journal = connection.exec_driver_sql("PRAGMA journal_mode").scalar()
    engine.dispose()
    assert {
        "user",
        "card_state",
        "review_log",
        "draft",
        "login_attempt",
        "browser_session",
        "alembic_version",
    } <= tables
    assert journal == "wal"


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database with no tables yet: a fresh SQLite file, or a new PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'fresh.sqlite3'}"
        return
    request.getfixturevalue("postgres_url")  # skips (or fails in CI) without PostgreSQL
    name = f"cvprep_migrate_{os.getpid()}_{int(time.time() * 1000)}"
    admin = sqlalchemy.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    yield admin.url.set(database=name).render_as_string(hide_password=False)
    with admin.connect() as connection:
        connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


def test_0002_keeps_the_data_folds_names_and_repairs_unusable_cards(
    empty_database_url: str,
) -> None:
    url = empty_database_url
    upgrade(url, "0001")
    engine = sqlalchemy.create_engine(url)
    when = datetime(2026, 1, 5, 12, tzinfo=UTC)
    rows = {
        "user": [
            {"username": "Ada", "password_hash": "h1", "created_at": when},
            {"username": "ada", "password_hash": "h2", "created_at": when},
            {"username": None, "password_hash": None, "created_at": when},
        ],
    }
    user = sqlalchemy.table(
        "user",
        sqlalchemy.column("id"),
        sqlalchemy.column("username"),
        sqlalchemy.column("password_hash"),
        sqlalchemy.column("created_at"),
    )
    card = sqlalchemy.table("card_state", *(sqlalchemy.column(c) for c in CARD_COLUMNS))
    review = sqlalchemy.table("review_log", *(sqlalchemy.column(c) for c in REVIEW_COLUMNS))
    good_card = {
        "user_id": 1,
        "item_id": "pool-max-gradient",
        "question_slug": "pooling",
        "state": 2,
        "step": None,
        "stability": 3.0,
        "difficulty": 5.0,
        "due": when,
        "last_review": when,
        "reps": 2,
        "lapses": 0,
    }
    broken_card = {**good_card, "user_id": 2, "stability": 0.0}
    snapshot = (
        '{"state": 1, "step": 0, "stability": null, "difficulty": null, '
        '"due": "2026-01-05T12:00:00+00:00", "last_review": null, "reps": 0, "lapses": 0}'
    )
    base_review = {
        "user_id": 1,
        "item_id": "pool-max-gradient",
        "question_slug": "pooling",
        "rating": 3,
        "answer": "0",
        "mode": "api",
        "reviewed_at": when,
    }
    with engine.begin() as connection:
        connection.execute(user.insert(), rows["user"])
        connection.execute(card.insert(), [good_card, broken_card])
        connection.execute(
            review.insert(),
            [
                {**base_review, "uid": "a" * 32, "card_before": snapshot},
                {**base_review, "uid": "b" * 32, "card_before": "oops", "user_id": 2},
            ],
        )
    upgrade(url)
    with engine.begin() as connection:
        users = connection.exec_driver_sql(
            'SELECT id, username, username_key FROM "user" ORDER BY id'
        ).all()
        cards = connection.exec_driver_sql(
            "SELECT user_id, state, stability, reps FROM card_state ORDER BY user_id"
        ).all()
        befores = connection.exec_driver_sql(
            "SELECT uid, card_before FROM review_log ORDER BY uid"
        ).all()
        # No id is handed out twice: delete the newest user, add one, compare.
        connection.exec_driver_sql('DELETE FROM "user" WHERE id = 3')
        connection.execute(user.insert(), [{"username": None, "created_at": when}])
        newest = connection.exec_driver_sql('SELECT max(id) FROM "user"').scalar_one()
    engine.dispose()
    assert [tuple(u) for u in users] == [(1, "Ada", "ada"), (2, "ada-2", "ada-2"), (3, None, None)]
    assert [tuple(c) for c in cards] == [(1, 2, 3.0, 2), (2, 1, None, 0)]  # the unusable one reset
    assert [tuple(b) for b in befores] == [("a" * 32, snapshot), ("b" * 32, None)]
    assert newest == 4


CARD_COLUMNS = (
    "user_id",
    "item_id",
    "question_slug",
    "state",
    "step",
    "stability",
    "difficulty",
    "due",
    "last_review",
    "reps",
    "lapses",
)
REVIEW_COLUMNS = (
    "uid",
    "user_id",
    "item_id",
    "question_slug",
    "rating",
    "answer",
    "mode",
    "reviewed_at",
    "card_before",
)


def test_0004_adds_the_choice_order_and_keeps_the_reviews(empty_database_url: str) -> None:
    url = empty_database_url
    upgrade(url, "0002")
    engine = sqlalchemy.create_engine(url)
    when = datetime(2026, 1, 5, 12, tzinfo=UTC)
    user = sqlalchemy.table("user", sqlalchemy.column("created_at"))
    review = sqlalchemy.table("review_log", *(sqlalchemy.column(c) for c in REVIEW_COLUMNS))
    with engine.begin() as connection:
        connection.execute(user.insert(), [{"created_at": when}])
        connection.execute(
            review.insert(),
            [
                {
                    "uid": "c" * 32,
                    "user_id": 1,
                    "item_id": "pool-max-gradient",
                    "question_slug": "pooling",
                    "rating": 3,
                    "answer": "0",
                    "mode": "practice",
                    "reviewed_at": when,
                    "card_before": None,
                }
            ],
        )
    upgrade(url)
    with engine.begin() as connection:
        rows = connection.exec_driver_sql("SELECT uid, answer, choice_order FROM review_log").all()
        connection.exec_driver_sql("UPDATE review_log SET choice_order = '2,0,3,1'")
    engine.dispose()
    # Reviews from before were shown in the file's order: NULL says exactly that.
    assert [tuple(r) for r in rows] == [("c" * 32, "0", None)]


def test_0003_adds_runs_that_go_with_their_user_and_never_reuse_an_id(
    empty_database_url: str,
) -> None:
    url = empty_database_url
    upgrade(url, "0002")
    engine = sqlalchemy.create_engine(url)
    when = datetime(2026, 11, 30, 12, tzinfo=UTC)
    user = sqlalchemy.table("user", sqlalchemy.column("id"), sqlalchemy.column("created_at"))
    with engine.begin() as connection:
        connection.execute(user.insert(), [{"created_at": when}, {"created_at": when}])
    upgrade(url, "0003")
    run = sqlalchemy.table(
        "run",
        *(
            sqlalchemy.column(c)
            for c in (
                "id",
                "owner_id",
                "config",
                "status",
                "epoch",
                "epochs",
                "step",
                "steps",
                "curve",
                "history",
                "created_at",
                "attempt",
                "cancel_requested",
            )
        ),
    )
    row = {
        "config": '{"epochs": 1}',
        "status": "queued",
        "epoch": 0,
        "epochs": 1,
        "step": 0,
        "steps": 0,
        "curve": "[]",
        "history": "[]",
        "created_at": when,
        "attempt": 0,
        "cancel_requested": False,
    }
    with engine.begin() as connection:
        if connection.dialect.name == "sqlite":
            connection.exec_driver_sql("PRAGMA foreign_keys=ON")
        connection.execute(run.insert(), [{**row, "owner_id": 1}, {**row, "owner_id": 2}])
        connection.exec_driver_sql("DELETE FROM run WHERE id = 2")
        connection.execute(run.insert(), [{**row, "owner_id": 1}])
        newest = connection.exec_driver_sql("SELECT max(id) FROM run").scalar_one()
        connection.exec_driver_sql('DELETE FROM "user" WHERE id = 1')
        left = connection.exec_driver_sql("SELECT count(*) FROM run").scalar_one()
    assert newest == 3  # the deleted run's id (its folder's name) is not handed out again
    assert left == 0  # a user's runs go with the user
    command.downgrade(alembic_config(url), "0002")
    with engine.connect() as connection:
        assert "run" not in sqlalchemy.inspect(connection).get_table_names()
    engine.dispose()
    upgrade(url)


def test_0008_names_no_skipped_files_for_data_sets_from_before(empty_database_url: str) -> None:
    url = empty_database_url
    upgrade(url, "0007")
    engine = sqlalchemy.create_engine(url)
    when = datetime(2026, 12, 8, 10, tzinfo=UTC)
    with engine.begin() as connection:
        connection.execute(
            sqlalchemy.table("user", sqlalchemy.column("created_at")).insert(),
            [{"created_at": when}],
        )
        dataset = sqlalchemy.table(
            "dataset",
            *(
                sqlalchemy.column(c)
                for c in ("owner_id", "name", "folder", "created_at", "classes", "images")
            ),
            sqlalchemy.column("skipped"),
            sqlalchemy.column("disk_bytes"),
        )
        connection.execute(
            dataset.insert(),
            [
                {
                    "owner_id": 1,
                    "name": "pets",
                    "folder": "uploads/1/1",
                    "created_at": when,
                    "classes": '{"cat": 2, "dog": 2}',
                    "images": 4,
                    "skipped": '{"hidden or system file": 1}',
                    "disk_bytes": 10,
                }
            ],
        )
    upgrade(url)
    with engine.connect() as connection:
        names = connection.execute(
            sqlalchemy.select(sqlalchemy.column("skipped_names", sqlalchemy.JSON)).select_from(
                sqlalchemy.table("dataset")
            )
        ).scalar_one()
    assert names == {}  # the counts stay; no names were kept then
    command.downgrade(alembic_config(url), "0007")
    with engine.connect() as connection:
        columns = {c["name"] for c in sqlalchemy.inspect(connection).get_columns("dataset")}
    engine.dispose()
    assert "skipped_names" not in columns and "skipped" in columns
