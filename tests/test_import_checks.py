"""Progress import: every file the scheduler or the database cannot use is a 422 naming the
entry and the field, and changes nothing; undo snapshots never cross from one user's card to
another's. On SQLite and PostgreSQL."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from bs4 import BeautifulSoup
from fastapi.testclient import TestClient
from fsrs import Card, Rating, State

from app.practice.scheduling import SCHEDULER
from tests.test_progress import _comparable, _export, _import
from tests.web import answer, login, register

ITEM = "pool-max-gradient"  # a choice item of the pooling question


def _undo(client: TestClient) -> int:
    return client.post("/api/quiz/undo", json={}).status_code


def _messages(response) -> list[str]:
    page = BeautifulSoup(response.text, "html.parser")
    return [li.text for li in page.select("ul.errors li")]


def _review_card(**changes: object) -> dict:
    """A review-state card as fsrs 6.x makes it, with `changes` applied."""
    now = datetime.now(UTC)
    card = {
        "item_id": ITEM,
        "question_slug": "pooling",
        "state": 2,
        "step": None,
        "stability": 3.2,
        "difficulty": 5.1,
        "due": (now + timedelta(days=3)).isoformat(),
        "last_review": now.isoformat(),
        "reps": 2,
        "lapses": 0,
    }
    return {**card, **changes}


def _with(base: dict, edit: Callable[[dict], None]) -> bytes:
    data = copy.deepcopy(base)
    edit(data)
    return json.dumps(data).encode()


def _set_card(**changes: object) -> Callable[[dict], None]:
    return lambda data: data.__setitem__("cards", [_review_card(**changes)])


def _set_review(field: str, value: object) -> Callable[[dict], None]:
    return lambda data: data["reviews"][0].__setitem__(field, value)


BAD_FILES: dict[str, tuple[Callable[[dict], None], str]] = {
    # The cases: each once broke the learner's pages for good, or was a 500.
    "stability 0": (_set_card(stability=0), "cards[0].stability"),
    "no stability, no difficulty": (
        _set_card(stability=None, difficulty=None),
        "cards[0].stability",
    ),
    "card_before not a snapshot": (_set_review("card_before", "oops"), "reviews[0].card_before"),
    "reps of 2**63": (_set_card(reps=2**63), "cards[0].reps"),
    "date overflowing UTC": (_set_card(due="0001-01-01T00:00:00+05:00"), "cards[0].due"),
    "the same card twice": (
        lambda data: data.__setitem__("cards", [_review_card(), _review_card()]),
        "cards[1].item_id",
    ),
    "NUL in an answer": (_set_review("answer", "a\x00b"), "reviews[0].answer"),
    # Their kinds.
    "difficulty 11": (_set_card(difficulty=11), "cards[0].difficulty"),
    "review card with a step": (_set_card(step=1), "cards[0].step"),
    "learning card without a step": (_set_card(state=1, step=None), "cards[0].step"),
    "due before last review": (
        _set_card(due=datetime(2001, 1, 1, tzinfo=UTC).isoformat()),
        "cards[0].due",
    ),
    "lapses beyond reps": (_set_card(lapses=3), "cards[0].lapses"),
    "a review from the future": (
        _set_review("reviewed_at", (datetime.now(UTC) + timedelta(days=30)).isoformat()),
        "reviews[0].reviewed_at",
    ),
    "stability infinite": (_set_card(stability=1e400), "cards[0].stability"),
    "item under another question": (
        _set_card(question_slug="convolutional-layers"),
        "cards[0].question_slug",
    ),
    "snapshot with stability 0": (
        lambda data: data["reviews"][0].__setitem__(
            "card_before",
            json.dumps(
                {
                    **json.loads(data["reviews"][0]["card_before"]),
                    "state": 2,
                    "step": None,
                    "stability": 0,
                    "difficulty": 5,
                    "last_review": data["reviews"][0]["reviewed_at"],
                    "reps": 1,
                }
            ),
        ),
        "reviews[0].card_before",
    ),
    "the same review twice": (
        lambda data: data.__setitem__("reviews", data["reviews"] * 2),
        "reviews[1].uid",
    ),
    "NUL in a draft": (
        lambda data: data.__setitem__(
            "drafts",
            [{"question_slug": "pooling", "text": "x\x00", "updated_at": data["exported_at"]}],
        ),
        "drafts[0].text",
    ),
    "seed past 2**31": (_set_review("seed", 2**40), "reviews[0].seed"),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_a_file_the_scheduler_cannot_use_is_422_and_changes_nothing(
    db_client: TestClient, case: str
) -> None:
    answer(db_client, ITEM, 0)
    before = _export(db_client)
    edit, field = BAD_FILES[case]
    response = _import(db_client, _with(before, edit))
    assert response.status_code == 422
    messages = _messages(response)
    assert any(m.startswith(field) for m in messages), messages
    assert _comparable(_export(db_client)) == _comparable(before)
    for path in ("/", "/practice", "/progress", "/api/progress"):
        assert db_client.get(path).status_code == 200


def test_a_good_file_is_usable_everywhere_and_unknown_items_are_left_out(
    db_client: TestClient, other_client: TestClient
) -> None:
    answer(db_client, ITEM, 0)
    exported = _export(db_client)
    exported["cards"] = [_review_card()]
    ghost = {**exported["reviews"][0], "uid": "f" * 32, "item_id": "retired-item"}
    exported["reviews"].append(ghost)
    exported["drafts"] = [
        {"question_slug": "retired-question", "text": "t", "updated_at": exported["exported_at"]}
    ]
    response = _import(other_client, json.dumps(exported).encode())
    assert response.status_code == 303
    assert "2 entries for items this version does not have were left out" in (
        other_client.get(response.headers["location"]).text
    )
    mine = _export(other_client)
    assert [r["item_id"] for r in mine["reviews"]] == [ITEM]
    assert mine["drafts"] == [] and len(mine["cards"]) == 1
    for path in ("/", "/practice", "/progress", "/api/progress"):
        assert other_client.get(path).status_code == 200
    # The imported review-state card can be reviewed again, as fsrs would.
    response = other_client.post("/api/quiz/answers", json={"item_id": ITEM, "answer": 0})
    assert response.status_code == 200


def test_undoing_a_merged_guest_review_leaves_the_accounts_card_alone(
    db_client: TestClient, other_client: TestClient
) -> None:
    register(db_client, "holder")
    answer(db_client, ITEM, 0)  # the account's own card for the item
    own = _export(db_client)["cards"][0]
    answer(other_client, ITEM, 1)  # a guest answers the same item, twice, later
    answer(other_client, ITEM, 0)
    assert login(other_client, "holder").status_code == 303
    merged = _export(other_client)
    assert len(merged["reviews"]) == 3 and merged["cards"] == [own]
    assert _undo(other_client) == 200 and _undo(other_client) == 200  # the guest's two
    # Before: the guest's snapshot (a new card) was restored over the account's: deleted.
    assert _export(other_client)["cards"] == [own]
    assert _undo(other_client) == 200  # the account's own review: its card goes back to new
    assert _export(other_client)["cards"] == []


def test_undoing_an_imported_review_leaves_the_receivers_card_alone(
    db_client: TestClient, other_client: TestClient
) -> None:
    answer(db_client, ITEM, 0)
    answer(other_client, ITEM, 0)
    mine = _export(other_client)["cards"]
    exported = _export(db_client)
    later = datetime.now(UTC) + timedelta(seconds=1)
    exported["reviews"][0]["reviewed_at"] = later.isoformat()  # the latest review after import
    exported["cards"] = []  # a file with the review but not its card
    assert _import(other_client, json.dumps(exported).encode()).status_code == 303
    assert _undo(other_client) == 200  # removes the imported review
    assert _export(other_client)["cards"] == mine


def test_the_sample_card_is_one_fsrs_reviews() -> None:
    """The card the bad files start from is itself valid: fsrs reviews it without complaint."""
    card = _review_card()
    fsrs_card = Card(
        card_id=0,
        state=State(card["state"]),
        step=card["step"],
        stability=card["stability"],
        difficulty=card["difficulty"],
        due=datetime.fromisoformat(card["due"]),
        last_review=datetime.fromisoformat(card["last_review"]),
    )
    updated, _ = SCHEDULER.review_card(fsrs_card, Rating.Good, datetime.now(UTC))
    assert updated.stability and updated.stability > 0
