"""The state of one practice round or mock interview, kept in a signed cookie of its own.

Only item ids, seeds and grades live here, and never more than ROUND_BUDGET bytes of them
(a browser drops a cookie past 4 KB): results beyond the round's size, or past the budget,
are dropped oldest first. Every graded answer is also in the database, so losing the cookie
loses the round's summary, never a review.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta

from starlette.requests import Request

ROUND_KEY = "practice"
MOCK_KEY = "mock"
# Bytes of JSON a round may take in the cookie (signed and base64-encoded it grows by ~1/3).
ROUND_BUDGET = 2400


@dataclass
class Round:
    question: str = ""  # limit to one question's items, or "" for all
    size: int = 10
    # (item, correct, rating) of the latest answers, oldest dropped past the cookie's budget
    results: list[tuple[str, bool | None, int]] = field(default_factory=list)
    done: int = 0  # answers given in this round (results may hold fewer)

    @property
    def answered(self) -> list[str]:
        return [item for item, _, _ in self.results]

    @property
    def finished(self) -> bool:
        return self.done >= self.size

    def record(self, item_id: str, correct: bool | None, rating: int) -> None:
        if not self.finished:
            self.results.append((item_id, correct, rating))
            self.done += 1

    def take_back(self, item_id: str) -> bool:
        """Forget the latest answer if it was to `item_id` (after an undo)."""
        if self.results and self.results[-1][0] == item_id:
            self.results.pop()
            self.done = max(0, self.done - 1)
            return True
        return False


def load_round(request: Request) -> Round | None:
    data = request.session.get(ROUND_KEY)
    if not isinstance(data, dict):
        return None
    try:
        results = [(str(i), c if c is None else bool(c), int(r)) for i, c, r in data["results"]]
        done = int(data.get("done", len(results)))
        return Round(str(data["question"]), int(data["size"]), results, done)
    except (KeyError, TypeError, ValueError):  # a cookie from an older version: start over
        return None


def save_round(request: Request, round_: Round) -> None:
    """Store the round, its results cut to its size and to ROUND_BUDGET bytes."""
    round_.results = round_.results[-round_.size :]
    data = asdict(round_)
    while data["results"] and len(json.dumps(data)) > ROUND_BUDGET:
        data["results"].pop(0)
    request.session[ROUND_KEY] = data


def drop_round(request: Request) -> None:
    request.session.pop(ROUND_KEY, None)


@dataclass
class Mock:
    items: list[tuple[str, int | None]]  # (item id, seed)
    started: str  # ISO time
    minutes: int

    @property
    def deadline(self) -> datetime:
        return datetime.fromisoformat(self.started) + timedelta(minutes=self.minutes)


def load_mock(request: Request) -> Mock | None:
    data = request.session.get(MOCK_KEY)
    if not isinstance(data, dict):
        return None
    try:
        items = [(str(i), s if s is None else int(s)) for i, s in data["items"]]
        return Mock(items, str(data["started"]), int(data["minutes"]))
    except (KeyError, TypeError, ValueError):
        return None


def save_mock(request: Request, mock: Mock) -> None:
    request.session[MOCK_KEY] = asdict(mock)


def drop_mock(request: Request) -> None:
    request.session.pop(MOCK_KEY, None)
