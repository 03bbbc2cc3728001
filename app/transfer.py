"""Export and import of one user's data as JSON (reviews, cards, drafts)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from sqlmodel import Session, select

from app.models import CardState, Draft, ReviewLog, User
from app.models.common import utcnow
from app.repos import drafts, reviews


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ReviewRecord(_Frozen):
    uid: str = Field(pattern=r"^[0-9a-f]{32}$")
    item_id: str = Field(max_length=80)
    question_slug: str = Field(max_length=60)
    rating: int = Field(ge=1, le=4)
    correct: bool | None
    answer: str = Field(max_length=2000)
    seed: int | None
    mode: str = Field(max_length=20)
    reviewed_at: AwareDatetime
    duration_ms: int | None
    card_before: str | None = Field(max_length=2000)


class CardRecord(_Frozen):
    item_id: str = Field(max_length=80)
    question_slug: str = Field(max_length=60)
    state: int = Field(ge=1, le=3)
    step: int | None
    stability: float | None
    difficulty: float | None
    due: AwareDatetime
    last_review: AwareDatetime | None
    reps: int = Field(ge=0)
    lapses: int = Field(ge=0)


class DraftRecord(_Frozen):
    question_slug: str = Field(max_length=60)
    text: str = Field(max_length=20_000)
    updated_at: AwareDatetime


class Export(_Frozen):
    format: Literal["cvprep-progress"]
    version: Literal[1]
    exported_at: AwareDatetime
    username: str | None
    reviews: list[ReviewRecord] = Field(max_length=200_000)
    cards: list[CardRecord] = Field(max_length=10_000)
    drafts: list[DraftRecord] = Field(max_length=1_000)


def export_user(session: Session, *, user: User) -> Export:
    assert user.id is not None
    review_fields = set(ReviewRecord.model_fields)
    card_fields = set(CardRecord.model_fields)
    draft_fields = set(DraftRecord.model_fields)
    return Export(
        format="cvprep-progress",
        version=1,
        exported_at=utcnow(),
        username=user.username,
        reviews=[
            ReviewRecord(**r.model_dump(include=review_fields))
            for r in reviews.reviews_of(session, user_id=user.id)
        ],
        cards=[
            CardRecord(**c.model_dump(include=card_fields))
            for c in reviews.cards_of(session, user_id=user.id)
        ],
        drafts=[
            DraftRecord(**d.model_dump(include=draft_fields))
            for d in drafts.drafts_of(session, user_id=user.id)
        ],
    )


def _newer(mine: datetime | None, theirs: datetime | None) -> bool:
    return theirs is not None and (mine is None or theirs > mine)


def import_user(session: Session, *, user: User, data: Export) -> dict[str, int]:
    """Merge an export into `user` in one transaction: new reviews are added, a card or draft
    is replaced only by a more recent one. Importing the same file twice changes nothing."""
    assert user.id is not None
    known = set(session.exec(select(ReviewLog.uid).where(ReviewLog.user_id == user.id)).all())
    added = 0
    for record in data.reviews:
        if record.uid not in known:
            session.add(ReviewLog(user_id=user.id, **record.model_dump()))
            known.add(record.uid)
            added += 1
    cards = {c.item_id: c for c in reviews.cards_of(session, user_id=user.id)}
    updated_cards = 0
    for card_record in data.cards:
        card = cards.get(card_record.item_id)
        if card is None:
            session.add(CardState(user_id=user.id, **card_record.model_dump()))
            updated_cards += 1
        elif _newer(card.last_review, card_record.last_review):
            for name, value in card_record.model_dump().items():
                setattr(card, name, value)
            session.add(card)
            updated_cards += 1
    own_drafts = {d.question_slug: d for d in drafts.drafts_of(session, user_id=user.id)}
    updated_drafts = 0
    for draft_record in data.drafts:
        draft = own_drafts.get(draft_record.question_slug)
        if draft is None:
            session.add(Draft(user_id=user.id, **draft_record.model_dump()))
            updated_drafts += 1
        elif _newer(draft.updated_at, draft_record.updated_at):
            draft.text, draft.updated_at = draft_record.text, draft_record.updated_at
            session.add(draft)
            updated_drafts += 1
    session.commit()
    return {"reviews": added, "cards": updated_cards, "drafts": updated_drafts}
