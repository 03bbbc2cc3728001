"""Multiple-choice options are shuffled per attempt from its seed: the same order for the same
attempt, the right option spread evenly over the positions, the order shown in the log."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from bs4 import BeautifulSoup
from fastapi.testclient import TestClient
from scipy.stats import chisquare

from app.content import QuestionBank
from app.content.schema import ChoiceItem
from app.practice.grading import choice_order, grade, present
from tests.test_practice_pages import mock_items, seed_of, submit
from tests.web import csrf, soup

SEEDS = range(1, 1201)


def choice_items(bank: QuestionBank) -> list[ChoiceItem]:
    return [i for q in bank for i in q.meta.quiz if isinstance(i, ChoiceItem)]


def test_an_order_is_a_permutation_fixed_by_the_seed() -> None:
    for count in range(2, 7):
        for seed in (1, 2, 99, 2**31 - 1):
            order = choice_order(count, seed)
            assert sorted(order) == list(range(count))
            assert choice_order(count, seed) == order
    assert len({choice_order(4, seed) for seed in SEEDS}) == 24  # every order of 4 occurs


@pytest.mark.parametrize("count", [2, 3, 4, 5, 6])
def test_each_option_lands_evenly_on_each_position(count: int) -> None:
    positions = Counter(choice_order(count, seed).index(0) for seed in SEEDS)
    # Chi-square goodness of fit against the uniform distribution over the positions.
    assert chisquare([positions[p] for p in range(count)]).pvalue > 0.001


def test_over_all_items_the_right_option_is_spread_evenly(bank: QuestionBank) -> None:
    """The key's position over every choice item and 1,200 seeds: uniform per option count,
    and "always press 1" scores what guessing scores, not 100 %."""
    by_count: dict[int, Counter[int]] = {}
    first_right = shown = 0
    for item in choice_items(bank):
        counts = by_count.setdefault(len(item.choices), Counter())
        for seed in SEEDS:
            position = present(item, seed).shown_position(item.answer_index)
            counts[position] += 1
            first_right += position == 0
            shown += 1
    for count, positions in by_count.items():
        assert chisquare([positions[p] for p in range(count)]).pvalue > 0.001, positions
    guessing = sum(1 / len(i.choices) for i in choice_items(bank)) / len(choice_items(bank))
    assert abs(first_right / shown - guessing) < 0.02


def test_a_position_is_graded_against_the_order_shown(bank: QuestionBank) -> None:
    item = choice_items(bank)[0]
    seed = next(s for s in SEEDS if choice_order(len(item.choices), s)[0] != item.answer_index)
    shown = present(item, seed)
    right = shown.shown_position(item.answer_index)
    assert grade(shown, right).correct is True
    outcome = grade(shown, 0)
    assert outcome.correct is False
    assert outcome.given == shown.choices[0].text  # what the learner picked, as shown
    assert outcome.answer_text == str(item.choices.index(shown.choices[0]))  # its file index


def _options(card: BeautifulSoup) -> list[str]:
    return [label.select_one("span").text for label in card.select("label.choice")]


def test_the_same_attempt_shows_the_same_order_after_a_reload(
    db_client: TestClient, bank: QuestionBank
) -> None:
    first = soup(db_client.get("/practice", params={"question": "pooling", "new": "true"}))
    again = soup(db_client.get("/practice"))
    form = first.select_one("#practice-card form")
    assert seed_of(form) is not None and seed_of(form) == seed_of(again.select_one("form"))
    assert _options(first) == _options(again)
    item = bank.item(form.select_one("input[name=item_id]")["value"])[1]
    assert isinstance(item, ChoiceItem)
    shown = present(item, seed_of(form))
    # Keyboard numbers follow the order shown: key k is the k-th option on screen.
    assert _options(first) == [f"{k} {c.text}" for k, c in enumerate(shown.choices, 1)]
    keys = [i["data-key"] for i in first.select("input[type=radio]")]
    assert keys == [str(k) for k in range(1, len(item.choices) + 1)]


def test_the_review_log_records_the_order_shown(db_client: TestClient, bank: QuestionBank) -> None:
    form = soup(
        db_client.get("/practice", params={"question": "pooling", "new": "true"})
    ).select_one("#practice-card form")
    item = bank.item(form.select_one("input[name=item_id]")["value"])[1]
    assert isinstance(item, ChoiceItem)
    shown = present(item, seed_of(form))
    feedback = soup(submit(db_client, form, "1"))  # the second option on screen
    assert feedback.select_one(".given").text == shown.choices[1].text
    export = db_client.get("/progress/export.json").json()
    logged = export["reviews"][0]
    assert logged["seed"] == seed_of(form)
    assert logged["choice_order"] == ",".join(str(i) for i in shown.order)
    assert logged["answer"] == str(shown.order[1])
    read = db_client.get(f"/api/quiz/reviews/{logged['uid']}").json()
    assert read["choice_order"] == list(shown.order)


def test_the_api_lists_options_in_the_order_of_the_seed_it_hands_out(
    db_client: TestClient, bank: QuestionBank
) -> None:
    items = db_client.get("/api/quiz/items", params={"question": "pooling"}).json()
    listed = next(i for i in items if i["kind"] == "choice")
    item = bank.item(listed["id"])[1]
    assert isinstance(item, ChoiceItem) and isinstance(listed["seed"], int)
    shown = present(item, listed["seed"])
    assert listed["choices"] == [c.text for c in shown.choices]
    right = listed["choices"].index(item.choices[item.answer_index].text)
    body = {"item_id": item.id, "seed": listed["seed"], "answer": right}
    assert db_client.post("/api/quiz/answers", json=body).json()["correct"] is True
    # Without a seed an index still means the file's order, as before.
    plain = {"item_id": item.id, "answer": item.answer_index}
    assert db_client.post("/api/quiz/answers", json=plain).json()["correct"] is True


def test_the_mock_round_shows_each_choice_item_in_its_own_order(
    db_client: TestClient, bank: QuestionBank
) -> None:
    token = csrf(db_client, "/practice/mock")
    db_client.post("/practice/mock", data={"csrf_token": token, "items": "12", "minutes": "5"})
    round_page = soup(db_client.get("/practice/mock"))
    entries = round_page.select(".mock-items > li")
    checked = 0
    for entry, (item, seed) in zip(entries, mock_items(bank, round_page), strict=True):
        if isinstance(item, ChoiceItem):
            labels = [label.text.strip() for label in entry.select("label.choice")]
            assert labels == [c.text for c in present(item, seed).choices]
            checked += 1
    assert checked >= 1


def test_an_import_with_a_choice_order_that_is_not_an_order_is_refused(
    db_client: TestClient, other_client: TestClient
) -> None:
    form = soup(
        db_client.get("/practice", params={"question": "pooling", "new": "true"})
    ).select_one("#practice-card form")
    submit(db_client, form, "0")
    export = db_client.get("/progress/export.json").json()
    for bad, message in (("0,0,1", "choice_order"), ("0,1", "choice_order"), ("9", "choice_order")):
        broken = {**export, "reviews": [{**export["reviews"][0], "choice_order": bad}]}
        response = other_client.post(
            "/progress/import",
            data={"csrf_token": csrf(other_client, "/progress")},
            files={"file": ("e.json", json.dumps(broken), "application/json")},
        )
        assert response.status_code == 422
        assert f"reviews[0].{message}" in response.text
    ok = other_client.post(
        "/progress/import",
        data={"csrf_token": csrf(other_client, "/progress")},
        files={"file": ("e.json", json.dumps(export), "application/json")},
        follow_redirects=False,
    )
    assert ok.status_code == 303
    assert (
        other_client.get("/progress/export.json").json()["reviews"][0]["choice_order"]
        == export["reviews"][0]["choice_order"]
    )
