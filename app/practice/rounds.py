"""The state of one practice round or mock interview, kept in a signed cookie of its own.

Only question numbers, item ids, seeds and review ids live here, and never more than
ROUND_BUDGET bytes of them (a browser drops a cookie past 4 KB): review ids beyond the round's
size, or past the budget, are dropped oldest first. Every graded answer is in the database, so
losing the cookie loses the round's place, never a review.
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
MODES = ("mixed", "mistakes")


@dataclass
class Round:
    questions: list[int] = field(default_factory=list)  # question numbers; [] is all of them
    size: int = 10
    mode: str = "mixed"  # "mixed": due → new → weak; "mistakes": items last answered wrongly
    # Review ids of this round's answers, in order; the oldest dropped past the cookie's budget.
    reviews: list[int] = field(default_factory=list)
    done: int = 0  # answers given in this round (`reviews` may hold fewer)
    # The item on screen and its seed, so a reload shows the same numbers and option order.
    current: tuple[str, int | None] | None = None
    ended: bool = False  # nothing was left to practise before the round reached its size

    @property
    def finished(self) -> bool:
        return self.ended or self.done >= self.size

    def record(self, review_id: int, item_id: str) -> None:
        """Count an answer to the item on screen; a repeated review (an idempotent retry) or
        an answer after the end changes nothing."""
        if self.current and self.current[0] == item_id:
            self.current = None
        if not self.finished and review_id not in self.reviews:
            self.reviews.append(review_id)
            self.done += 1

    def take_back(self, review_id: int, item_id: str, seed: int | None) -> bool:
        """Forget the latest answer if it was `review_id` (after an undo); the item is then
        on screen again, as it was shown."""
        if self.reviews and self.reviews[-1] == review_id:
            self.reviews.pop()
            self.done = max(0, self.done - 1)
            self.ended = False
            self.current = (item_id, seed)
            return True
        return False


def load_round(request: Request) -> Round | None:
    data = request.session.get(ROUND_KEY)
    if not isinstance(data, dict):
        return None
    try:
        current = data.get("current")
        round_ = Round(
            questions=[int(n) for n in data["questions"]],
            size=int(data["size"]),
            mode=str(data["mode"]),
            reviews=[int(i) for i in data["reviews"]],
            done=int(data["done"]),
            current=(str(current[0]), None if current[1] is None else int(current[1]))
            if current
            else None,
            ended=bool(data.get("ended", False)),
        )
    except (KeyError, TypeError, ValueError, IndexError):  # an older version's cookie: start over
        return None
    return round_ if round_.mode in MODES else None


def save_round(request: Request, round_: Round) -> None:
    """Store the round, its review ids cut to its size and to ROUND_BUDGET bytes."""
    round_.reviews = round_.reviews[-round_.size :]
    data = asdict(round_)
    while data["reviews"] and len(json.dumps(data)) > ROUND_BUDGET:
        data["reviews"].pop(0)
    request.session[ROUND_KEY] = data


def drop_round(request: Request) -> None:
    request.session.pop(ROUND_KEY, None)


@dataclass
class Mock:
    items: list[tuple[str, int | None]]  # (item id, seed: parametric numbers, option order)
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
