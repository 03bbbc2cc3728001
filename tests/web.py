"""What many tests do through HTTP: parse a page, read its CSRF token, register, log in and
out, answer a quiz item, count the reviews."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from bs4 import BeautifulSoup
from fastapi.testclient import TestClient
from httpx import Response

from app.main import create_app
from app.settings import Settings

# The `make_client` fixture (conftest): a started client with settings overrides.
MakeClient = Callable[..., TestClient]


def soup(page: Response | str) -> BeautifulSoup:
    """The HTML of `page` (a response, or its text) parsed with the standard-library parser."""
    return BeautifulSoup(page if isinstance(page, str) else page.text, "html.parser")


def csrf(client: TestClient, path: str = "/login") -> str:
    page = BeautifulSoup(client.get(path).text, "html.parser")
    return page.select_one("input[name=csrf_token]")["value"]


def register(
    client: TestClient, username: str, password: str = "correct horse battery", move: bool = True
):
    """Register; `move` ticks the box that moves the guest's data sets, runs and experiments."""
    data = {"csrf_token": csrf(client, "/register"), "username": username, "password": password}
    if move:
        data["move_guest_work"] = "true"
    return client.post("/register", data=data, follow_redirects=False)


def login(
    client: TestClient, username: str, password: str = "correct horse battery", move: bool = True
):
    """Log in; `move` ticks the box that moves the guest's data sets, runs and experiments."""
    data = {"csrf_token": csrf(client), "username": username, "password": password}
    if move:
        data["move_guest_work"] = "true"
    return client.post("/login", data=data, follow_redirects=False)


def logout(client: TestClient):
    return client.post("/logout", data={"csrf_token": csrf(client, "/")}, follow_redirects=False)


def reviews(client: TestClient) -> int:
    return sum(q["reviews"] for q in client.get("/api/progress").json()["questions"])


def answer(client: TestClient, item: str = "pool-max-gradient", value: object = 0) -> None:
    assert (
        client.post("/api/quiz/answers", json={"item_id": item, "answer": value}).status_code == 200
    )


def client_for(database_url: str, tmp_path: Path, **overrides: object) -> TestClient:
    """A client (not started: use it in `with`) of the app on `database_url`, DATA_DIR under
    `tmp_path`, with the given settings overrides (by variable name)."""
    settings = Settings(
        DATA_DIR=tmp_path / "data", DATABASE_URL=database_url, SECRET_KEY="k", **overrides
    )
    return TestClient(create_app(settings))
