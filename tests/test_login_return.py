"""Logging in (or registering) returns to the page you came from, and only to a page of ours."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from bs4 import BeautifulSoup
from fastapi.testclient import TestClient

from app.web import safe_next
from tests.web import csrf, logout, register

PASSWORD = "correct horse battery"


def _post(client: TestClient, path: str, username: str, next_page: str):
    return client.post(
        path,
        data={
            "csrf_token": csrf(client, path),
            "username": username,
            "password": PASSWORD,
            "next": next_page,
        },
        follow_redirects=False,
    )


def test_the_log_in_link_carries_the_page_you_are_on(client: TestClient) -> None:
    page = BeautifulSoup(client.get("/questions/pooling").text, "html.parser")
    link = page.select_one(".account a[href^='/login']")["href"]
    assert parse_qs(urlsplit(link).query) == {"next": ["/questions/pooling"]}
    form = BeautifulSoup(client.get(link).text, "html.parser")
    assert (
        form.select_one("form[action='/login'] input[name=next]")["value"] == "/questions/pooling"
    )
    # The register link on the login page keeps it too.
    register_link = form.select_one("main a[href^='/register']")["href"]
    assert parse_qs(urlsplit(register_link).query) == {"next": ["/questions/pooling"]}


def test_login_and_registration_return_to_the_page(db_client: TestClient) -> None:
    response = _post(db_client, "/register", "returner", "/questions/pooling?reveal=true")
    assert response.status_code == 303
    assert response.headers["location"] == "/questions/pooling?reveal=true"
    logout(db_client)
    response = _post(db_client, "/login", "returner", "/practice")
    assert response.status_code == 303 and response.headers["location"] == "/practice"
    logout(db_client)
    assert _post(db_client, "/login", "returner", "").headers["location"] == "/progress"


def test_a_failed_login_keeps_where_to_return(db_client: TestClient) -> None:
    register(db_client, "keeper")
    logout(db_client)
    response = db_client.post(
        "/login",
        data={
            "csrf_token": csrf(db_client),
            "username": "keeper",
            "password": "wrong password",
            "next": "/questions/pooling",
        },
    )
    assert response.status_code == 401
    page = BeautifulSoup(response.text, "html.parser")
    assert page.select_one("input[name=next]")["value"] == "/questions/pooling"


OFF_SITE = [
    "//evil.example/",
    "///evil.example",
    "/\\evil.example",
    "\\\\evil.example",
    "https://evil.example/",
    "http:/evil.example",
    "javascript:alert(1)",
    " /questions/pooling",
    "/questions/pooling\r\nSet-Cookie: x=1",
    "/\tevil.example",
    "evil.example",
    "/login",
    "/logout",
    "",
]


@pytest.mark.parametrize("target", OFF_SITE)
def test_no_redirect_leaves_the_site(db_client: TestClient, target: str) -> None:
    assert safe_next(target) is None
    response = _post(db_client, "/register", "visitor", target)
    assert response.status_code == 303
    assert response.headers["location"] == "/progress"


def test_a_poisoned_next_is_not_put_in_the_form(client: TestClient) -> None:
    page = BeautifulSoup(
        client.get("/login", params={"next": "//evil.example"}).text, "html.parser"
    )
    assert page.select_one("input[name=next]") is None
