"""Saving a draft: the form, the beacon sent when a page is left (token in the body, not a
header), and "save and reveal" without JavaScript."""

from __future__ import annotations

from bs4 import BeautifulSoup
from fastapi.testclient import TestClient

from tests.web import csrf


def _draft_text(client: TestClient, slug: str) -> str:
    page = BeautifulSoup(client.get(f"/questions/{slug}").text, "html.parser")
    return page.select_one("textarea#draft").text


def test_a_beacon_body_with_the_token_saves_the_draft(db_client: TestClient) -> None:
    token = csrf(db_client, "/questions/pooling")
    # navigator.sendBeacon(url, FormData): multipart/form-data, cookies, no custom headers.
    response = db_client.post(
        "/questions/pooling/draft",
        files={"csrf_token": (None, token), "draft": (None, "Max pooling keeps the peak.")},
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert _draft_text(db_client, "pooling") == "Max pooling keeps the peak."


def test_a_beacon_without_the_right_token_is_refused(db_client: TestClient) -> None:
    db_client.get("/questions/pooling")
    for token in (None, "forged"):
        files = {"draft": (None, "planted")}
        if token:
            files["csrf_token"] = (None, token)
        assert db_client.post("/questions/pooling/draft", files=files).status_code == 403
    assert _draft_text(db_client, "pooling") == ""


def test_save_and_reveal_without_javascript(db_client: TestClient) -> None:
    page = BeautifulSoup(db_client.get("/questions/pooling").text, "html.parser")
    button = page.select_one("form[data-draft] button[name=reveal]")
    assert button is not None and button["value"] == "true"
    response = db_client.post(
        "/questions/pooling/draft",
        data={
            "csrf_token": csrf(db_client, "/questions/pooling"),
            "draft": "mine",
            "reveal": "true",
        },
        follow_redirects=False,
    )
    assert response.headers["location"] == "/questions/pooling?reveal=true#answer"
    revealed = BeautifulSoup(db_client.get("/questions/pooling?reveal=true").text, "html.parser")
    assert revealed.select_one(".compare .draft-copy").text == "mine"


def test_the_draft_status_time_is_local_with_a_utc_fallback(db_client: TestClient) -> None:
    response = db_client.post(
        "/questions/pooling/draft",
        data={"csrf_token": csrf(db_client, "/questions/pooling"), "draft": "x"},
        headers={"HX-Request": "true"},
    )
    time = BeautifulSoup(response.text, "html.parser").select_one("time[data-local=time]")
    assert time is not None and time.text.endswith(" UTC") and time["datetime"].endswith("Z")
