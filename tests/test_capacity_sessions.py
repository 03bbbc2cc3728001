"""Capacity and identity: planted keys and cookies, guests minted per address, caps that
count what a person holds (guests together, merges at login), a busy database. SQLite and
PostgreSQL, real HTTP through the ASGI app."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import sqlalchemy
from fastapi.testclient import TestClient

from tests.datasets_zips import classes_zip, upload
from tests.test_runs_api import TINY
from tests.test_sessions import COOKIE, browser_with, replay_reviews, saved
from tests.web import answer, client_for, csrf, login, register


def users_in(database_url: str) -> int:
    engine = sqlalchemy.create_engine(database_url)
    with engine.connect() as connection:
        count = connection.exec_driver_sql('SELECT count(*) FROM "user"').scalar_one()
    engine.dispose()
    return int(count)


def sql_rows(client: TestClient, statement: str) -> list[tuple]:
    engine = sqlalchemy.create_engine(client.app.state.settings.sqlalchemy_url)
    with engine.connect() as connection:
        rows = [tuple(row) for row in connection.exec_driver_sql(statement)]
    engine.dispose()
    return rows


# --- planted keys and cookies ----------------------------------------------------------------


def test_a_planted_anonymous_key_is_not_the_guests_key_so_its_token_forges_nothing(
    db_client: TestClient,
) -> None:
    app = db_client.app
    with TestClient(app) as attacker:
        known_token = csrf(
            attacker, "/questions/pooling"
        )  # the attacker's visitor key and its token
        planted = saved(attacker)
    with browser_with(app, planted) as victim:
        first = victim.post("/api/runs", json=TINY)  # the victim's first saved action
        assert first.status_code == 202, first.text
        run_id = first.json()["id"]
        assert saved(victim) != planted  # a fresh key, not the planted one
        # A forged form from the attacker's page: the victim's cookies, the known token.
        forged = victim.post(
            f"/runs/{run_id}/delete", data={"csrf_token": known_token}, follow_redirects=False
        )
        assert forged.status_code == 403
        assert [r["id"] for r in victim.get("/api/runs").json()] == [run_id]
    # The planted cookie itself opens nothing of the victim's.
    with browser_with(app, planted) as attacker:
        assert attacker.get("/api/runs").json() == []


def test_a_planted_guest_cookies_work_is_not_merged_at_login_unless_ticked(
    db_client: TestClient,
) -> None:
    app = db_client.app
    with TestClient(app) as elsewhere:
        assert register(elsewhere, "victim").status_code == 303
    with TestClient(app) as attacker:
        dataset = upload(attacker, classes_zip({"a": 2, "b": 2}), name="planted-set")
        assert dataset.status_code == 201, dataset.text
        assert attacker.post("/api/runs", json=TINY).status_code == 202
        answer(attacker)
        planted = saved(attacker)
    with browser_with(app, planted) as victim:
        shown = victim.get("/login").text
        assert "planted-set" in shown and "1 run" in shown  # the box lists what would move
        assert login(victim, "victim", move=False).status_code == 303
        assert victim.get("/api/datasets").json() == []
        assert victim.get("/api/runs").json() == []
    # The guest keeps its own work (nothing lost, nothing moved); the planted key is ended.
    assert replay_reviews(db_client, planted) == 0
    owners = sql_rows(
        db_client,
        'SELECT u.username FROM dataset d JOIN "user" u ON u.id = d.owner_id',
    )
    assert owners == [(None,)]


def test_registration_with_a_planted_guest_cookie_takes_its_work_only_when_ticked(
    db_client: TestClient,
) -> None:
    app = db_client.app

    def planted_guest(name: str) -> tuple[str, int]:
        """A guest's cookie with a data set, a run and an answer: (cookie, guest id)."""
        with TestClient(app) as attacker:
            made = upload(attacker, classes_zip({"a": 2, "b": 2}), name=name)
            assert made.status_code == 201, made.text
            assert attacker.post("/api/runs", json=TINY).status_code == 202
            answer(attacker)
            cookie = saved(attacker)
        owner = sql_rows(db_client, f"SELECT owner_id FROM dataset WHERE name = '{name}'")
        return cookie, owner[0][0]

    planted, guest_id = planted_guest("planted-set")
    with browser_with(app, planted) as victim:
        shown = victim.get("/register").text
        assert "planted-set" in shown and "1 run" in shown  # the box lists what would move
        assert register(victim, "newcomer", move=False).status_code == 303
        assert victim.get("/api/datasets").json() == []
        assert victim.get("/api/runs").json() == []
        progress = victim.get("/api/progress").json()["questions"]
        assert sum(q["reviews"] for q in progress) == 1  # practice progress moves as before
    # The account is a new row; the guest keeps its work, and its cookie is ended.
    account = sql_rows(db_client, "SELECT id FROM \"user\" WHERE username = 'newcomer'")
    assert account[0][0] != guest_id
    assert sql_rows(db_client, "SELECT owner_id FROM dataset") == [(guest_id,)]
    assert sql_rows(db_client, "SELECT owner_id FROM run") == [(guest_id,)]
    assert replay_reviews(db_client, planted) == 0
    # Ticked, the work moves (within the caps) and the guest's row goes.
    mine, other_guest = planted_guest("my-set")
    with browser_with(app, mine) as learner:
        assert register(learner, "learner", move=True).status_code == 303
        assert [d["name"] for d in learner.get("/api/datasets").json()] == ["my-set"]
        assert len(learner.get("/api/runs").json()) == 1
    assert sql_rows(db_client, f'SELECT id FROM "user" WHERE id = {other_guest}') == []
    assert replay_reviews(db_client, mine) == 0


