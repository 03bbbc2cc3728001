"""Progress figures: mastery, accuracy per tag, due forecast, heatmap, streak, true retention."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from fsrs import Rating, State

from app.content import QuestionBank
from app.models import CardState, ReviewLog
from app.practice.scheduling import retrievability


@dataclass(frozen=True)
class QuestionProgress:
    number: int
    slug: str
    title: str
    items: int
    reviews: int
    correct: int
    due: int
    mastery: float  # mean probability of recall over the question's items (0 for unseen)


@dataclass(frozen=True)
class TagAccuracy:
    tag: str
    correct: int
    graded: int

    @property
    def rate(self) -> float:
        return self.correct / self.graded if self.graded else 0.0


@dataclass(frozen=True)
class DayCount:
    day: date
    count: int


def by_question(
    bank: QuestionBank,
    cards: Mapping[str, CardState],
    reviews: Sequence[ReviewLog],
    now: datetime,
) -> list[QuestionProgress]:
    reviews_per = Counter(r.question_slug for r in reviews)
    correct_per = Counter(r.question_slug for r in reviews if r.correct)
    rows = []
    for question in bank:
        items = question.meta.quiz
        own = [cards[i.id] for i in items if i.id in cards]
        mastery = sum(retrievability(c, now) for c in own) / len(items) if items else 0.0
        rows.append(
            QuestionProgress(
                number=question.number,
                slug=question.slug,
                title=question.title,
                items=len(items),
                reviews=reviews_per[question.slug],
                correct=correct_per[question.slug],
                due=sum(1 for c in own if c.due <= now),
                mastery=mastery,
            )
        )
    return rows


def by_tag(bank: QuestionBank, reviews: Sequence[ReviewLog]) -> list[TagAccuracy]:
    tags_of = {q.slug: q.tags for q in bank}
    graded: Counter[str] = Counter()
    correct: Counter[str] = Counter()
    for review in reviews:
        if review.correct is None:
            continue
        for tag in tags_of.get(review.question_slug, []):
            graded[tag] += 1
            correct[tag] += int(review.correct)
    return [TagAccuracy(tag, correct[tag], graded[tag]) for tag in bank.tags]


def due_forecast(cards: Sequence[CardState], today: date, days: int = 14) -> list[DayCount]:
    """Cards falling due on each of the next `days` days; today includes everything overdue."""
    counts: Counter[date] = Counter()
    for card in cards:
        counts[max(card.due.date(), today)] += 1
    return [DayCount(today + timedelta(d), counts[today + timedelta(d)]) for d in range(days)]


def heatmap(reviews: Sequence[ReviewLog], today: date, days: int = 90) -> list[DayCount]:
    counts = Counter(r.reviewed_at.date() for r in reviews)
    start = today - timedelta(days - 1)
    return [DayCount(start + timedelta(d), counts[start + timedelta(d)]) for d in range(days)]


def streak(reviews: Sequence[ReviewLog], today: date) -> int:
    """Days in a row with at least one review, ending today (or yesterday, if not yet today)."""
    days = {r.reviewed_at.date() for r in reviews}
    day = today if today in days else today - timedelta(1)
    count = 0
    while day in days:
        count += 1
        day -= timedelta(1)
    return count


def true_retention(reviews: Sequence[ReviewLog]) -> tuple[int, int]:
    """(passed, total) over reviews of cards that had graduated to review: real recall tests."""
    passed = total = 0
    for review in reviews:
        if not review.card_before:
            continue
        if json.loads(review.card_before)["state"] == State.Review.value:
            total += 1
            passed += int(review.rating != Rating.Again.value)
    return passed, total
