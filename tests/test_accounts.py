"""Guests, registration, login, logout, CSRF and escaping, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from bs4 import BeautifulSoup
from fastapi.testclient import TestClient

from tests.web import answer, csrf, login, logout, register, reviews


def test_session_cookie_is_signed_httponly_and_lax(db_client: TestClient) -> None:
    cookie = db_client.get("/").headers["set-cookie"]
    assert cookie.startswith("cvprep_session=")
    assert "httponly" in cookie.lower() and "samesite=lax" in cookie.lower()


def test_guest_progress_moves_into_the_new_account(db_client: TestClient) -> None:
    answer(db_client)
    answer(db_client, "pool-gap-card", "good")
    assert register(db_client, "ada").status_code == 303
    assert reviews(db_client) == 2
    assert logout(db_client).status_code == 303
    assert reviews(db_client) == 0
    assert login(db_client, "ada").status_code == 303
    assert reviews(db_client) == 2


def test_login_moves_guest_progress_into_the_existing_account(
    db_client: TestClient, other_client: TestClient
) -> None:
    register(db_client, "grace")
    answer(db_client)
    answer(other_client, "pool-gap-card", "easy")
    assert login(other_client, "grace").status_code == 303
    assert reviews(other_client) == 2


def test_wrong_password_and_unknown_user_get_the_same_answer(
    db_client: TestClient, other_client: TestClient
) -> None:
    register(db_client, "linus")
    wrong = login(other_client, "linus", "not the password")
    unknown = login(other_client, "nobody-here", "not the password")
    assert wrong.status_code == unknown.status_code == 401
    message = lambda r: BeautifulSoup(r.text, "html.parser").select_one(".form-error").text  # noqa: E731
    assert message(wrong) == message(unknown) == "Wrong username or password."


def test_repeated_failed_logins_are_rate_limited(
    db_client: TestClient, other_client: TestClient
) -> None:
    register(db_client, "target")
    for _ in range(5):
        assert login(other_client, "target", "guess-guess").status_code == 401
    limited = login(other_client, "target", "correct horse battery")
    assert limited.status_code == 429
    assert "Too many failed attempts" in limited.text


def test_taken_username_and_weak_password_are_422(
    db_client: TestClient, other_client: TestClient
) -> None:
    register(db_client, "taken")
    assert register(other_client, "taken").status_code == 422
    short = register(other_client, "fresh-name", "short")
    assert short.status_code == 422
    assert "password" in short.text


def test_username_with_html_is_refused_and_echoed_escaped(db_client: TestClient) -> None:
    response = register(db_client, "<script>alert(1)</script>")
    assert response.status_code == 422
    assert "<script>alert(1)</script>" not in response.text
    assert "&lt;script&gt;" in response.text


@pytest.mark.parametrize(
    ("path", "data"),
    [
        ("/register", {"username": "mallory", "password": "correct horse battery"}),
        ("/login", {"username": "mallory", "password": "x"}),
        ("/logout", {}),
        ("/questions/pooling/draft", {"draft": "hello"}),
        ("/practice/answer", {"item_id": "pool-max-gradient", "answer": "0"}),
        ("/practice/undo", {}),
        ("/practice/end", {}),
        ("/practice/mock", {"items": "3", "minutes": "5"}),
        ("/practice/mock/submit", {}),
    ],
)
def test_state_changing_form_without_csrf_token_is_403(
    db_client: TestClient, path: str, data: dict
) -> None:
    db_client.get("/")  # a session exists, so the only thing missing is the token
    assert db_client.post(path, data=data).status_code == 403
    assert db_client.post(path, data={**data, "csrf_token": "forged"}).status_code == 403
    assert reviews(db_client) == 0


def test_csrf_token_in_the_htmx_header_is_accepted(db_client: TestClient) -> None:
    token = csrf(db_client, "/questions/pooling")
    response = db_client.post(
        "/questions/pooling/draft",
        data={"draft": "max keeps the peak"},
        headers={"X-CSRF-Token": token, "HX-Request": "true"},
    )
    assert response.status_code == 200
    assert "Draft saved" in response.text


def test_draft_is_kept_per_user_and_shown_escaped_beside_the_answer(
    db_client: TestClient, other_client: TestClient
) -> None:
    token = csrf(db_client, "/questions/pooling")
    text = "<b>max</b> keeps the strongest activation"
    saved = db_client.post(
        "/questions/pooling/draft",
        data={"csrf_token": token, "draft": text},
        follow_redirects=False,
    )
    assert saved.status_code == 303
    page = db_client.get("/questions/pooling", params={"reveal": "true"}).text
    assert "&lt;b&gt;max&lt;/b&gt;" in page and "<b>max</b>" not in page
    soup = BeautifulSoup(page, "html.parser")
    assert soup.select_one("#draft").text == text
    assert soup.select_one(".compare .draft-copy").text == text
    other = BeautifulSoup(other_client.get("/questions/pooling").text, "html.parser")
    assert other.select_one("#draft").text == ""


def test_logged_in_name_is_shown_escaped(db_client: TestClient) -> None:
    register(db_client, "o.brien_2")
    assert (
        'Signed in as <a href="/account"><strong>o.brien_2</strong></a>' in db_client.get("/").text
    )
