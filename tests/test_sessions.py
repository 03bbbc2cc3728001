"""Server-side sessions, attacked as an attacker would, on SQLite and PostgreSQL.

A "saved" cookie is one an attacker copied (a shared computer) or planted before the victim
acted; `replay` sends it from a browser of the attacker's own.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy
from bs4 import BeautifulSoup
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from app.db import make_engine
from app.main import create_app
from app.models import BrowserSession
from app.settings import Settings
from tests.web import answer, login, logout, register, reviews

COOKIE = "cvprep_session"


def saved(client: TestClient) -> str:
    value = client.cookies.get(COOKIE)
    assert value, "no session cookie yet"
    return value


def browser_with(app, cookie: str) -> TestClient:
    """A fresh browser whose jar holds `cookie`, as if the server had set it."""
    client = TestClient(app)
    client.cookies.set(COOKIE, cookie, domain="testserver.local")
    return client


def replay(client: TestClient, cookie: str, path: str = "/account"):
    """GET `path` from a fresh browser holding only `cookie`."""
    with browser_with(client.app, cookie) as attacker:
        return attacker.get(path, follow_redirects=False)


def signed_in(client: TestClient, cookie: str) -> bool:
    """Does `cookie` open an account page (a registered user's session)?"""
    return replay(client, cookie).status_code == 200


def replay_reviews(client: TestClient, cookie: str) -> int:
    response = replay(client, cookie, "/api/progress")
    return sum(q["reviews"] for q in response.json()["questions"])


def sql(database_url: str, statement: str, **params: object) -> list:
    engine = sqlalchemy.create_engine(database_url)
    with engine.begin() as connection:
        result = connection.execute(sqlalchemy.text(statement), params)
        rows = list(result) if result.returns_rows else []
    engine.dispose()
    return rows


def test_the_cookie_carries_a_signed_random_key_and_no_user_id(db_client: TestClient) -> None:
    answer(db_client)
    guest_cookie = saved(db_client)
    payload = guest_cookie.split(".")
    assert payload[0] == "s" and len(payload[1]) >= 43  # mark, 256-bit key, then the signature
    forged = "s." + payload[1] + ".AAAA.BBBB"
    assert replay_reviews(db_client, forged) == 0
    register(db_client, "keyholder")
    assert saved(db_client) != guest_cookie  # a new key at registration


def test_a_kept_guest_cookie_never_opens_the_next_users_account(
    db_client: TestClient, other_client: TestClient, database_url: str
) -> None:
    """The old takeover: the merged guest's row id went to the next new user."""
    register(other_client, "existing")
    answer(db_client)  # a guest
    kept = saved(db_client)
    guest_id = sql(database_url, 'SELECT max(id) FROM "user"')[0][0]
    assert login(db_client, "existing").status_code == 303  # the guest is merged and deleted
    with TestClient(db_client.app) as newcomer:
        assert register(newcomer, "newcomer").status_code == 303
        answer(newcomer, "pool-gap-card", "good")
        newcomer_id = sql(database_url, "SELECT id FROM \"user\" WHERE username = 'newcomer'")[0][0]
    assert newcomer_id > guest_id  # no id is handed out twice
    assert not signed_in(db_client, kept)
    assert replay_reviews(db_client, kept) == 0


def test_registration_ends_every_cookie_the_guest_had(db_client: TestClient) -> None:
    answer(db_client)
    copied = saved(db_client)  # e.g. left behind on a shared computer
    assert replay_reviews(db_client, copied) == 1  # a guest's cookie is the guest, as it was
    assert register(db_client, "victim").status_code == 303
    assert reviews(db_client) == 1  # the progress moved into the account …
    assert replay_reviews(db_client, copied) == 0  # … the copied cookie did not
    assert not signed_in(db_client, copied)


def test_a_planted_cookie_is_not_promoted_at_registration_or_login(
    db_client: TestClient,
) -> None:
    app = db_client.app
    with TestClient(app) as attacker:
        answer(attacker)  # the attacker's own guest
        planted = saved(attacker)
    with TestClient(app) as attacker:
        attacker.get("/login")  # a visitor's cookie, no session row behind it
        anonymous = saved(attacker)
    for cookie, name in ((planted, "victim-one"), (anonymous, "victim-two")):
        with browser_with(app, cookie) as victim:
            assert register(victim, name).status_code == 303
            answer(victim, "pool-gap-card", "easy")
            assert saved(victim) != cookie
            assert logout(victim).status_code == 303
        with browser_with(app, cookie) as victim:
            assert login(victim, name).status_code == 303
            assert saved(victim) != cookie
        assert not signed_in(db_client, cookie)
        assert replay_reviews(db_client, cookie) == 0


def test_a_cookie_saved_before_logout_stops_working(db_client: TestClient) -> None:
    register(db_client, "leaver")
    answer(db_client)
    before = saved(db_client)
    assert signed_in(db_client, before)
    assert logout(db_client).status_code == 303
    assert not signed_in(db_client, before)
    assert replay_reviews(db_client, before) == 0
    assert saved(db_client) != before  # the browser got a fresh anonymous key


def test_log_out_everywhere_ends_every_session_of_the_account(
    db_client: TestClient, other_client: TestClient
) -> None:
    register(db_client, "traveller")
    assert login(other_client, "traveller").status_code == 303
    page = BeautifulSoup(db_client.get("/account").text, "html.parser")
    assert "2 browsers signed in" in page.select_one("#session-count").text
    token = page.select_one("form[action='/account/logout-everywhere'] input[name=csrf_token]")
    ended = db_client.post(
        "/account/logout-everywhere", data={"csrf_token": token["value"]}, follow_redirects=False
    )
    assert ended.status_code == 303
    assert other_client.get("/account", follow_redirects=False).status_code == 303
    assert db_client.get("/account", follow_redirects=False).status_code == 303
    assert login(other_client, "traveller").status_code == 303  # the account itself is fine


@pytest.mark.parametrize("column", ["last_seen_at", "created_at"])
def test_sessions_expire_when_idle_and_at_their_absolute_age(
    db_client: TestClient, db_settings: Settings, database_url: str, column: str
) -> None:
    register(db_client, "sleeper")
    cookie = saved(db_client)
    assert signed_in(db_client, cookie)
    idle = column == "last_seen_at"
    days = db_settings.session_idle_days if idle else db_settings.session_max_days
    engine = make_engine(database_url)
    with Session(engine) as session:
        for row in session.exec(select(BrowserSession)).all():
            moment = row.last_seen_at if idle else row.created_at
            setattr(row, column, moment - timedelta(days=days, minutes=1))
            session.add(row)
        session.commit()
    engine.dispose()
    assert not signed_in(db_client, cookie)


def test_an_old_cookie_does_not_leak_a_name_into_the_shared_page_cache(
    db_client: TestClient,
) -> None:
    register(db_client, "cached-name")
    cookie = saved(db_client)
    logout(db_client)
    first = replay(db_client, cookie, "/questions/pooling")
    assert "Signed in as" not in first.text and "cached-name" not in first.text
    with TestClient(db_client.app) as visitor:
        page = visitor.get("/questions/pooling").text
    assert "Signed in as" not in page and "cached-name" not in page


def test_usernames_are_one_account_whatever_the_case_or_width(
    db_client: TestClient, other_client: TestClient
) -> None:
    assert register(db_client, "Admin").status_code == 303
    for variant in ("admin", "ADMIN", "ＡＤＭＩＮ"):
        taken = register(other_client, variant)
        assert taken.status_code == 422 and "taken" in taken.text
    logout(db_client)
    assert login(other_client, "ａｄｍｉｎ").status_code == 303
    page = other_client.get("/").text
    assert 'Signed in as <a href="/account"><strong>Admin</strong></a>' in page


def test_cookie_is_secure_over_https_unless_turned_off(tmp_path) -> None:
    def cookie(secure: str | None, base_url: str) -> str:
        env = {} if secure is None else {"COOKIE_SECURE": secure}
        settings = Settings(DATA_DIR=tmp_path / "data", SECRET_KEY="k", **env)
        with TestClient(create_app(settings), base_url=base_url) as client:
            return client.get("/login").headers["set-cookie"]

    assert "secure" in cookie(None, "https://testserver").lower()
    assert "secure" not in cookie(None, "http://testserver").lower()
    assert "secure" not in cookie("false", "https://testserver").lower()
    assert "secure" in cookie("true", "http://testserver").lower()


def test_personal_pages_and_the_export_are_not_stored_by_caches(db_client: TestClient) -> None:
    answer(db_client)
    for path in ("/progress", "/practice", "/api/progress", "/progress/export.json", "/"):
        assert db_client.get(path).headers["cache-control"] == "no-store", path
    register(db_client, "private")
    assert db_client.get("/account").headers["cache-control"] == "no-store"


def test_a_visitors_first_draft_makes_a_guest_with_a_new_key_and_hands_over_its_token(
    db_client: TestClient,
) -> None:
    """No session row until something is saved; then a fresh key, whose CSRF token the
    response carries (the page's script puts it into its forms and htmx header)."""
    page = BeautifulSoup(db_client.get("/questions/pooling").text, "html.parser")
    token = page.select_one("input[name=csrf_token]")["value"]
    anonymous = saved(db_client)
    headers = {"X-CSRF-Token": token, "HX-Request": "true"}
    first = db_client.post("/questions/pooling/draft", data={"draft": "first"}, headers=headers)
    assert first.status_code == 200 and "Draft saved" in first.text
    assert saved(db_client).startswith("s.") and saved(db_client) != anonymous
    renewed = first.headers["X-CSRF-Token"]
    assert renewed != token
    stale = db_client.post("/questions/pooling/draft", data={"draft": "x"}, headers=headers)
    assert stale.status_code == 403  # the old key's token is worth nothing now
    headers["X-CSRF-Token"] = renewed
    again = db_client.post("/questions/pooling/draft", data={"draft": "more"}, headers=headers)
    assert again.status_code == 200 and "X-CSRF-Token" not in again.headers
