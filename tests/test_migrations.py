"""Alembic migrations: they build the schema the models describe, on both databases."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import sqlalchemy
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlmodel import SQLModel

import app.models  # noqa: F401
from app.migrate import upgrade
from app.settings import ROOT


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
        "alembic_version",
    } <= tables
    assert journal == "wal"
