"""The state of one practice round or mock interview, kept in the signed session cookie.

Only item ids, seeds and grades live here (a few hundred bytes); every graded answer is also
in the database, so losing the cookie loses the round's summary, never a review.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta

from starlette.requests import Request

ROUND_KEY = "practice"
MOCK_KEY = "mock"


@dataclass
class Round:
    question: str = ""  # limit to one question's items, or "" for all
    size: int = 10
    results: list[tuple[str, bool | None, int]] = field(
        default_factory=list
    )  # item, correct, rating

    @property
    def answered(self) -> list[str]:
        return [item for item, _, _ in self.results]

    @property
    def finished(self) -> bool:
        return len(self.results) >= self.size


def load_round(request: Request) -> Round | None:
    data = request.session.get(ROUND_KEY)
    if not isinstance(data, dict):
        return None
    return Round(data["question"], data["size"], [tuple(r) for r in data["results"]])  # type: ignore[misc]


def save_round(request: Request, round_: Round) -> None:
    request.session[ROUND_KEY] = asdict(round_)


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
    return Mock([tuple(i) for i in data["items"]], data["started"], data["minutes"])  # type: ignore[misc]


def save_mock(request: Request, mock: Mock) -> None:
    request.session[MOCK_KEY] = asdict(mock)


def drop_mock(request: Request) -> None:
    request.session.pop(MOCK_KEY, None)
