"""Practice rounds and the mock interview as HTML forms (what a browser without JS does)."""

from __future__ import annotations

from bs4 import BeautifulSoup
from fastapi.testclient import TestClient

from app.content import QuestionBank
from app.content.schema import ChoiceItem, NumericItem, QuizItem, RecallItem
from app.practice.generators import variant
from app.practice.grading import present
from tests.web import soup


def seed_of(form: BeautifulSoup) -> int | None:
    field = form.select_one("input[name=seed]")
    return int(field["value"]) if field else None


def right_for(item: QuizItem, seed: int | None) -> str:
    """The right answer as a learner sends it: for multiple choice, the position shown."""
    if isinstance(item, ChoiceItem):
        return str(present(item, seed).shown_position(item.answer_index))
    if isinstance(item, NumericItem):
        return str(variant(item.generator, seed).answer if item.generator else item.answer)
    assert isinstance(item, RecallItem)
    return "good"


def right_answer(bank: QuestionBank, form: BeautifulSoup) -> str:
    found = bank.item(form.select_one("input[name=item_id]")["value"])
    assert found is not None
    return right_for(found[1], seed_of(form))


def wrong_answer(bank: QuestionBank, form: BeautifulSoup) -> str:
    found = bank.item(form.select_one("input[name=item_id]")["value"])
    assert found is not None
    item = found[1]
    if isinstance(item, ChoiceItem):
        return str((int(right_for(item, seed_of(form))) + 1) % len(item.choices))
    return "again" if isinstance(item, RecallItem) else "-12345"


def submit(client: TestClient, form: BeautifulSoup, answer: str):
    """Post `form` with `answer`; a renewed CSRF token in the answer (the first saved action
    gives the guest a fresh session key) goes into the form, as the page's script does."""
    fields = {i["name"]: i.get("value", "") for i in form.select("input[type=hidden]")}
    response = client.post("/practice/answer", data={**fields, "answer": answer})
    renewed = response.headers.get("X-CSRF-Token")
    token = form.select_one("input[name=csrf_token]")
    if renewed and token is not None:
        token["value"] = renewed
    return response


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
        form = soup(response).select_one("#practice-card form")
        assert form is not None, response.text[:500]
        seen.append(form.select_one("input[name=item_id]")["value"])
        feedback = submit(db_client, form, right_answer(bank, form))
        assert feedback.status_code == 200
        verdict = soup(feedback).select_one("#verdict").text
        assert "Correct" in verdict or "Graded" in verdict
        assert soup(feedback).select_one("[data-next]")["href"] == (
            "/practice/summary" if len(seen) == count else "/practice"
        )
        response = db_client.get("/practice")
    assert sorted(seen) == sorted(item.id for item in question.meta.quiz)
    # The round is over: "Practice" offers a new round, and the summary has every item.
    start = soup(response)
    assert start.select_one("form.round-form button").text == "Start a new round"
    assert start.select_one("a[href='/practice/summary']")
    summary = soup(db_client.get("/practice/summary"))
    assert summary.h1.text == "Round summary"
    assert len(summary.select(".round-summary > li")) == count


def test_a_new_learners_first_round_covers_ten_questions(
    db_client: TestClient, bank: QuestionBank
) -> None:
    seen = []
    response = db_client.get("/practice", params={"new": "true", "size": 10})
    for _ in range(10):
        form = soup(response).select_one("#practice-card form")
        seen.append(bank.item(form.select_one("input[name=item_id]")["value"])[0].number)
        assert submit(db_client, form, right_answer(bank, form)).status_code == 200
        response = db_client.get("/practice")
    assert seen == list(range(1, 11))  # the first new item of each question, in syllabus order


def test_wrong_answer_shows_the_right_one_and_the_explanation(
    db_client: TestClient, bank: QuestionBank
) -> None:
    form = soup(
        db_client.get("/practice", params={"question": "pooling", "new": "true"})
    ).select_one("#practice-card form")
    feedback = soup(submit(db_client, form, wrong_answer(bank, form)))
    assert "Not quite" in feedback.select_one("#verdict").text
    assert feedback.select_one(".explanation").text.strip()


