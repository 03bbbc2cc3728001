"""An unexpected error: still JSON under /api, the error page elsewhere, the security headers,
an error id that is also in the log, and the connection kept (against a real server too)."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient

from app.main import create_app
from app.settings import Settings
from benchmarks.load import serving

router = APIRouter()


@router.get("/api/fails")
def failing_api() -> dict:
    raise RuntimeError("a bug in an API route")


@router.get("/fails")
def failing_page() -> dict:
    raise RuntimeError("a bug in a page route")


@pytest.fixture
def failing_app(tmp_path: Path) -> FastAPI:
    """The real app with two routes that hit a bug (as any route might)."""
    app = create_app(Settings(DATA_DIR=tmp_path / "data", SECRET_KEY="k"))
    app.include_router(router)
    return app


def _security_headers(response) -> None:
    assert "default-src 'self'" in response.headers["content-security-policy"]
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["cache-control"] == "no-store"


def test_an_api_bug_is_a_json_500_with_headers_and_a_logged_id(
    failing_app: FastAPI, caplog: pytest.LogCaptureFixture
) -> None:
    with (
        caplog.at_level(logging.ERROR, logger="cvprep.errors"),
        TestClient(failing_app) as client,
    ):
        response = client.get("/api/fails")
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/json"
    _security_headers(response)
    error_id = response.headers["x-error-id"]
    assert re.fullmatch(r"[0-9a-f]{12}", error_id)
    assert error_id in response.json()["detail"]
    logged = [r for r in caplog.records if error_id in r.getMessage()]
    assert logged and logged[0].exc_info and "a bug in an API route" in str(logged[0].exc_info[1])


def test_a_page_bug_shows_the_error_page_with_the_id(failing_app: FastAPI) -> None:
    with TestClient(failing_app) as client:
        response = client.get("/fails")
    assert response.status_code == 500
    assert response.headers["content-type"].startswith("text/html")
    _security_headers(response)
    assert response.headers["x-error-id"] in response.text
    assert "Something went wrong" in response.text


def test_a_405_names_the_allowed_methods(client: TestClient) -> None:
    response = client.delete("/api/quiz/answers")
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert response.json() == {"detail": "Method Not Allowed"}


def test_a_real_server_answers_a_400_digit_integer_and_keeps_the_connection(
    tmp_path: Path,
) -> None:
    """The issue's 500s were plain text and dropped the connection; now there is no 500."""
    env = {"DATA_DIR": str(tmp_path), "DATABASE_URL": "", "SECRET_KEY": "k"}
    body = '{"item_id": "conv-output-floor", "answer": 1' + "0" * 400 + "}"
    with serving(env) as (_, base_url), httpx.Client(base_url=base_url) as client:
        response = client.post(
            "/api/quiz/answers", content=body, headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 422
        assert response.json()["detail"].startswith("answer")
        assert "default-src 'self'" in response.headers["content-security-policy"]
        assert client.get("/healthz").status_code == 200  # the same keep-alive connection
