"""Progress figures, the dashboard page, and export / import of one's own data."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

from bs4 import BeautifulSoup
from fastapi.testclient import TestClient
from fsrs import Card, Rating, Scheduler

from app.content import QuestionBank
from app.models import CardState, ReviewLog
from app.practice.progress import (
    MASTERY_STABILITY_DAYS,
    by_question,
    by_tag,
    due_forecast,
    heatmap,
    is_mastered,
    streak,
    true_retention,
)
from tests.web import csrf

# The scheduler as the app configures it (fsrs 6, desired retention 0.9, no fuzzing).
FSRS = Scheduler(desired_retention=0.9, enable_fuzzing=False)


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


def test_progress_page_draws_the_charts(db_client: TestClient, bank: QuestionBank) -> None:
    _answer(db_client, "pool-max-gradient", 0)
    _answer(db_client, "conv-output-floor", 0)
    page = BeautifulSoup(db_client.get("/progress").text, "html.parser")
    assert page.select_one("#mastery-heading")
    rows = page.select("#mastery-heading ~ .mastery-list > li")
    assert len(rows) == 12
    # Every question by its title, linked, with its figures in text (never cut to fit).
    links = [row.select_one("a.mastery-title") for row in rows]
    assert [a["href"] for a in links] == [f"/questions/{q.slug}" for q in bank]
    assert [a.text for a in links] == [f"Q{q.number}. {q.title}" for q in bank]
    assert "of 8 items mastered" in rows[1].text
    assert len(page.select("#tags-heading ~ .mastery-list > li")) == len(bank.tags)
    # The charts are Chart.js data with the same numbers as a table; no hand-drawn SVG.
    assert page.select_one("script[src^='/static/vendor/chart.umd.min.js']")
    assert not page.select("svg.chart")

    def chart(chart_id: str) -> dict:
        return json.loads(page.select_one(f"#{chart_id}-figure")["data-chart"])

    forecast = chart("forecast")
    assert len(forecast["x"]["labels"]) == 14 and sum(forecast["series"][0]["values"]) >= 1
    assert len(page.select("#forecast-figure tbody tr")) == 14
    calendar = chart("review-calendar")
    assert len(calendar["points"]) == 90
    assert calendar["points"][-1]["v"] == 2 and sum(p["v"] for p in calendar["points"]) == 2
    # Labelled: weekdays on one axis, weeks on the other, and a legend.
    assert calendar["y"]["labels"] == ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
    assert calendar["x"]["title"] == "week of" and calendar["x"]["labels"]
    assert "busiest day (2 reviews)" in page.select_one(".legend").text
    assert "2" in page.select_one(".stats").text


def test_a_new_learner_is_told_what_to_do_instead_of_empty_charts(db_client: TestClient) -> None:
    page = BeautifulSoup(db_client.get("/progress").text, "html.parser")
    empty = page.select_one(".empty-state")
    assert empty is not None
    assert empty.select_one("a[href='/practice?new=true']").text == "Start a practice round"
    assert not page.select("svg.chart")
    home = BeautifulSoup(db_client.get("/").text, "html.parser")
    assert home.select_one(".banner a[href='/practice?new=true']")


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


# --- mastery: the share of items FSRS holds stable (≥ 10 days) whose last grade passed ------


def _card_after(ratings: list[tuple[Rating, timedelta]], start: datetime) -> tuple[CardState, int]:
    """A card reviewed with `ratings` (each after its delay), by fsrs itself; (card, last)."""
    card = Card(card_id=1, due=start)
    at = start
    for rating, delay in ratings:
        at += delay
        card, _ = FSRS.review_card(card, rating, review_datetime=at)
    state = CardState(
        user_id=1,
        item_id="x",
        question_slug="q",
        state=card.state.value,
        step=card.step,
        stability=card.stability,
        difficulty=card.difficulty,
        due=card.due,
        last_review=card.last_review,
    )
    return state, ratings[-1][0].value


def test_an_item_is_mastered_only_when_stable_and_last_answered_right() -> None:
    start = datetime(2026, 3, 1, 9, tzinfo=UTC)
    good, again = Rating.Good, Rating.Again
    once, _ = _card_after([(good, timedelta(0))], start)
    assert not is_mastered(once, good.value)  # one right answer is not mastery
    spaced, last = _card_after(
        [(good, timedelta(0)), (good, timedelta(minutes=10)), (good, timedelta(days=2))], start
    )
    assert spaced.stability is not None and spaced.stability >= MASTERY_STABILITY_DAYS
    assert is_mastered(spaced, last)
    lapsed, last = _card_after(
        [
            (good, timedelta(0)),
            (good, timedelta(minutes=10)),
            (good, timedelta(days=2)),
            (good, timedelta(days=11)),
            (again, timedelta(days=60)),
        ],
        start,
    )
    assert last == again.value and not is_mastered(lapsed, last)
    # Even a card still very stable is not mastered right after a wrong answer.
    assert not is_mastered(
        CardState(
            user_id=1,
            item_id="x",
            question_slug="q",
            state=2,
            stability=400.0,
            difficulty=5.0,
            due=start,
            last_review=start,
        ),
        Rating.Again.value,
    )


def test_three_wrong_answers_leave_mastery_at_zero(db_client: TestClient) -> None:
    for _ in range(3):
        _answer(db_client, "metrics-micro-f1", 1)
    assert _wrong_three_times_is_wrong(db_client)


def _wrong_three_times_is_wrong(client: TestClient) -> bool:
    body = client.get("/api/progress").json()
    row = next(q for q in body["questions"] if q["slug"] == "evaluation-metrics")
    return row["reviews"] == 3 and row["mastered"] == 0 and row["mastery"] == 0.0


def test_mastery_per_question_and_per_tag_counts_items(bank: QuestionBank) -> None:
    start = datetime(2026, 3, 1, 9, tzinfo=UTC)
    steady = [
        (Rating.Good, timedelta(0)),
        (Rating.Good, timedelta(minutes=10)),
        (Rating.Good, timedelta(days=2)),
    ]
    pooling = bank.get("pooling")
    metrics = bank.get("evaluation-metrics")
    assert pooling is not None and metrics is not None
    mastered_ids = [pooling.meta.quiz[0].id, pooling.meta.quiz[1].id, metrics.meta.quiz[0].id]
    cards, history = {}, []
    for item_id in mastered_ids:
        card, last = _card_after(steady, start)
        cards[item_id] = card
        slug = "pooling" if item_id.startswith("pool") else "evaluation-metrics"
        history.append(
            ReviewLog(
                user_id=1,
                item_id=item_id,
                question_slug=slug,
                rating=last,
                correct=True,
                reviewed_at=start,
            )
        )
    now = start + timedelta(days=3)
    rows = {r.slug: r for r in by_question(bank, cards, history, now)}
    assert rows["pooling"].mastered == 2
    assert rows["pooling"].mastery == 2 / len(pooling.meta.quiz)
    tags = {t.tag: t for t in by_tag(bank, cards, history)}
    calibration_items = [i.id for q in bank if "calibration" in q.tags for i in q.meta.quiz]
    assert tags["calibration"].items == len(calibration_items)
    assert tags["calibration"].mastered == sum(i in calibration_items for i in mastered_ids)
    assert tags["pooling"].mastery == 2 / len(pooling.meta.quiz)


def test_the_page_defines_mastery_and_names_its_source(db_client: TestClient) -> None:
    _answer(db_client, "pool-max-gradient", 0)
    page = BeautifulSoup(db_client.get("/progress").text, "html.parser")
    definition = page.select_one("#mastery-definition").text
    assert "10 days" in definition and "last answer" in definition
    assert "FSRS" in definition and "KDD 2022" in definition
