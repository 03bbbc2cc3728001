"""Shared fixtures: the real question bank, an app client, a temp questions dir, a live server."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from app.content import QuestionBank, load_questions
from app.main import create_app
from app.settings import ROOT, Settings

QUESTIONS_DIR = ROOT / "questions"


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


@pytest.fixture
def questions_copy(tmp_path: Path) -> Path:
    """A writable copy of the real questions, for tests that break one file."""
    target = tmp_path / "questions"
    shutil.copytree(QUESTIONS_DIR, target)
    return target


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`cvprep serve` in its own process, as a user runs it."""
    port = _free_port()
    env = {**os.environ, "DATA_DIR": str(tmp_path_factory.mktemp("live-data"))}
    env.pop("DATABASE_URL", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "serve", "--port", str(port), "--log-level", "warning"],
        cwd=ROOT,
        env=env,
    )
    base_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{base_url}/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError("cvprep serve did not come up")
        time.sleep(0.2)
    yield base_url
    process.terminate()
    process.wait(timeout=10)
