"""One rule for numbers a person types, and text the database cannot store, at every edge:
superscripts, full-width digits, 400-digit integers and NULs are read or refused with a 4xx
naming the field, never a 500. Database tests run on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
import torch
from bs4 import BeautifulSoup
from fastapi.testclient import TestClient
from torch import nn

from app.content import QuestionBank
from app.content.schema import ChoiceItem
from app.worker.errors import InvalidInput
from app.worker.numbers import as_finite_float, check_int, parse_float, parse_int
from tests.test_practice_pages import mock_items, right_for, seed_of, submit
from tests.web import csrf, login, register, soup


@pytest.mark.parametrize(
    ("text", "value"),
    [("12", 12), (" 12 ", 12), ("²", 2), ("①", 1), ("１２", 12), ("²²⁴", 224), ("-3", -3)],
)
def test_a_typed_whole_number_is_read_after_nfkc(text: str, value: int) -> None:
    assert parse_int(text, field="n") == value


@pytest.mark.parametrize("text", ["", "١٢", "1_000", "1.0", "12a", "9" * 41, "1" * 17, "⅓"])
def test_anything_else_is_refused_naming_the_field(text: str) -> None:
    with pytest.raises(InvalidInput) as error:
        parse_int(text, field="height")
    assert str(error.value).startswith("height: ")


@pytest.mark.parametrize(("text", "value"), [("0.5", 0.5), (".5", 0.5), ("1e-3", 1e-3), ("²", 2)])
def test_a_typed_number_is_read_after_nfkc(text: str, value: float) -> None:
    assert parse_float(text, field="x") == value


@pytest.mark.parametrize("text", ["nan", "inf", "-Infinity", "1e400", "1,5", "0x10", "١"])
def test_a_number_that_is_not_finite_decimal_ascii_is_refused(text: str) -> None:
    with pytest.raises(InvalidInput):
        parse_float(text, field="x")


def test_json_numbers_are_held_to_the_same_bounds() -> None:
    assert as_finite_float(3, field="a") == 3.0
    for huge in (10**400, -(10**400)):
        with pytest.raises(InvalidInput):
            as_finite_float(huge, field="a")
    with pytest.raises(InvalidInput, match="about 401 digits"):
        check_int(10**400, field="a")
    with pytest.raises(InvalidInput):
        as_finite_float(True, field="a")


# --- the demos --------------------------------------------------------------------------------


def test_a_superscript_in_the_layer_stack_reads_as_its_digit(client: TestClient) -> None:
    """Was a 500: `²`.isdigit() is True, then int('²') raises."""
    for route in ("/api/shapes/stack",):
        response = client.post(
            route, json={"layers": "conv ² k3\nconv ①6 k3", "height": 32, "width": 32}
        )
        assert response.status_code == 200, response.text
        model = nn.Sequential(nn.Conv2d(3, 2, 3), nn.Conv2d(2, 16, 3))
        expected = list(model(torch.zeros(1, 3, 32, 32)).shape[1:])
        assert response.json()["output_shape"] == expected
    html = client.get("/demos/shapes/stack", params={"layers": "conv ² k3"})
    assert html.status_code == 200


def test_full_width_digits_in_a_demo_form_are_read(client: TestClient) -> None:
    response = client.get(
        "/demos/shapes", params={"kind": "conv2d", "height": "２２４", "kernel_size": "⁷"}
    )
    assert response.status_code == 200
    arabic = client.get("/demos/shapes", params={"height": "٢٢٤"})
    assert arabic.status_code == 422 and "height" in arabic.text


def test_a_400_digit_integer_in_a_pooling_grid_is_422(client: TestClient) -> None:
    grid = [[1, 2], [3, 10**400]]
    response = client.post("/api/pooling/grid", json={"grid": grid, "kernel": 2})
    assert response.status_code == 422
    assert response.json()["detail"].startswith("grid")


# --- practice ---------------------------------------------------------------------------------


def _choice_form(client: TestClient, bank: QuestionBank) -> tuple[BeautifulSoup, ChoiceItem]:
    response = client.get("/practice", params={"question": "pooling", "new": "true"})
    form = soup(response).select_one("#practice-card form")
    found = bank.item(form.select_one("input[name=item_id]")["value"])
    assert found is not None and isinstance(found[1], ChoiceItem)
    return form, found[1]


def _right_position(form: BeautifulSoup, item: ChoiceItem) -> int:
    """Where the right option is in the shuffled order this form shows."""
    return int(right_for(item, seed_of(form)))


def test_a_superscript_choice_in_the_practice_form_is_that_option(
    db_client: TestClient, bank: QuestionBank
) -> None:
    form, item = _choice_form(db_client, bank)
    superscript = "⁰¹²³⁴⁵⁶⁷⁸⁹"[_right_position(form, item)]
    response = submit(db_client, form, superscript)
    assert response.status_code == 200
    assert "Correct" in soup(response).select_one("#verdict").text


def test_a_circled_digit_in_the_mock_round_is_that_option(
    db_client: TestClient, bank: QuestionBank
) -> None:
    token = csrf(db_client, "/practice/mock")
    db_client.post("/practice/mock", data={"csrf_token": token, "items": "⑫", "minutes": "５"})
    round_page = soup(db_client.get("/practice/mock"))
    # "⑫" read as 12: one item from each question, so some are multiple choice.
    assert len(round_page.select(".mock-items > li")) == 12
    drawn = mock_items(bank, round_page)
    index, item, seed = next(
        (n, i, s) for n, (i, s) in enumerate(drawn) if isinstance(i, ChoiceItem)
    )
    circled = "⓪①②③④⑤⑥⑦⑧⑨"[int(right_for(item, seed))]
    answers = {"csrf_token": token, f"answer-{index}": circled}
    result = db_client.post("/practice/mock/submit", data=answers)
    assert result.status_code == 200
    verdicts = [v.text for v in soup(result).select(".mock-results .verdict")]
    assert verdicts[index].startswith("✓ Correct")


@pytest.mark.parametrize("value", [10**400, "9" * 400, "1e400", "-inf", "١٢"])
def test_a_huge_numeric_answer_is_422_and_records_nothing(
    db_client: TestClient, value: object
) -> None:
    response = db_client.post(
        "/api/quiz/answers", json={"item_id": "conv-output-floor", "answer": value}
    )
    assert response.status_code == 422
    assert response.json()["detail"].startswith("answer")
    progress = db_client.get("/api/progress").json()
    assert sum(q["reviews"] for q in progress["questions"]) == 0


# --- text the database cannot store (PostgreSQL refuses NUL) ---------------------------------


def test_nul_in_a_draft_is_422_naming_the_field(db_client: TestClient) -> None:
    token = csrf(db_client, "/questions/pooling")
    response = db_client.post(
        "/questions/pooling/draft", data={"csrf_token": token, "draft": "max\x00pooling"}
    )
    assert response.status_code == 422
    assert "draft" in response.text and "NUL" in response.text


def test_nul_in_a_username_is_refused_at_register_and_login(db_client: TestClient) -> None:
    assert register(db_client, "ada\x00").status_code == 422
    refused = login(db_client, "ada\x00", "whatever-pass")
    assert refused.status_code == 422 and "username" in refused.text


def test_nul_or_an_overlong_idempotency_key_is_422(db_client: TestClient) -> None:
    body = {"item_id": "pool-max-gradient", "answer": 0}
    nul = db_client.post("/api/quiz/answers", json={**body, "idempotency_key": "k\x00"})
    assert nul.status_code == 422 and "idempotency_key" in nul.json()["detail"]
    long_header = db_client.post(
        "/api/quiz/answers", json=body, headers={"Idempotency-Key": "k" * 101}
    )
    assert long_header.status_code == 422 and "Idempotency-Key" in long_header.json()["detail"]
    surrogate = db_client.post(
        "/api/quiz/answers",
        content=b'{"item_id": "pool-max-gradient", "answer": 0, "idempotency_key": "\\ud800"}',
        headers={"Content-Type": "application/json"},
    )
    assert surrogate.status_code == 422
    assert db_client.get("/api/quiz/reviews/abc%00").status_code == 422
    progress = db_client.get("/api/progress").json()
    assert sum(q["reviews"] for q in progress["questions"]) == 0


def test_an_idempotency_key_reused_for_another_answer_is_409(db_client: TestClient) -> None:
    first = {"item_id": "pool-max-gradient", "answer": 0, "idempotency_key": "once"}
    created = db_client.post("/api/quiz/answers", json=first)
    again = db_client.post("/api/quiz/answers", json=first)
    assert created.status_code == again.status_code == 200
    assert created.json()["review_id"] == again.json()["review_id"]
    for changed in ({"answer": 1}, {"item_id": "pool-gap-card", "answer": "good"}):
        conflict = db_client.post("/api/quiz/answers", json={**first, **changed})
        assert conflict.status_code == 409
        assert conflict.json()["detail"].startswith("idempotency_key")
    header = db_client.post(
        "/api/quiz/answers",
        json={"item_id": "pool-gap-card", "answer": "good"},
        headers={"Idempotency-Key": "once"},
    )
    assert header.status_code == 409
    progress = db_client.get("/api/progress").json()
    assert sum(q["reviews"] for q in progress["questions"]) == 1


def test_the_round_cookie_stays_small_however_many_answers(
    db_client: TestClient, bank: QuestionBank
) -> None:
    """It used to grow by one result per answer, past the 4 KB browsers keep."""
    db_client.get("/practice", params={"question": "pooling", "size": 3, "new": "true"})
    form, item = _choice_form(db_client, bank)
    db_client.get("/practice", params={"question": "pooling", "size": 3, "new": "true"})
    for _ in range(40):
        assert submit(db_client, form, str(_right_position(form, item))).status_code == 200
    cookie = db_client.cookies.get("cvprep_round")
    assert cookie is not None and len(cookie) < 1000
    summary = soup(db_client.get("/practice/summary"))
    assert summary.h1.text == "Round summary"
