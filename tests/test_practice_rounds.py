"""Rounds: interleaved across questions, chosen questions, tags and size, a mistakes round,
summaries and feedback you can learn from, the mock drawn across the syllabus."""

from __future__ import annotations

import random
import re
from datetime import UTC, datetime

from bs4 import BeautifulSoup
from fastapi.testclient import TestClient
from fsrs import Card, Rating, Scheduler

from app.content import QuestionBank
from app.content.schema import ChoiceItem, NumericItem, QuizItem, RecallItem
from app.models import CardState
from app.practice.generators import variant
from app.practice.grading import present
from app.practice.selection import candidates, mock_draw
from tests.test_practice_pages import (
    mock_items,
    right_answer,
    right_for,
    seed_of,
    submit,
    wrong_answer,
)
from tests.web import csrf, soup

NOW = datetime(2026, 5, 1, 12, tzinfo=UTC)


def current(
    client: TestClient, bank: QuestionBank, response=None
) -> tuple[BeautifulSoup, QuizItem]:
    form = soup(response or client.get("/practice")).select_one("#practice-card form")
    assert form is not None
    found = bank.item(form.select_one("input[name=item_id]")["value"])
    assert found is not None
    return form, found[1]


def question_of(bank: QuestionBank, item: QuizItem) -> int:
    found = bank.item(item.id)
    assert found is not None
    return found[0].number


# --- what comes next -------------------------------------------------------------------------


def test_new_items_rotate_through_the_least_practised_questions(bank: QuestionBank) -> None:
    order = candidates(bank, {}, NOW)
    assert [c.question.number for c in order[:12]] == list(range(1, 13))
    assert [c.question.number for c in order[12:24]] == list(range(1, 13))
    # Once Q1's first item has a card, Q2…Q12 come before Q1's second item.
    first = order[0].item.id
    card = Scheduler(enable_fuzzing=False).review_card(Card(card_id=1, due=NOW), Rating.Good)[0]
    seen = {
        first: CardState(
            user_id=1,
            item_id=first,
            question_slug="convolutional-layers",
            state=card.state.value,
            step=card.step,
            stability=card.stability,
            difficulty=card.difficulty,
            due=datetime(2026, 5, 2, tzinfo=UTC),
            last_review=NOW,
        )
    }
    later = [c for c in candidates(bank, seen, NOW) if c.reason == "new"]
    assert [c.question.number for c in later[:12]] == [*range(2, 13), 1]


def test_the_mock_draws_one_item_per_question_before_any_gets_two(bank: QuestionBank) -> None:
    for seed in range(20):
        for count in (5, 12, 20):
            drawn = mock_draw(bank, {}, NOW, count=count, rng=random.Random(seed))
            numbers = [c.question.number for c in drawn]
            assert len(numbers) == count
            assert {c.item.kind for c in drawn} <= {"choice", "numeric"}
            per = [numbers.count(n) for n in range(1, 13)]
            assert max(per) - min(per) <= 1, (seed, count, per)
            if count <= 12:
                assert len(set(numbers)) == count


def test_a_round_on_chosen_tags_takes_only_their_questions_interleaved(
    db_client: TestClient, bank: QuestionBank
) -> None:
    tagged = [q.number for q in bank if "calibration" in q.tags]
    assert len(tagged) >= 2
    response = db_client.get("/practice", params={"new": "true", "tag": "calibration", "size": 4})
    seen = []
    for _ in range(4):
        form, item = current(db_client, bank, response)
        seen.append(question_of(bank, item))
        submit(db_client, form, right_answer(bank, form))
        response = db_client.get("/practice")
    assert set(seen) <= set(tagged)
    assert seen[:2] == tagged[:2]  # one question, then the other: not two in a row
    assert "Round summary" in db_client.get("/practice/summary").text


def test_a_round_on_chosen_questions_and_size_stops_at_that_size(
    db_client: TestClient, bank: QuestionBank
) -> None:
    params = {"new": "true", "question": ["pooling", "class-imbalance"], "size": "３"}
    response = db_client.get("/practice", params=params)
    seen = []
    for _ in range(3):
        form, item = current(db_client, bank, response)
        seen.append(question_of(bank, item))
        feedback = soup(submit(db_client, form, right_answer(bank, form)))
        response = db_client.get("/practice")
    assert seen == [2, 9, 2]
    assert feedback.select_one("[data-next]")["href"] == "/practice/summary"
    start = soup(response)  # over: the practice page offers a new round
    assert start.h1.text == "Practice" and start.select_one("form.round-form")
    assert "3 items" in start.select_one("a[href='/practice/summary']").parent.text


