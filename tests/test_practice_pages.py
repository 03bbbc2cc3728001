"""Practice rounds and the mock interview as HTML forms (what a browser without JS does)."""

from __future__ import annotations

from bs4 import BeautifulSoup
from fastapi.testclient import TestClient

from app.content import QuestionBank
from app.content.schema import ChoiceItem, NumericItem, RecallItem
from app.practice.generators import variant


def page(response) -> BeautifulSoup:
    return BeautifulSoup(response.text, "html.parser")


def right_answer(bank: QuestionBank, form: BeautifulSoup) -> str:
    item_id = form.select_one("input[name=item_id]")["value"]
    found = bank.item(item_id)
    assert found is not None
    item = found[1]
    if isinstance(item, ChoiceItem):
        return str(item.answer_index)
    if isinstance(item, NumericItem):
        if item.generator:
            return str(
                variant(item.generator, int(form.select_one("input[name=seed]")["value"])).answer
            )
        return str(item.answer)
    assert isinstance(item, RecallItem)
    return "good"


def submit(client: TestClient, form: BeautifulSoup, answer: str):
    fields = {i["name"]: i.get("value", "") for i in form.select("input[type=hidden]")}
    return client.post("/practice/answer", data={**fields, "answer": answer})


def test_a_round_of_one_question_goes_item_by_item_to_a_summary(
    db_client: TestClient, bank: QuestionBank
) -> None:
    question = bank.get("pooling")
    assert question is not None
    count = len(question.meta.quiz)
    seen = []
    response = db_client.get(
        "/practice", params={"question": "pooling", "size": count, "new": "true"}
    )
    for _ in range(count):
        form = page(response).select_one("#practice-card form")
        assert form is not None, response.text[:500]
        seen.append(form.select_one("input[name=item_id]")["value"])
        feedback = submit(db_client, form, right_answer(bank, form))
        assert feedback.status_code == 200
        verdict = page(feedback).select_one("#verdict").text
        assert "Correct" in verdict or "Graded" in verdict
        response = db_client.get("/practice")
    assert sorted(seen) == sorted(item.id for item in question.meta.quiz)
    summary = page(response)
    assert summary.h1.text == "Round complete"
    assert len(summary.select("table.summary tbody tr")) == count


def test_new_items_come_in_syllabus_order_and_due_ones_first(
    db_client: TestClient, bank: QuestionBank
) -> None:
    first = page(db_client.get("/practice", params={"new": "true"})).select_one(
        "input[name=item_id]"
    )["value"]
    assert first == bank.questions[0].meta.quiz[0].id
    # An item answered wrongly is due again in minutes; once due it comes before new items.
    assert (
        db_client.post(
            "/api/quiz/answers", json={"item_id": "pool-gap-card", "answer": "again"}
        ).status_code
        == 200
    )


def test_wrong_answer_shows_the_right_one_and_the_explanation(
    db_client: TestClient, bank: QuestionBank
) -> None:
    form = page(
        db_client.get("/practice", params={"question": "pooling", "new": "true"})
    ).select_one("#practice-card form")
    item = bank.item(form.select_one("input[name=item_id]")["value"])[1]
    wrong = "0" if isinstance(item, ChoiceItem) and item.answer_index != 0 else "1"
    if isinstance(item, NumericItem):
        wrong = "-12345"
    feedback = page(submit(db_client, form, wrong))
    assert "Not quite" in feedback.select_one("#verdict").text
    assert feedback.select_one(".explanation").text.strip()


def test_an_unusable_answer_is_shown_inline_with_422(db_client: TestClient) -> None:
    form = page(
        db_client.get("/practice", params={"question": "convolutional-layers", "new": "true"})
    ).select_one("#practice-card form")
    assert form.select_one("input[name=item_id]")["value"] == "conv-output-floor"
    response = submit(db_client, form, "sixteen")
    assert response.status_code == 422
    assert "is not a number" in page(response).select_one(".form-error").text
    assert db_client.get("/api/progress").json()["questions"][0]["reviews"] == 0


def test_undo_from_the_feedback_takes_the_grade_back(
    db_client: TestClient, bank: QuestionBank
) -> None:
    form = page(
        db_client.get("/practice", params={"question": "pooling", "new": "true"})
    ).select_one("#practice-card form")
    feedback = page(submit(db_client, form, right_answer(bank, form)))
    undo = feedback.select_one("form[action='/practice/undo']")
    token = undo.select_one("input[name=csrf_token]")["value"]
    response = db_client.post("/practice/undo", data={"csrf_token": token}, follow_redirects=False)
    assert response.status_code == 303
    assert sum(q["reviews"] for q in db_client.get("/api/progress").json()["questions"]) == 0


def test_bad_practice_parameters_are_422(db_client: TestClient) -> None:
    assert db_client.get("/practice", params={"question": "nope"}).status_code == 422
    assert db_client.get("/practice", params={"size": "0"}).status_code == 422
    assert db_client.get("/practice", params={"size": "many"}).status_code == 422


def test_mock_interview_gives_feedback_only_at_the_end(
    db_client: TestClient, bank: QuestionBank
) -> None:
    start = page(db_client.get("/practice/mock"))
    token = start.select_one("input[name=csrf_token]")["value"]
    db_client.post("/practice/mock", data={"csrf_token": token, "items": "4", "minutes": "5"})
    round_page = page(db_client.get("/practice/mock"))
    items = round_page.select(".mock-items > li")
    assert len(items) == 4
    assert round_page.select_one("[data-deadline]")
    assert not round_page.select(".explanation")
    # A new learner gets the first auto-graded items in syllabus order; answer two rightly.
    expected = [i for q in bank for i in q.meta.quiz if i.kind in ("choice", "numeric")][:4]
    answers = {}
    for index, item in enumerate(expected[:2]):
        right = item.answer_index if isinstance(item, ChoiceItem) else item.answer
        answers[f"answer-{index}"] = str(right)
    result = db_client.post("/practice/mock/submit", data={"csrf_token": token, **answers})
    assert result.status_code == 200
    body = page(result)
    assert body.h1.text.startswith("Mock interview: ")
    assert body.h1.text.endswith("of 4")
    assert len(body.select(".mock-results > li")) == 4
    verdicts = [v.text for v in body.select(".mock-results .verdict")]
    assert [v.startswith("✓ Correct") for v in verdicts] == [True, True, False, False]
    assert verdicts[2:] == ["Not answered", "Not answered"]
    assert sum(q["reviews"] for q in db_client.get("/api/progress").json()["questions"]) == 2


def test_mock_submit_without_a_running_round_is_409(db_client: TestClient) -> None:
    token = page(db_client.get("/practice/mock")).select_one("input[name=csrf_token]")["value"]
    assert db_client.post("/practice/mock/submit", data={"csrf_token": token}).status_code == 409
