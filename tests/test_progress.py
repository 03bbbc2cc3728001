"""Progress figures, the dashboard page, and export / import of one's own data."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

from bs4 import BeautifulSoup
from fastapi.testclient import TestClient

from app.models import CardState, ReviewLog
from app.progress import due_forecast, heatmap, streak, true_retention
from tests.test_accounts import csrf


def _review(day: date, rating: int = 3, state_before: int | None = None) -> ReviewLog:
    before = json.dumps({"state": state_before}) if state_before else None
    at = datetime(day.year, day.month, day.day, 12, tzinfo=UTC)
    return ReviewLog(
        user_id=1,
        item_id="x",
        question_slug="pooling",
        rating=rating,
        reviewed_at=at,
        card_before=before,
    )


def test_streak_counts_consecutive_days_ending_today_or_yesterday() -> None:
    today = date(2026, 3, 10)
    days = [today, today - timedelta(1), today - timedelta(2), today - timedelta(4)]
    assert streak([_review(d) for d in days], today) == 3
    assert streak([_review(d) for d in days[1:]], today) == 2  # not yet today: still a streak
    assert streak([_review(today - timedelta(3))], today) == 0
    assert streak([], today) == 0


def test_true_retention_counts_only_reviews_of_graduated_cards() -> None:
    today = date(2026, 3, 10)
    logs = [_review(today, 3, 1), _review(today, 1, 2), _review(today, 3, 2), _review(today, 4, 2)]
    assert true_retention(logs) == (2, 3)


def test_due_forecast_puts_overdue_cards_on_today() -> None:
    today = date(2026, 3, 10)
    at = lambda d: datetime(d.year, d.month, d.day, 9, tzinfo=UTC)  # noqa: E731
    cards = [
        CardState(
            user_id=1, item_id=str(i), question_slug="q", state=2, due=at(today + timedelta(offset))
        )
        for i, offset in enumerate([-5, 0, 1, 1, 20])
    ]
    forecast = due_forecast(cards, today, days=14)
    assert [d.count for d in forecast[:3]] == [2, 2, 0]
    assert sum(d.count for d in forecast) == 4 and len(forecast) == 14


def test_heatmap_covers_ninety_days_ending_today() -> None:
    today = date(2026, 3, 10)
    cells = heatmap([_review(today), _review(today), _review(today - timedelta(89))], today)
    assert len(cells) == 90 and cells[-1].day == today
    assert cells[-1].count == 2 and cells[0].count == 1


def _answer(client: TestClient, item: str, value: object) -> None:
    assert (
        client.post("/api/quiz/answers", json={"item_id": item, "answer": value}).status_code == 200
    )


def test_progress_page_draws_the_charts(db_client: TestClient) -> None:
    _answer(db_client, "pool-max-gradient", 0)
    _answer(db_client, "conv-output-floor", 0)
    page = BeautifulSoup(db_client.get("/progress").text, "html.parser")
    assert page.select_one("#mastery-heading")
    assert page.select_one("script[src^='/static/vendor/chart.umd.min.js']")

    def chart(chart_id: str) -> dict:
        return json.loads(page.select_one(f"#{chart_id}-chart")["data-chart"])

    mastery = chart("mastery")
    assert len(mastery["y"]["labels"]) == 12 == len(mastery["series"][0]["values"])
    assert len(page.select("#mastery-figure tbody tr")) == 12  # the same numbers as a table
    forecast = chart("forecast")
    assert len(forecast["x"]["labels"]) == 14 and sum(forecast["series"][0]["values"]) >= 1
    calendar = chart("review-calendar")
    assert len(calendar["points"]) == 90
    assert calendar["points"][-1]["v"] == 2 and sum(p["v"] for p in calendar["points"]) == 2
    tags = chart("tag-accuracy")
    assert tags["series"][0]["values"] and all(0 <= v <= 1 for v in tags["series"][0]["values"])
    assert "2" in page.select_one(".stats").text


def test_home_shows_mastery_and_continue_link(db_client: TestClient) -> None:
    _answer(db_client, "pool-max-gradient", 0)
    page = BeautifulSoup(db_client.get("/").text, "html.parser")
    assert page.select_one(".banner a[href='/questions/pooling']")
    assert page.select("meter")


def _export(client: TestClient) -> dict:
    response = client.get("/progress/export.json")
    assert response.status_code == 200
    assert "attachment" in response.headers["content-disposition"]
    return response.json()


def _import(client: TestClient, payload: bytes):
    return client.post(
        "/progress/import",
        data={"csrf_token": csrf(client, "/progress")},
        files={"file": ("export.json", payload, "application/json")},
        follow_redirects=False,
    )


def _comparable(export: dict) -> dict:
    return {key: export[key] for key in ("reviews", "cards", "drafts")}


def test_export_then_import_round_trips(db_client: TestClient, other_client: TestClient) -> None:
    _answer(db_client, "pool-max-gradient", 0)
    _answer(db_client, "pool-gap-card", "hard")
    token = csrf(db_client, "/questions/pooling")
    db_client.post("/questions/pooling/draft", data={"csrf_token": token, "draft": "my draft"})
    exported = _export(db_client)
    assert (
        len(exported["reviews"]) == 2
        and len(exported["cards"]) == 2
        and len(exported["drafts"]) == 1
    )

    assert _import(other_client, json.dumps(exported).encode()).status_code == 303
    assert _comparable(_export(other_client)) == _comparable(exported)
    # Importing the same file again adds nothing.
    assert _import(other_client, json.dumps(exported).encode()).status_code == 303
    assert _comparable(_export(other_client)) == _comparable(exported)


def test_a_bad_import_file_is_422_and_changes_nothing(db_client: TestClient) -> None:
    _answer(db_client, "pool-max-gradient", 0)
    before = _export(db_client)
    broken = {**before, "reviews": [{**before["reviews"][0], "rating": 9}]}
    for payload in (b"not json", b"{}", json.dumps(broken).encode(), b""):
        response = _import(db_client, payload)
        assert response.status_code == 422
        assert "not a cvprep export" in response.text
    assert _comparable(_export(db_client)) == _comparable(before)


def test_export_without_any_data_is_404(db_client: TestClient) -> None:
    assert db_client.get("/progress/export.json").status_code == 404