def test_over_https_the_cookie_is_host_prefixed_and_an_unprefixed_one_is_ignored(
    db_client: TestClient,
) -> None:
    app = db_client.app
    answer(db_client)  # a guest over plain HTTP: the unprefixed cookie
    plain = saved(db_client)
    with TestClient(app, base_url="https://testserver") as secure:
        cookie = secure.get("/").headers["set-cookie"]
        assert cookie.startswith(f"__Host-{COOKIE}=")
        attributes = [a.strip().lower() for a in cookie.split(";")]
        assert "secure" in attributes and "path=/" in attributes
        assert not any(a.startswith("domain") for a in attributes)
    with TestClient(app, base_url="https://testserver") as planted:
        planted.cookies.set(COOKIE, plain, domain="testserver.local")
        progress = planted.get("/api/progress").json()
        assert sum(q["reviews"] for q in progress["questions"]) == 0


# --- caps that count what a person holds -----------------------------------------------------


def test_one_address_makes_at_most_the_allowed_guests(database_url: str, tmp_path: Path) -> None:
    with client_for(database_url, tmp_path, GUEST_MAX_PER_ADDRESS=3) as first:
        statuses = []
        for _ in range(5):
            with TestClient(first.app) as visitor:  # a new cookie jar each time
                response = visitor.post(
                    "/api/quiz/answers", json={"item_id": "pool-max-gradient", "answer": 0}
                )
                statuses.append(response.status_code)
                if response.status_code == 429:
                    refused = response
    assert statuses == [200, 200, 200, 429, 429]
    assert "GUEST_MAX_PER_ADDRESS" in refused.json()["detail"]
    assert int(refused.headers["retry-after"]) >= 1
    assert users_in(database_url) == 3


def test_guests_together_hold_at_most_the_global_cap_of_live_runs(
    database_url: str, tmp_path: Path
) -> None:
    with client_for(database_url, tmp_path, RUN_MAX_QUEUED_GUESTS=3) as first:
        accepted, refused = 0, []
        for _ in range(3):  # one client, three guest cookies
            with TestClient(first.app) as guest:
                for _ in range(2):
                    response = guest.post("/api/runs", json=TINY)
                    if response.status_code == 202:
                        accepted += 1
                    else:
                        refused.append(response)
        assert accepted == 3 and len(refused) == 3
        assert all(r.status_code == 429 for r in refused)
        assert "RUN_MAX_QUEUED_GUESTS = 3" in refused[0].json()["detail"]
        assert register(first, "member").status_code == 303
        assert first.post("/api/runs", json=TINY).status_code == 202  # an account is not held


def test_a_login_merge_that_would_pass_the_run_cap_is_refused_with_the_setting(
    database_url: str, tmp_path: Path
) -> None:
    with client_for(database_url, tmp_path, RUN_MAX_QUEUED=3) as member:
        assert register(member, "holder").status_code == 303
        for _ in range(2):
            assert member.post("/api/runs", json=TINY).status_code == 202
        with TestClient(member.app) as guest:
            for _ in range(2):
                assert guest.post("/api/runs", json=TINY).status_code == 202
            refused = login(guest, "holder")
            assert refused.status_code == 409
            assert "RUN_MAX_QUEUED" in refused.text and "4 runs" in refused.text
            assert len(member.get("/api/runs").json()) == 2  # nothing moved
            assert login(guest, "holder", move=False).status_code == 303  # without the work
            assert len(guest.get("/api/runs").json()) == 2


def test_a_login_merge_that_would_pass_the_data_set_quota_is_refused(
    database_url: str, tmp_path: Path
) -> None:
    with client_for(database_url, tmp_path, DATASET_QUOTA_COUNT=2) as member:
        assert register(member, "keeper").status_code == 303
        assert upload(member, classes_zip({"a": 2, "b": 2})).status_code == 201
        with TestClient(member.app) as guest:
            for _ in range(2):
                assert upload(guest, classes_zip({"a": 2, "b": 2})).status_code == 201
            refused = login(guest, "keeper")
            assert refused.status_code == 409 and "DATASET_QUOTA_COUNT" in refused.text
            assert len(member.get("/api/datasets").json()) == 1


# --- a busy database -------------------------------------------------------------------------


def test_a_guest_made_while_sqlite_is_locked_gets_a_503_with_retry_after(tmp_path: Path) -> None:
    database = tmp_path / "busy.sqlite3"
    with client_for(f"sqlite:///{database}", tmp_path, DATABASE_BUSY_TIMEOUT=0.3) as client:
        holder = sqlite3.connect(database, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        try:
            busy = client.post(
                "/api/quiz/answers", json={"item_id": "pool-max-gradient", "answer": 0}
            )
            page = client.post(
                "/questions/pooling/draft",
                data={"draft": "x"},
                headers={"X-CSRF-Token": csrf(client, "/questions/pooling"), "HX-Request": "true"},
            )
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        assert busy.status_code == 503 and busy.headers["retry-after"] == "2"
        assert "try again" in busy.json()["detail"] and str(tmp_path) not in busy.text
        assert page.status_code == 503 and page.headers["retry-after"] == "2"
        answered = client.post(
            "/api/quiz/answers", json={"item_id": "pool-max-gradient", "answer": 0}
        )
        assert answered.status_code == 200
