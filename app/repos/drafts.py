"""Drafts: a learner's own answer to a question, one per (user, question)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlmodel import Session, select

from app.models import Draft
from app.models.common import utcnow


def draft_for(session: Session, *, user_id: int, question_slug: str) -> Draft | None:
    return session.exec(
        select(Draft).where(Draft.user_id == user_id, Draft.question_slug == question_slug)
    ).first()


def drafts_of(session: Session, *, user_id: int) -> Sequence[Draft]:
    return session.exec(select(Draft).where(Draft.user_id == user_id)).all()


def save_draft(session: Session, *, user_id: int, question_slug: str, text: str) -> Draft:
    draft = draft_for(session, user_id=user_id, question_slug=question_slug)
    if draft is None:
        draft = Draft(user_id=user_id, question_slug=question_slug)
    draft.text = text
    draft.updated_at = utcnow()
    session.add(draft)
    session.commit()
    return draft