def test_an_unusable_answer_is_shown_inline_with_422(db_client: TestClient) -> None:
    form = soup(
        db_client.get("/practice", params={"question": "convolutional-layers", "new": "true"})
    ).select_one("#practice-card form")
    assert form.select_one("input[name=item_id]")["value"] == "conv-output-floor"
    response = submit(db_client, form, "sixteen")
    assert response.status_code == 422
    error = soup(response).select_one(".form-error").text
    assert error.startswith("Your answer: 'sixteen' is not a number")  # the label, not `answer:`
    assert db_client.get("/api/progress").json()["questions"][0]["reviews"] == 0


def test_undo_from_the_feedback_takes_the_grade_back(
    db_client: TestClient, bank: QuestionBank
) -> None:
    form = soup(
        db_client.get("/practice", params={"question": "pooling", "new": "true"})
    ).select_one("#practice-card form")
    feedback = soup(submit(db_client, form, right_answer(bank, form)))
    undo = feedback.select_one("form[action='/practice/undo']")
    token = undo.select_one("input[name=csrf_token]")["value"]
    response = db_client.post("/practice/undo", data={"csrf_token": token}, follow_redirects=False)
    assert response.status_code == 303
    assert sum(q["reviews"] for q in db_client.get("/api/progress").json()["questions"]) == 0


def test_bad_practice_parameters_are_422(db_client: TestClient) -> None:
    assert db_client.get("/practice", params={"question": "nope"}).status_code == 422
    assert db_client.get("/practice", params={"size": "0"}).status_code == 422
    assert db_client.get("/practice", params={"size": "many"}).status_code == 422


def mock_items(bank: QuestionBank, round_page: BeautifulSoup) -> list[tuple[QuizItem, int | None]]:
    """The items of a running mock interview, with their seeds, as the page lists them."""
    items = []
    for entry in round_page.select(".mock-items > li"):
        found = bank.item(entry["data-item"])
        assert found is not None
        items.append((found[1], int(entry["data-seed"]) if entry.get("data-seed") else None))
    return items


def test_mock_interview_gives_feedback_only_at_the_end(
    db_client: TestClient, bank: QuestionBank
) -> None:
    start = soup(db_client.get("/practice/mock"))
    token = start.select_one("input[name=csrf_token]")["value"]
    db_client.post("/practice/mock", data={"csrf_token": token, "items": "4", "minutes": "5"})
    round_page = soup(db_client.get("/practice/mock"))
    assert len(round_page.select(".mock-items > li")) == 4
    assert round_page.select_one("[data-deadline]")
    assert not round_page.select(".explanation")
    drawn = mock_items(bank, round_page)
    answers = {f"answer-{n}": right_for(item, seed) for n, (item, seed) in enumerate(drawn[:2])}
    result = db_client.post("/practice/mock/submit", data={"csrf_token": token, **answers})
    assert result.status_code == 200
    body = soup(result)
    assert body.h1.text.startswith("Mock interview: ")
    assert body.h1.text.endswith("of 4")
    assert len(body.select(".mock-results > li")) == 4
    verdicts = [v.text for v in body.select(".mock-results .verdict")]
    assert [v.startswith("✓ Correct") for v in verdicts] == [True, True, False, False]
    assert verdicts[2:] == ["Not answered", "Not answered"]
    assert sum(q["reviews"] for q in db_client.get("/api/progress").json()["questions"]) == 2


def test_mock_submit_without_a_running_round_is_409(db_client: TestClient) -> None:
    token = soup(db_client.get("/practice/mock")).select_one("input[name=csrf_token]")["value"]
    assert db_client.post("/practice/mock/submit", data={"csrf_token": token}).status_code == 409
