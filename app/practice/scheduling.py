"""FSRS scheduling: our CardState rows to and from `fsrs.Card`."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from fsrs import Card, Rating, Scheduler, State

from app.models import CardState

# Fuzzing spreads due dates randomly; without it a schedule is reproducible from the log.
SCHEDULER = Scheduler(desired_retention=0.9, enable_fuzzing=False)


def to_fsrs(card: CardState) -> Card:
    # An explicit card_id: without one, fsrs.Card sleeps 1 ms to make a unique time-based id.
    return Card(
        card_id=card.id or 0,
        state=State(card.state),
        step=card.step,
        stability=card.stability,
        difficulty=card.difficulty,
        due=card.due,
        last_review=card.last_review,
    )


def new_card(*, user_id: int, item_id: str, question_slug: str, now: datetime) -> CardState:
    fresh = Card(card_id=0, due=now)
    return CardState(
        user_id=user_id,
        item_id=item_id,
        question_slug=question_slug,
        state=fresh.state.value,
        step=fresh.step,
        due=now,
    )


def snapshot(card: CardState) -> str:
    """The scheduling fields of a card as JSON, kept with each review so undo can restore it."""
    return json.dumps(
        {
            "state": card.state,
            "step": card.step,
            "stability": card.stability,
            "difficulty": card.difficulty,
            "due": card.due.isoformat(),
            "last_review": card.last_review.isoformat() if card.last_review else None,
            "reps": card.reps,
            "lapses": card.lapses,
        }
    )


def detach_snapshot(saved: str) -> str:
    """The snapshot marked as not describing the card it now sits beside.

    A review that moved to another user (a guest merged into an account, an import) whose
    card did not come with it keeps its snapshot for the statistics, but an undo of it must
    leave the receiving user's card alone.
    """
    data = json.loads(saved)
    data["detached"] = True
    return json.dumps(data)


def is_detached(saved: str) -> bool:
    return bool(json.loads(saved).get("detached", False))


def restore(card: CardState, saved: str) -> None:
    """Put `card` back as `saved` (a `snapshot`) describes it."""
    data = json.loads(saved)
    card.state = data["state"]
    card.step = data["step"]
    card.stability = data["stability"]
    card.difficulty = data["difficulty"]
    card.due = datetime.fromisoformat(data["due"])
    card.last_review = datetime.fromisoformat(data["last_review"]) if data["last_review"] else None
    card.reps = data["reps"]
    card.lapses = data["lapses"]


def review(card: CardState, rating: Rating, now: datetime) -> None:
    """Apply one review to `card` in place."""
    was_review = card.state == State.Review.value
    updated, _log = SCHEDULER.review_card(to_fsrs(card), rating, review_datetime=now)
    card.state = updated.state.value
    card.step = updated.step
    card.stability = updated.stability
    card.difficulty = updated.difficulty
    card.due = updated.due
    card.last_review = updated.last_review
    card.reps += 1
    if was_review and rating == Rating.Again:
        card.lapses += 1


def retrievability(card: CardState, now: datetime) -> float:
    """Probability of recall now (0 for a card never reviewed)."""
    if card.last_review is None:
        return 0.0
    return SCHEDULER.get_card_retrievability(to_fsrs(card), current_datetime=now)


def next_intervals(card: CardState | None, now: datetime) -> dict[Rating, timedelta]:
    """How long until the next review for each grade given now (what fsrs would schedule).

    `card` None is an item never reviewed. Nothing is changed or stored.
    """
    current = to_fsrs(card) if card is not None else Card(card_id=0, due=now)
    intervals = {}
    for rating in Rating:
        updated, _log = SCHEDULER.review_card(current, rating, review_datetime=now)
        intervals[rating] = updated.due - now
    return intervals


def describe_interval(interval: timedelta) -> str:
    """An interval as a person says it: "10 min", "5 h", "1 day", "11 days", "1.3 years"."""
    seconds = interval.total_seconds()
    if seconds < 3600:
        minutes = max(1, round(seconds / 60))
        return f"{minutes} min"
    if seconds < 86_400:
        return f"{round(seconds / 3600)} h"
    days = round(seconds / 86_400)
    if days < 365:
        return f"{days} day{'s' if days != 1 else ''}"
    return f"{days / 365.25:.1f} years"
