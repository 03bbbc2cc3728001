"""The practice JSON API, on SQLite and PostgreSQL: items, answers, undo, progress, errors."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient

from app.content import QuestionBank
from app.content.schema import ChoiceItem, NumericItem, RecallItem
from app.practice.generators import variant


def _items(client: TestClient, question: str) -> list[dict]:
    response = client.get("/api/quiz/items", params={"question": question})
    assert response.status_code == 200
    return response.json()


def _first(bank: QuestionBank, kind: type, *, parametric: bool = False):
    for question in bank:
        for item in question.meta.quiz:
            if isinstance(item, kind) and bool(getattr(item, "generator", None)) == parametric:
                return question, item
    raise AssertionError(f"no {kind.__name__} item")


def _reviews(client: TestClient) -> int:
    return sum(q["reviews"] for q in client.get("/api/progress").json()["questions"])


def test_items_of_a_question_have_kind_prompt_and_choices(
    db_client: TestClient, bank: QuestionBank
) -> None:
    items = _items(db_client, "convolutional-layers")
    question = bank.get("convolutional-layers")
    assert question is not None
    assert [i["id"] for i in items] == [i.id for i in question.meta.quiz]
    for item, source in zip(items, question.meta.quiz, strict=True):
        assert item["kind"] == source.kind
        assert item["prompt"]
        assert (item["choices"] is not None) == isinstance(source, ChoiceItem)


def test_a_parametric_item_comes_with_a_fresh_seed_and_its_variant(db_client: TestClient) -> None:
    items = {i["id"]: i for i in _items(db_client, "convolutional-layers")}
    drill = items["conv-drill-output-size"]
    assert isinstance(drill["seed"], int)
    assert drill["prompt"] == variant("conv-output-size", drill["seed"]).prompt
    again = {i["id"]: i for i in _items(db_client, "convolutional-layers")}[
        "conv-drill-output-size"
    ]
    assert again["seed"] != drill["seed"]


def test_right_choice_is_correct_and_schedules_a_later_review(
    db_client: TestClient, bank: QuestionBank
) -> None:
    _, item = _first(bank, ChoiceItem)
    response = db_client.post(
        "/api/quiz/answers", json={"item_id": item.id, "answer": item.answer_index}
    )
    assert response.status_code == 200
    body = response.json()
    assert body["correct"] is True
    assert body["expected"] == item.choices[item.answer_index].text
    assert body["explanation"]
    assert datetime.fromisoformat(body["due"]) > datetime.now(UTC)


def test_wrong_choice_is_incorrect_and_explains_the_right_one(
    db_client: TestClient, bank: QuestionBank
) -> None:
    _, item = _first(bank, ChoiceItem)
    wrong = (item.answer_index + 1) % len(item.choices)
    body = db_client.post("/api/quiz/answers", json={"item_id": item.id, "answer": wrong}).json()
    assert body["correct"] is False
    assert item.choices[item.answer_index].text in body["explanation"]


def test_numeric_answer_within_tolerance_is_correct(
    db_client: TestClient, bank: QuestionBank
) -> None:
    _, item = _first(bank, NumericItem)
    assert item.answer is not None
    body = db_client.post(
        "/api/quiz/answers", json={"item_id": item.id, "answer": item.answer + item.tolerance / 2}
    ).json()
    assert body["correct"] is True
    off = db_client.post(
        "/api/quiz/answers", json={"item_id": item.id, "answer": item.answer + item.tolerance + 1}
    ).json()
    assert off["correct"] is False


def test_parametric_answer_is_graded_against_its_seed(db_client: TestClient) -> None:
    seed = 1234
    right = variant("conv-params", seed).answer
    body = db_client.post(
        "/api/quiz/answers", json={"item_id": "conv-drill-params", "seed": seed, "answer": right}
    ).json()
    assert body["correct"] is True
    wrong = db_client.post(
        "/api/quiz/answers",
        json={"item_id": "conv-drill-params", "seed": seed, "answer": right + 1},
    ).json()
    assert wrong["correct"] is False


@pytest.mark.parametrize("grade", ["again", "hard", "good", "easy"])
def test_recall_card_takes_a_self_grade(
    db_client: TestClient, bank: QuestionBank, grade: str
) -> None:
    _, item = _first(bank, RecallItem)
    body = db_client.post("/api/quiz/answers", json={"item_id": item.id, "answer": grade}).json()
    assert body["correct"] is None
    assert body["expected"] == item.answer


def test_easy_schedules_later_than_again(
    db_client: TestClient, other_client: TestClient, bank: QuestionBank
) -> None:
    _, item = _first(bank, RecallItem)
    again = db_client.post("/api/quiz/answers", json={"item_id": item.id, "answer": "again"}).json()
    easy = other_client.post(
        "/api/quiz/answers", json={"item_id": item.id, "answer": "easy"}
    ).json()
    assert datetime.fromisoformat(easy["due"]) > datetime.fromisoformat(again["due"])


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"item_id": "conv-output-floor", "answer": "twelve"}, "answer"),
        ({"item_id": "conv-output-floor", "answer": True}, "answer"),
        ({"item_id": "conv-output-floor", "answer": 3, "seed": 5}, "seed"),
        ({"item_id": "conv-drill-params", "answer": 3}, "seed"),
        ({"item_id": "conv-drill-params", "answer": 3, "seed": 0}, "seed"),
        ({"item_id": "no-such-item", "answer": 1}, "item_id"),
        ({"item_id": "pool-max-gradient", "answer": 99}, "answer"),
        ({"item_id": "pool-max-gradient", "answer": -1}, "answer"),
        ({"item_id": "pool-max-gradient", "answer": "first"}, "answer"),
        ({"item_id": "pool-gap-card", "answer": "perfect"}, "answer"),
        ({"answer": 1}, "item_id"),
        ({"item_id": "pool-max-gradient", "answer": 0, "extra": 1}, "extra"),
    ],
)
def test_bad_answer_is_422_naming_the_field_and_records_nothing(
    db_client: TestClient, payload: dict, field: str
) -> None:
    response = db_client.post("/api/quiz/answers", json=payload)
    assert response.status_code == 422
    assert field in response.json()["detail"]
    assert _reviews(db_client) == 0


def test_non_json_body_is_415(db_client: TestClient) -> None:
    response = db_client.post(
        "/api/quiz/answers",
        content="item_id=pool-max-gradient&answer=0",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 415
    assert _reviews(db_client) == 0


def test_same_idempotency_key_records_once(db_client: TestClient) -> None:
    payload = {"item_id": "pool-max-gradient", "answer": 0, "idempotency_key": "attempt-1"}
    first = db_client.post("/api/quiz/answers", json=payload).json()
    second = db_client.post("/api/quiz/answers", json=payload).json()
    assert first["review_id"] == second["review_id"]
    assert _reviews(db_client) == 1
    header = db_client.post(
        "/api/quiz/answers",
        json={"item_id": "pool-max-gradient", "answer": 0},
        headers={"Idempotency-Key": "attempt-1"},
    ).json()
    assert header["review_id"] == first["review_id"]
    assert _reviews(db_client) == 1


def test_another_users_review_is_404(db_client: TestClient, other_client: TestClient) -> None:
    review_id = db_client.post(
        "/api/quiz/answers", json={"item_id": "pool-max-gradient", "answer": 0}
    ).json()["review_id"]
    assert db_client.get(f"/api/quiz/reviews/{review_id}").status_code == 200
    assert other_client.get(f"/api/quiz/reviews/{review_id}").status_code == 404
    assert _reviews(other_client) == 0


def test_undo_removes_the_last_review_and_restores_the_card(db_client: TestClient) -> None:
    first = db_client.post(
        "/api/quiz/answers", json={"item_id": "pool-gap-card", "answer": "good"}
    ).json()
    db_client.post("/api/quiz/answers", json={"item_id": "pool-gap-card", "answer": "easy"})
    undone = db_client.post("/api/quiz/undo", json={})
    assert undone.status_code == 200 and undone.json()["answer"] == "easy"
    assert _reviews(db_client) == 1
    progress = {q["slug"]: q for q in db_client.get("/api/progress").json()["questions"]}
    assert progress["pooling"]["reviews"] == 1
    # The card is back where the first review left it: the same answer again lands on the same due.
    redo = db_client.post(
        "/api/quiz/answers", json={"item_id": "pool-gap-card", "answer": "easy"}
    ).json()
    assert datetime.fromisoformat(redo["due"]) > datetime.fromisoformat(first["due"])
    assert db_client.post("/api/quiz/undo", json={}).status_code == 200
    assert db_client.post("/api/quiz/undo", json={}).status_code == 200
    assert db_client.post("/api/quiz/undo", json={}).status_code == 404


def test_progress_counts_reviews_correct_and_due(db_client: TestClient) -> None:
    db_client.post("/api/quiz/answers", json={"item_id": "pool-max-gradient", "answer": 0})
    db_client.post("/api/quiz/answers", json={"item_id": "pool-max-gradient", "answer": 1})
    body = db_client.get("/api/progress").json()
    pooling = next(q for q in body["questions"] if q["slug"] == "pooling")
    assert pooling["reviews"] == 2 and pooling["correct"] == 1
    # The last answer was wrong: nothing is mastered, however recently it was reviewed.
    assert (pooling["seen"], pooling["mastered"], pooling["mastery"]) == (1, 0, 0.0)
    assert pooling["items"] == 8
    assert body["streak"] == 1
    assert len(body["questions"]) == 12


def test_unknown_question_filter_is_422(db_client: TestClient) -> None:
    response = db_client.get("/api/quiz/items", params={"question": "nope"})
    assert response.status_code == 422
    assert "question" in response.json()["detail"]


def test_a_decimal_comma_is_refused_not_read_as_thousands(
    db_client: TestClient, bank: QuestionBank
) -> None:
    _, item = _first(bank, NumericItem)
    response = db_client.post("/api/quiz/answers", json={"item_id": item.id, "answer": "0,153"})
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert detail.startswith("answer: ") and "0.153, not 0,153" in detail
    assert _reviews(db_client) == 0  # nothing was recorded
    assert item.answer is not None
    with_separators = f"{item.answer:,}"  # 12,345 is still twelve thousand …
    body = db_client.post(
        "/api/quiz/answers", json={"item_id": item.id, "answer": with_separators}
    ).json()
    assert body["correct"] is True, with_separators
