"""Shared fixtures: the real question bank, an app client, a temp questions dir, a live server."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import SQLModel

import app.models  # noqa: F401  (every table on SQLModel.metadata)
from app.content import QuestionBank, load_questions
from app.db import make_engine
from app.main import create_app
from app.migrate import upgrade
from app.settings import ROOT, Settings
from benchmarks.load import serving
from tests.web import client_for

# An app or server started by a test trains nothing unless the test asks for a worker
# (RUN_WORKERS=1): a worker process imports torch, seconds of CPU that most tests do not need.
os.environ.setdefault("RUN_WORKERS", "0")
# Every test client comes from one address: the per-address guest limit is lifted unless a
# test sets it (tests/test_capacity_sessions.py does).
os.environ.setdefault("GUEST_MAX_PER_ADDRESS", "1000000")

# The browser fixtures (`browser`, `page`) live beside the Chromium launch code.
pytest_plugins = ["tests.browser"]

QUESTIONS_DIR = ROOT / "questions"
# A PostgreSQL server the tests may create databases on; "none" skips those tests (never in CI).
POSTGRES_ADMIN_URL = os.environ.get(
    "TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


# A Redis the Celery tests may use: this database number, a queue named per test session.
TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/13")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    # A run that collected nothing is a broken run, not a pass: never let exit 5 through.
    if exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(scope="session")
def bank() -> QuestionBank:
    return load_questions(QUESTIONS_DIR)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(DATA_DIR=tmp_path / "data", SECRET_KEY="test-secret-key")


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A DATA_DIR for the training engine, shared by a module's tests, so that a generated
    data set and its cache are made once per module. (A module whose tests need a DATA_DIR of
    their own, or the environment variable set, overrides it.)"""
    return tmp_path_factory.mktemp("data")


@pytest.fixture
def questions_copy(tmp_path: Path) -> Path:
    """A writable copy of the real questions, for tests that break one file."""
    target = tmp_path / "questions"
    shutil.copytree(QUESTIONS_DIR, target)
    return target


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A server on a fresh SQLite database, shared by the browser tests."""
    data_dir = tmp_path_factory.mktemp("live-data")
    with serving({"DATA_DIR": str(data_dir), "DATABASE_URL": ""}) as (_, base_url):
        yield base_url


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session, migrated to the latest revision."""
    if POSTGRES_ADMIN_URL.lower() in ("", "none"):
        if os.environ.get("CI"):
            pytest.fail("CI must run the PostgreSQL tests: TEST_POSTGRES_URL is unset")
        pytest.skip("TEST_POSTGRES_URL=none: PostgreSQL tests skipped")
    name = f"cvprep_test_{os.getpid()}_{int(time.time())}"
    admin = sqlalchemy.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = admin.url.set(database=name).render_as_string(hide_password=False)
    upgrade(url)
    yield url
    with admin.connect() as connection:
        connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


def _truncate(url: str) -> None:
    engine = sqlalchemy.create_engine(url)
    tables = ", ".join(f'"{t.name}"' for t in SQLModel.metadata.sorted_tables)
    with engine.begin() as connection:
        connection.exec_driver_sql(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each database test runs twice: on a fresh SQLite file and on a clean PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'cvprep.sqlite3'}"
    url = request.getfixturevalue("postgres_url")
    _truncate(url)
    return url


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """A database engine on `database_url` (SQLite or PostgreSQL), migrated to the latest
    revision: the same database as `db_settings` and `db_client`."""
    upgrade(database_url)
    made = make_engine(database_url)
    yield made
    made.dispose()


@pytest.fixture
def db_settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        DATA_DIR=tmp_path / "data", DATABASE_URL=database_url, SECRET_KEY="test-secret-key"
    )


@pytest.fixture
def db_client(db_settings: Settings) -> Iterator[TestClient]:
    """A client (one browser: one cookie jar) against the app on SQLite or PostgreSQL."""
    with TestClient(create_app(db_settings)) as test_client:
        yield test_client


@pytest.fixture
def make_client(database_url: str, tmp_path: Path) -> Iterator[Callable[..., TestClient]]:
    """Started clients of apps on `database_url` whose settings take the given overrides (by
    variable name), each stopped when the test ends."""
    opened: list[TestClient] = []

    def make(**overrides: object) -> TestClient:
        client = client_for(database_url, tmp_path, **overrides)
        client.__enter__()
        opened.append(client)
        return client

    yield make
    for client in opened:
        client.__exit__(None, None, None)


@pytest.fixture
def other_client(db_client: TestClient) -> Iterator[TestClient]:
    """A second browser against the same app and database: another user."""
    with TestClient(db_client.app) as test_client:
        yield test_client


def _redis_answers(url: str) -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1).ping())
    except redis.RedisError:
        return False


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Redis for the Celery tests: TEST_REDIS_URL if it answers, otherwise a `redis-server`
    started here on a free port (and stopped at the end); fails clearly if neither works."""
    if _redis_answers(TEST_REDIS_URL):
        yield TEST_REDIS_URL
        return
    server = shutil.which("redis-server")
    if server is None:
        pytest.fail(
            f"No Redis answers at {TEST_REDIS_URL} and redis-server is not installed: "
            "install Redis (Debian: apt-get install redis-server) or set TEST_REDIS_URL"
        )
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    folder = tmp_path_factory.mktemp("redis")
    process = subprocess.Popen(
        [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", str(folder)],
        stdout=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    deadline = time.monotonic() + 10
    while not _redis_answers(url):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"redis-server on port {port} did not start")
        time.sleep(0.1)
    yield url
    process.terminate()
    process.wait(timeout=10)
