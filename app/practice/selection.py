"""What to practise next: due cards first, then new items, then the weakest ones."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from app.content import Question, QuestionBank
from app.content.schema import QuizItem
from app.models import CardState
from app.practice.scheduling import retrievability


@dataclass(frozen=True)
class Candidate:
    question: Question
    item: QuizItem
    reason: str  # "due" | "new" | "weak"


def candidates(
    bank: QuestionBank,
    cards: Mapping[str, CardState],
    now: datetime,
    *,
    question: Question | None = None,
    exclude: Iterable[str] = (),
    kinds: Iterable[str] | None = None,
) -> list[Candidate]:
    """Every practisable item in order of urgency."""
    skip = set(exclude)
    allowed = set(kinds) if kinds is not None else None
    pool = [
        (q, item)
        for q in ([question] if question else bank.questions)
        for item in q.meta.quiz
        if item.id not in skip and (allowed is None or item.kind in allowed)
    ]
    due = sorted(
        (p for p in pool if p[1].id in cards and cards[p[1].id].due <= now),
        key=lambda p: cards[p[1].id].due,
    )
    new = [p for p in pool if p[1].id not in cards]
    weak = sorted(
        (p for p in pool if p[1].id in cards and cards[p[1].id].due > now),
        key=lambda p: retrievability(cards[p[1].id], now),
    )
    return (
        [Candidate(q, i, "due") for q, i in due]
        + [Candidate(q, i, "new") for q, i in new]
        + [Candidate(q, i, "weak") for q, i in weak]
    )
