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

# An item is mastered when FSRS puts its memory stability at this many days or more (the
# interval over which predicted recall falls to 90 %) and the last grade was a pass.
MASTERY_STABILITY_DAYS = 10.0
MASTERY_DEFINITION = (
    "An item counts as mastered when your last answer to it was right (or, for a card you "
    f"grade yourself, Hard or better) and the scheduler puts its memory stability at "
    f"{MASTERY_STABILITY_DAYS:.0f} days or more: it predicts you would still recall it 9 times "
    f"in 10 after {MASTERY_STABILITY_DAYS:.0f} days without practice. Mastery is the share of "
    "items mastered. A wrong answer always takes an item out of it."
)
MASTERY_SOURCE = (
    "Stability as defined by FSRS (J. Ye, J. Su, Y. Cao, “A Stochastic Shortest Path Algorithm "
    "for Optimizing Spaced Repetition Scheduling”, KDD 2022; the fsrs 6 package's model)."
)


def last_ratings(reviews: Sequence[ReviewLog]) -> dict[str, int]:
    """Each item's latest rating (fsrs.Rating value); `reviews` oldest first, as stored."""
    return {review.item_id: review.rating for review in reviews}


def is_mastered(card: CardState | None, last_rating: int | None) -> bool:
    """True when the last grade passed (Hard, Good or Easy) and stability ≥ the threshold.

    Never true right after a wrong answer (its rating is Again), however stable the card was.
    """
    if card is None or last_rating is None or last_rating == Rating.Again.value:
        return False
    return (card.stability or 0.0) >= MASTERY_STABILITY_DAYS


@dataclass(frozen=True)
class QuestionProgress:
    number: int
    slug: str
    title: str
    items: int
    seen: int  # items answered at least once
    mastered: int  # items mastered (`is_mastered`)
    reviews: int
    correct: int
    due: int

    @property
    def mastery(self) -> float:
        """The share of the question's items mastered, 0..1."""
        return self.mastered / self.items if self.items else 0.0


@dataclass(frozen=True)
class TagProgress:
    tag: str
    items: int
    seen: int
    mastered: int
    correct: int  # auto-graded answers right, over every question with the tag
    graded: int

    @property
    def mastery(self) -> float:
        return self.mastered / self.items if self.items else 0.0

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
    """Mastery, items seen, reviews, right answers and items due, per question."""
    reviews_per = Counter(r.question_slug for r in reviews)
    correct_per = Counter(r.question_slug for r in reviews if r.correct)
    last = last_ratings(reviews)
    rows = []
    for question in bank:
        items = question.meta.quiz
        own = [cards[i.id] for i in items if i.id in cards]
        rows.append(
            QuestionProgress(
                number=question.number,
                slug=question.slug,
                title=question.title,
                items=len(items),
                seen=sum(1 for i in items if i.id in last),
                mastered=sum(is_mastered(cards.get(i.id), last.get(i.id)) for i in items),
                reviews=reviews_per[question.slug],
                correct=correct_per[question.slug],
                due=sum(1 for c in own if c.due <= now),
            )
        )
    return rows


def by_tag(
    bank: QuestionBank, cards: Mapping[str, CardState], reviews: Sequence[ReviewLog]
) -> list[TagProgress]:
    """Mastery and accuracy per tag, over the items of every question that carries it."""
    tags_of = {q.slug: q.tags for q in bank}
    graded: Counter[str] = Counter()
    correct: Counter[str] = Counter()
    for review in reviews:
        if review.correct is None:
            continue
        for tag in tags_of.get(review.question_slug, []):
            graded[tag] += 1
            correct[tag] += int(review.correct)
    last = last_ratings(reviews)
    rows = []
    for tag in bank.tags:
        items = [i for q in bank if tag in q.tags for i in q.meta.quiz]
        rows.append(
            TagProgress(
                tag=tag,
                items=len(items),
                seen=sum(1 for i in items if i.id in last),
                mastered=sum(is_mastered(cards.get(i.id), last.get(i.id)) for i in items),
                correct=correct[tag],
                graded=graded[tag],
            )
        )
    return rows


def mistakes(reviews: Sequence[ReviewLog]) -> list[str]:
    """Items whose latest grade was a fail (a wrong answer, or Again), most recent first."""
    latest: dict[str, ReviewLog] = {}
    for review in reviews:
        latest[review.item_id] = review
    failed = [r for r in latest.values() if r.rating == Rating.Again.value or r.correct is False]
    failed.sort(key=lambda r: (r.reviewed_at, r.id or 0), reverse=True)
    return [r.item_id for r in failed]


def due_forecast(cards: Sequence[CardState], today: date, days: int = 14) -> list[DayCount]:
    """Cards falling due on each of the next `days` days; today includes everything overdue."""
    counts: Counter[date] = Counter()
    for card in cards:
        counts[max(card.due.date(), today)] += 1
    return [DayCount(today + timedelta(d), counts[today + timedelta(d)]) for d in range(days)]


def heatmap(reviews: Sequence[ReviewLog], today: date, days: int = 90) -> list[DayCount]:
    """Reviews on each of the last `days` days, oldest first, ending today (UTC days)."""
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
