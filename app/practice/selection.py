"""What to practise next: due cards first, then new items spread across questions, then the
weakest ones; the mock interview's draw across the syllabus; a round of one's mistakes."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import zip_longest

from app.content import Question, QuestionBank
from app.content.schema import QuizItem
from app.models import CardState
from app.practice.scheduling import retrievability

AUTO_GRADED = ("choice", "numeric")


@dataclass(frozen=True)
class Candidate:
    question: Question
    item: QuizItem
    reason: str  # "due" | "new" | "weak" | "mistake"


def _interleave(groups: Sequence[Sequence[Candidate]]) -> list[Candidate]:
    """The first of each group, then the second of each, …: consecutive items come from
    different groups as long as more than one group has items left."""
    return [c for layer in zip_longest(*groups) for c in layer if c is not None]


def scope_of(
    bank: QuestionBank, *, questions: Iterable[str] = (), tags: Iterable[str] = ()
) -> list[Question]:
    """The questions a round draws from: those named, and those carrying any tag named; every
    question when neither is given. Syllabus order."""
    slugs, wanted = set(questions), set(tags)
    if not slugs and not wanted:
        return list(bank)
    return [q for q in bank if q.slug in slugs or wanted.intersection(q.tags)]


def candidates(
    bank: QuestionBank,
    cards: Mapping[str, CardState],
    now: datetime,
    *,
    question: Question | None = None,
    scope: Sequence[Question] | None = None,
    exclude: Iterable[str] = (),
    kinds: Iterable[str] | None = None,
) -> list[Candidate]:
    """Every practisable item in order of urgency.

    Due items first, the longest overdue first; then items never seen, interleaved across
    questions so that a round covers the syllabus instead of one question's items in a row:
    each question's unseen items in file order, the questions with the fewest items seen
    first (a new learner gets the first item of Q1, Q2, …, Q12, then the second of each);
    then the rest, lowest probability of recall first. `question` or `scope` limits the
    questions.
    """
    skip = set(exclude)
    allowed = set(kinds) if kinds is not None else None
    questions = [question] if question else list(scope if scope is not None else bank.questions)
    pool_all = [
        (q, item)
        for q in questions
        for item in q.meta.quiz
        if allowed is None or item.kind in allowed
    ]
    pool = [(q, item) for q, item in pool_all if item.id not in skip]
    due = sorted(
        (p for p in pool if p[1].id in cards and cards[p[1].id].due <= now),
        key=lambda p: cards[p[1].id].due,
    )
    # The k-th unseen item of a question ranks after every question's items up to the k-th
    # position counting what was seen already: the least practised questions come first.
    seen = Counter(q.slug for q, i in pool_all if i.id in cards)
    new = sorted(
        (
            (seen[q.slug] + k, order, Candidate(q, i, "new"))
            for order, q in enumerate(questions)
            for k, i in enumerate(i for q2, i in pool if q2 is q and i.id not in cards)
        ),
        key=lambda entry: entry[:2],
    )
    weak = sorted(
        (p for p in pool if p[1].id in cards and cards[p[1].id].due > now),
        key=lambda p: retrievability(cards[p[1].id], now),
    )
    return (
        [Candidate(q, i, "due") for q, i in due]
        + [candidate for _, _, candidate in new]
        + [Candidate(q, i, "weak") for q, i in weak]
    )


def mock_draw(
    bank: QuestionBank,
    cards: Mapping[str, CardState],
    now: datetime,
    *,
    count: int,
    rng: random.Random,
) -> list[Candidate]:
    """`count` auto-graded items for a mock interview, spread across the syllabus.

    Questions are taken in an order drawn from `rng`, one item from each (its most urgent,
    as `candidates` ranks them) before any question gives a second: 5 items come from 5
    questions, 12 from all twelve, and no question gives more than one more than another.
    """
    ranked = candidates(bank, cards, now, kinds=AUTO_GRADED)
    order = list(bank.questions)
    rng.shuffle(order)
    groups = [[c for c in ranked if c.question is q] for q in order]
    return _interleave(groups)[:count]


def mistake_candidates(
    bank: QuestionBank, item_ids: Sequence[str], *, exclude: Iterable[str] = ()
) -> list[Candidate]:
    """The items of `item_ids` (from `progress.mistakes`, most recent first) still in the
    question bank, less those in `exclude`."""
    skip = set(exclude)
    found = [(bank.item(i), i) for i in item_ids if i not in skip]
    return [Candidate(f[0], f[1], "mistake") for f, _ in found if f is not None]
