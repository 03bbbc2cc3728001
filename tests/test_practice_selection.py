"""What comes next in practice: due cards (most overdue first), then new items, then weak ones."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fsrs import Rating

from app.content import QuestionBank
from app.models import CardState
from app.practice import scheduling
from app.practice.selection import candidates

NOW = datetime(2026, 5, 1, 12, tzinfo=UTC)


def _reviewed(item_id: str, rating: Rating, at: datetime) -> CardState:
    card = scheduling.new_card(user_id=1, item_id=item_id, question_slug="pooling", now=at)
    scheduling.review(card, rating, at)
    return card


def test_due_items_come_first_then_new_then_weak(bank: QuestionBank) -> None:
    pooling = bank.get("pooling")
    assert pooling is not None
    ids = [item.id for item in pooling.meta.quiz]
    long_ago = NOW - timedelta(days=30)
    cards = {
        ids[0]: _reviewed(ids[0], Rating.Good, NOW - timedelta(minutes=1)),  # learning, not yet due
        ids[1]: _reviewed(ids[1], Rating.Again, long_ago),  # due for weeks
        ids[2]: _reviewed(ids[2], Rating.Again, NOW - timedelta(days=1)),  # due since yesterday
    }
    order = candidates(bank, cards, NOW, question=pooling)
    assert [c.item.id for c in order[:2]] == [ids[1], ids[2]]
    assert {c.reason for c in order[:2]} == {"due"}
    assert [c.item.id for c in order[2:-1]] == ids[3:]
    assert {c.reason for c in order[2:-1]} == {"new"}
    assert (order[-1].item.id, order[-1].reason) == (ids[0], "weak")


def test_answered_items_and_other_kinds_can_be_left_out(bank: QuestionBank) -> None:
    first = bank.questions[0].meta.quiz[0].id
    order = candidates(bank, {}, NOW, exclude=[first], kinds=["choice"])
    assert first not in [c.item.id for c in order]
    assert {c.item.kind for c in order} == {"choice"}


def test_weak_items_are_ordered_by_lowest_recall_probability(bank: QuestionBank) -> None:
    pooling = bank.get("pooling")
    assert pooling is not None
    ids = [item.id for item in pooling.meta.quiz]
    cards = {
        ids[0]: _reviewed(ids[0], Rating.Easy, NOW - timedelta(days=2)),
        ids[1]: _reviewed(ids[1], Rating.Hard, NOW - timedelta(minutes=5)),
    }
    # Push both into the future so neither is due: the weaker one comes first.
    for card in cards.values():
        card.due = NOW + timedelta(days=5)
    weak = [c for c in candidates(bank, cards, NOW, question=pooling) if c.reason == "weak"]
    recall = [scheduling.retrievability(cards[c.item.id], NOW) for c in weak]
    assert recall == sorted(recall)
