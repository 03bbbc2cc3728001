"""JSON API for the questions."""

from __future__ import annotations

from fastapi.testclient import TestClient

from app.content import QuestionBank


def test_list_questions_in_order_with_summary_fields(
    client: TestClient, bank: QuestionBank
) -> None:
    response = client.get("/api/questions")
    assert response.status_code == 200
    body = response.json()
    assert [item["number"] for item in body] == list(range(1, 13))
    assert set(body[0]) == {"number", "slug", "title", "tags", "difficulty"}
    assert body[0]["slug"] == bank.questions[0].slug


def test_read_question_includes_prompt_and_answer_html(
    client: TestClient, bank: QuestionBank
) -> None:
    question = bank.questions[6]
    body = client.get(f"/api/questions/{question.slug}").json()
    assert body["title"] == question.title
    assert body["prompt_html"] == question.prompt_html
    assert "<h3" in body["answer_html"]


def test_read_unknown_question_is_404_json(client: TestClient) -> None:
    response = client.get("/api/questions/no-such-question")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/json"
    assert "no-such-question" in response.json()["detail"]


def test_openapi_documents_the_question_routes(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/api/questions", "/api/questions/{slug}", "/healthz"} <= set(paths)
    assert "/" not in paths