def test_unknown_questions_and_tags_and_bad_sizes_are_422_naming_the_field(
    db_client: TestClient,
) -> None:
    for params, field in (
        ({"tag": "architecture"}, "tag"),
        ({"question": "nope"}, "question"),
        ({"size": "51"}, "size"),
        ({"size": "ten"}, "size"),
    ):
        response = db_client.get("/practice", params={"new": "true", **params})
        assert response.status_code == 422
        assert field in response.text


# --- reviewing mistakes ----------------------------------------------------------------------


def test_the_summary_lists_prompt_your_answer_the_right_one_and_a_link(
    db_client: TestClient, bank: QuestionBank
) -> None:
    response = db_client.get("/practice", params={"new": "true", "question": "pooling", "size": 2})
    answered = []
    for answer_with in (wrong_answer, right_answer):
        form, item = current(db_client, bank, response)
        shown = present(item, seed_of(form))
        given = answer_with(bank, form)
        answered.append((item, shown, given))
        submit(db_client, form, given)
        response = db_client.get("/practice")
    summary = soup(db_client.get("/practice/summary"))
    rows = summary.select(".round-summary > li")
    assert len(rows) == 2
    for row, (item, shown, given) in zip(rows, answered, strict=True):
        assert row.select_one(".item-prompt").text.strip()
        assert row.select_one("a[href='/questions/pooling?reveal=true#answer']")
        assert row.select_one(".explanation").text.strip()
        if isinstance(item, ChoiceItem):
            assert row.select_one(".given").text == shown.choices[int(given)].text
            assert row.select_one(".expected").text == item.choices[item.answer_index].text
    assert "failed" in rows[0]["class"] and "✗ wrong" in rows[0].text
    assert summary.select_one("a[href*='mistakes=true']").text == "Review my mistakes (1)"


def test_a_mistakes_round_brings_back_only_what_was_wrong(
    db_client: TestClient, bank: QuestionBank
) -> None:
    response = db_client.get("/practice", params={"new": "true", "size": 4})
    wrong = []
    for n in range(4):
        form, item = current(db_client, bank, response)
        if n % 2 == 0:
            wrong.append(item.id)
            submit(db_client, form, wrong_answer(bank, form))
        else:
            submit(db_client, form, right_answer(bank, form))
        response = db_client.get("/practice")
    start = soup(response)
    assert "2 items you answered wrongly" in start.text
    response = db_client.get("/practice", params={"new": "true", "mistakes": "true", "size": 2})
    again = []
    for _ in range(2):
        form, item = current(db_client, bank, response)
        again.append(item.id)
        submit(db_client, form, right_answer(bank, form))
        response = db_client.get("/practice")
    assert sorted(again) == sorted(wrong)
    assert list(reversed(wrong)) == again  # most recent mistake first
    assert (
        "None yet" in soup(db_client.get("/practice")).select_one("#mistakes-heading").parent.text
    )


def test_wrong_feedback_shows_what_you_typed_and_the_right_answer(
    db_client: TestClient, bank: QuestionBank
) -> None:
    form, item = current(
        db_client,
        bank,
        db_client.get("/practice", params={"new": "true", "question": "convolutional-layers"}),
    )
    assert isinstance(item, NumericItem) and item.answer is not None
    feedback = soup(submit(db_client, form, "1,234"))
    assert "Not quite" in feedback.select_one("#verdict").text
    assert feedback.select_one(".given").text == "1,234"
    assert feedback.select_one(".expected").text.startswith(f"{item.answer:g}")


def test_an_unreadable_number_keeps_the_text_with_an_inline_message(
    db_client: TestClient, bank: QuestionBank
) -> None:
    form, _ = current(
        db_client,
        bank,
        db_client.get("/practice", params={"new": "true", "question": "convolutional-layers"}),
    )
    response = submit(db_client, form, "sixteen")
    assert response.status_code == 422
    again = soup(response)
    field = again.select_one("input#answer")
    assert field["value"] == "sixteen"
    assert field["aria-invalid"] == "true" and field["aria-describedby"] == "answer-error"
    assert "is not a number" in again.select_one("#answer-error").text


def test_a_right_answer_after_the_hint_says_it_counted_as_hard(
    db_client: TestClient, bank: QuestionBank
) -> None:
    response = db_client.get(
        "/practice", params={"new": "true", "question": "convolutional-layers"}
    )
    for _ in range(11):
        form, item = current(db_client, bank, response)
        if isinstance(item, NumericItem) and item.generator:
            break
        submit(db_client, form, right_answer(bank, form))
        response = db_client.get("/practice")
    else:
        raise AssertionError("no parametric item in Q1")
    fields = {i["name"]: i.get("value", "") for i in form.select("input[type=hidden]")}
    right = str(variant(item.generator, seed_of(form)).answer)
    feedback = db_client.post(
        "/practice/answer", data={**fields, "hints_used": "1", "answer": right}
    )
    verdict = soup(feedback).select_one("#verdict").text
    assert verdict == "✓ Correct, counted as Hard"
    export = db_client.get("/progress/export.json").json()
    assert export["reviews"][-1]["rating"] == Rating.Hard.value


def test_grade_buttons_show_when_the_card_comes_back(
    db_client: TestClient, bank: QuestionBank
) -> None:
    question = next(q for q in bank if any(isinstance(i, RecallItem) for i in q.meta.quiz))
    response = db_client.get("/practice", params={"new": "true", "question": question.slug})
    for _ in range(len(question.meta.quiz)):
        form, item = current(db_client, bank, response)
        if isinstance(item, RecallItem):
            break
        submit(db_client, form, right_answer(bank, form))
        response = db_client.get("/practice")
    buttons = soup(db_client.get("/practice")).select(".grades button")
    # A new card, as fsrs schedules it: the learning steps, then Easy's first interval.
    now = datetime.now(UTC)
    fsrs = Scheduler(desired_retention=0.9, enable_fuzzing=False)
    for button, rating in zip(buttons, Rating, strict=True):
        due = fsrs.review_card(Card(card_id=1, due=now), rating, review_datetime=now)[0].due
        minutes = (due - now).total_seconds() / 60
        expected = f"{round(minutes)} min" if minutes < 60 else f"{round(minutes / 1440)} day"
        assert expected in button.select_one(".interval").text, button.text


def test_undo_says_so_and_shows_the_item_again_as_it_was(
    db_client: TestClient, bank: QuestionBank
) -> None:
    form, item = current(
        db_client, bank, db_client.get("/practice", params={"new": "true", "question": "pooling"})
    )
    feedback = soup(submit(db_client, form, right_answer(bank, form)))
    token = feedback.select_one("form[action='/practice/undo'] input[name=csrf_token]")["value"]
    undone = db_client.post("/practice/undo", data={"csrf_token": token})
    assert undone.status_code == 200 and str(undone.url).endswith("/practice?undone=true")
    again = soup(undone)
    assert "taken back" in again.select_one("#undo-notice").text
    shown = again.select_one("#practice-card form")
    assert shown.select_one("input[name=item_id]")["value"] == item.id
    assert seed_of(shown) == seed_of(form)
    assert "Item 1 of" in again.select_one(".practice-meta").text


def test_the_next_review_is_a_time_element_for_the_local_zone(
    db_client: TestClient, bank: QuestionBank
) -> None:
    form, _ = current(
        db_client, bank, db_client.get("/practice", params={"new": "true", "question": "pooling"})
    )
    time = soup(submit(db_client, form, right_answer(bank, form))).select_one("time[data-local]")
    when = datetime.fromisoformat(time["datetime"].replace("Z", "+00:00"))
    assert time.text == f"{when:%Y-%m-%d %H:%M} UTC"  # the text without JavaScript
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", time["datetime"])


def test_mock_results_show_everything_for_every_item_skipped_included(
    db_client: TestClient, bank: QuestionBank
) -> None:
    token = csrf(db_client, "/practice/mock")
    db_client.post("/practice/mock", data={"csrf_token": token, "items": "3", "minutes": "5"})
    drawn = mock_items(bank, soup(db_client.get("/practice/mock")))
    item, seed = drawn[0]
    answers = {"answer-0": right_for(item, seed), "answer-1": "-999"}
    body = soup(db_client.post("/practice/mock/submit", data={"csrf_token": token, **answers}))
    rows = body.select(".mock-results > li")
    assert len(rows) == 3
    for row, (item, _seed) in zip(rows, drawn, strict=True):
        found = bank.item(item.id)
        assert found is not None
        assert row.select_one(f"a[href='/questions/{found[0].slug}?reveal=true#answer']")
        assert row.select_one(".item-prompt").text.strip()
        assert row.select_one(".expected").text.strip()
        assert row.select_one(".explanation").text.strip()
    assert rows[0].select_one(".given").text.strip()
    assert rows[2].select_one(".verdict").text == "Not answered"
    assert rows[2].select_one(".given").text == "none"
