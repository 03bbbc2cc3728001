"""Export and import of one user's data as JSON (reviews, cards, drafts).

An import is checked whole before anything is written: every value must be one the database
can store and the scheduler can use (`check_export`), or the import is refused naming the
entry and the field, and nothing changes. Entries for quiz items or questions this version
does not have are counted and left out.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

from fsrs import Card, Rating, State
from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, ValidationError
from sqlmodel import Session, select

from app.content import QuestionBank
from app.content.schema import ChoiceItem
from app.inputs import StorableStr
from app.models import CardState, Draft, ReviewLog, User
from app.models.common import utcnow
from app.practice import scheduling
from app.practice.generators import SEED_MAX
from app.practice.grading import parse_order
from app.repos import drafts, reviews
from app.worker.errors import InvalidInput

EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)
# A review, a draft or a card's last review cannot come from the future (a little clock skew).
CLOCK_SKEW = timedelta(days=1)
MAX_COUNT = 1_000_000  # reps, lapses: far beyond any learner, far inside a 32-bit column
MAX_STABILITY = 1e6  # days; FSRS caps intervals at 36,500


def _in_range(value: datetime) -> datetime:
    try:
        utc = value.astimezone(UTC)
    except OverflowError:  # e.g. year 1 at +05:00: no such instant in UTC
        raise ValueError("is out of range") from None
    if not EARLIEST <= utc < LATEST:
        raise ValueError(f"must be between {EARLIEST:%Y-%m-%d} and {LATEST:%Y-%m-%d}")
    return utc


Moment = Annotated[AwareDatetime, AfterValidator(_in_range)]
Name = Annotated[StorableStr, Field(max_length=80)]
Count = Annotated[int, Field(ge=0, le=MAX_COUNT)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class CardFields(_Strict):
    """The scheduling fields of a card, as in `fsrs.Card` (and in an undo snapshot)."""

    state: Literal[1, 2, 3]  # fsrs.State: 1 learning, 2 review, 3 relearning
    step: Annotated[int, Field(ge=0, le=100)] | None
    stability: Annotated[float, Field(gt=0, le=MAX_STABILITY)] | None
    difficulty: Annotated[float, Field(ge=1, le=10)] | None
    due: Moment
    last_review: Moment | None
    reps: Count
    lapses: Count


class CardSnapshot(CardFields):
    """A review's `card_before`: the card as it was, so an undo can restore it."""

    detached: bool = False  # not the receiving user's card: undo leaves the card alone


class ReviewRecord(_Strict):
    uid: str = Field(pattern=r"^[0-9a-f]{32}$")
    item_id: Name
    question_slug: Annotated[StorableStr, Field(max_length=60)]
    rating: int = Field(ge=1, le=4)
    correct: bool | None
    answer: Annotated[StorableStr, Field(max_length=2000)]
    seed: Annotated[int, Field(ge=1, le=SEED_MAX)] | None
    # Multiple choice: the file's option indices in the order shown ("2,0,3,1"); absent in
    # files from versions that showed every option in the file's order.
    choice_order: Annotated[str, Field(pattern=r"^[0-9](,[0-9]){1,9}$")] | None = None
    mode: Literal["practice", "mock", "api"]
    reviewed_at: Moment
    duration_ms: Annotated[int, Field(ge=0, le=86_400_000)] | None
    card_before: Annotated[StorableStr, Field(max_length=2000)] | None


class CardRecord(CardFields):
    item_id: Name
    question_slug: Annotated[StorableStr, Field(max_length=60)]


class DraftRecord(_Strict):
    question_slug: Annotated[StorableStr, Field(max_length=60)]
    text: Annotated[StorableStr, Field(max_length=20_000)]
    updated_at: Moment


class Export(_Strict):
    format: Literal["cvprep-progress"]
    version: Literal[1]
    exported_at: Moment
    username: Annotated[StorableStr, Field(max_length=40)] | None
    reviews: list[ReviewRecord] = Field(max_length=200_000)
    cards: list[CardRecord] = Field(max_length=10_000)
    drafts: list[DraftRecord] = Field(max_length=1_000)


def refused(problems: list[str]) -> InvalidInput:
    """An import that cannot be used: InvalidInput naming `file`, with one "entry.field:
    message" line per problem in `details`."""
    return InvalidInput(
        "file",
        f"not a cvprep export this version can use ({len(problems)} problem"
        f"{'s' if len(problems) != 1 else ''}); nothing was imported",
        details=problems,
    )


def _where(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "file"


def parse_export(raw: bytes) -> Export:
    """The file as an Export; InvalidInput naming each entry and field that is wrong."""
    try:
        return Export.model_validate_json(raw)
    except ValidationError as invalid:
        problems = [
            f"{_where(e['loc'])}: {str(e['msg']).removeprefix('Value error, ')}"
            for e in invalid.errors()[:20]
        ]
        raise refused(problems) from None


# --- what the scheduler needs ----------------------------------------------------------------


def card_problems(card: CardFields, now: datetime) -> Iterator[tuple[str, str]]:
    """(field, message) for each way `card` is not one FSRS can schedule, as fsrs 6.x does.

    A card that has been reviewed (`last_review` set) has a stability > 0 and a difficulty in
    [1, 10] (fsrs.scheduler's bounds); a review-state card has no step, a (re)learning card
    has one; it is due no earlier than its last review; lapses never exceed reps.
    """
    reviewed = card.last_review is not None
    if card.state in (State.Review.value, State.Relearning.value) and not reviewed:
        yield "last_review", "a card in review or relearning state must have a last review"
    if reviewed or card.state != State.Learning.value:
        if card.stability is None:
            yield "stability", "a reviewed card needs a stability > 0"
        if card.difficulty is None:
            yield "difficulty", "a reviewed card needs a difficulty between 1 and 10"
    elif card.stability is not None or card.difficulty is not None or card.reps:
        yield "last_review", "a card with a stability, a difficulty or reps needs a last review"
    if card.state == State.Review.value and card.step is not None:
        yield "step", "a card in review state has no learning step (null)"
    if card.state != State.Review.value and card.step is None:
        yield "step", "a card in learning or relearning state needs its step (0, 1, …)"
    if card.last_review is not None:
        if card.last_review > now + CLOCK_SKEW:
            yield "last_review", "is in the future"
        if card.due < card.last_review:
            yield "due", "is before the card's last review"
        if card.reps < 1:
            yield "reps", "a reviewed card has at least one rep"
    if card.lapses > card.reps:
        yield "lapses", "cannot exceed reps"


def _schedulable(card: CardFields, now: datetime) -> str | None:
    """None if FSRS schedules `card` (again and good) and rates its recall; else the error."""
    fsrs_card = Card(
        card_id=0,
        state=State(card.state),
        step=card.step,
        stability=card.stability,
        difficulty=card.difficulty,
        due=card.due,
        last_review=card.last_review,
    )
    at = max(now, card.last_review or now)
    try:
        for rating in (Rating.Again, Rating.Good):
            updated, _ = scheduling.SCHEDULER.review_card(fsrs_card, rating, review_datetime=at)
            if not (updated.stability and 0 < updated.stability < float("inf")):
                return "the scheduler computes no usable stability for it"
        recall = scheduling.SCHEDULER.get_card_retrievability(fsrs_card, current_datetime=at)
    except (ArithmeticError, ValueError, AssertionError, IndexError, TypeError) as error:
        return f"the scheduler cannot use it ({type(error).__name__})"
    if not 0 <= recall <= 1:
        return "the scheduler computes no probability of recall for it"
    return None


def _check_card(where: str, card: CardFields, now: datetime) -> list[str]:
    problems = [f"{where}.{name}: {message}" for name, message in card_problems(card, now)]
    if not problems and (error := _schedulable(card, now)) is not None:
        problems.append(f"{where}: {error}")
    return problems


def _order_problems(where: str, review: ReviewRecord, bank: QuestionBank) -> list[str]:
    """A review's choice order must be an order of its item's options (and only a
    multiple-choice item has one)."""
    if review.choice_order is None:
        return []
    found = bank.item(review.item_id)
    assert found is not None
    item = found[1]
    if not isinstance(item, ChoiceItem):
        return [f"{where}.choice_order: item '{review.item_id}' has no options to order"]
    if parse_order(review.choice_order, len(item.choices)) is None:
        count = len(item.choices)
        return [f"{where}.choice_order: must list each of the options 0..{count - 1} once"]
    return []


@dataclass
class Plan:
    """A checked import: what to write, and what was left out."""

    data: Export
    skipped: dict[str, int] = field(default_factory=lambda: {"reviews": 0, "cards": 0, "drafts": 0})
    keep_reviews: list[ReviewRecord] = field(default_factory=list)
    keep_cards: list[CardRecord] = field(default_factory=list)
    keep_drafts: list[DraftRecord] = field(default_factory=list)


def check_export(data: Export, bank: QuestionBank, now: datetime | None = None) -> Plan:
    """Everything an import needs that one field alone cannot say; InvalidInput if any fails.

    Items and questions this version lacks are left out and counted (`Plan.skipped`); an
    item filed under another question than it belongs to, the same card, review or draft
    twice, or a card or undo snapshot FSRS cannot schedule is refused.
    """
    now = now or utcnow()
    plan = Plan(data)
    problems: list[str] = []
    if data.exported_at > now + CLOCK_SKEW:
        problems.append("exported_at: is in the future")

    def known_item(where: str, item_id: str, slug: str) -> bool:
        found = bank.item(item_id)
        if found is None:
            return False
        if found[0].slug != slug:
            problems.append(f"{where}.question_slug: item '{item_id}' belongs to '{found[0].slug}'")
        return True

    first_seen: dict[tuple[str, str], str] = {}

    def unique(where: str, kind: str, value: str, name: str) -> None:
        earlier = first_seen.setdefault((kind, value), where)
        if earlier != where:
            problems.append(f"{where}.{name}: '{value}' appears twice (also {earlier})")

    for index, card in enumerate(data.cards):
        where = f"cards[{index}]"
        unique(where, "card", card.item_id, "item_id")
        if not known_item(where, card.item_id, card.question_slug):
            plan.skipped["cards"] += 1
            continue
        problems += _check_card(where, card, now)
        plan.keep_cards.append(card)
    for index, review in enumerate(data.reviews):
        where = f"reviews[{index}]"
        unique(where, "review", review.uid, "uid")
        if review.reviewed_at > now + CLOCK_SKEW:
            problems.append(f"{where}.reviewed_at: is in the future")
        if review.card_before is not None:
            try:
                snapshot = CardSnapshot.model_validate_json(review.card_before)
            except ValidationError as invalid:
                first = invalid.errors()[0]
                message = str(first["msg"]).removeprefix("Value error, ")
                loc = _where(first["loc"])
                problems.append(f"{where}.card_before: not a card snapshot ({loc}: {message})")
            else:
                problems += _check_card(f"{where}.card_before", snapshot, now)
        if not known_item(where, review.item_id, review.question_slug):
            plan.skipped["reviews"] += 1
            continue
        problems += _order_problems(where, review, bank)
        plan.keep_reviews.append(review)
    for index, draft in enumerate(data.drafts):
        where = f"drafts[{index}]"
        unique(where, "draft", draft.question_slug, "question_slug")
        if draft.updated_at > now + CLOCK_SKEW:
            problems.append(f"{where}.updated_at: is in the future")
        if bank.get(draft.question_slug) is None:
            plan.skipped["drafts"] += 1
            continue
        plan.keep_drafts.append(draft)
    if problems:
        more = [f"… and {len(problems) - 20} more"] if len(problems) > 20 else []
        raise refused(problems[:20] + more)
    return plan


# --- export and import -----------------------------------------------------------------------


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


def _detach(review: ReviewLog | ReviewRecord) -> str | None:
    return scheduling.detach_snapshot(review.card_before) if review.card_before else None


def import_user(session: Session, *, user: User, plan: Plan) -> dict[str, int]:
    """Merge a checked import into `user` in one transaction: new reviews are added, a card or
    draft is replaced only by a more recent one. Importing the same file twice changes nothing.

    Undo snapshots are rebased: a review whose item ends up with the other side's card (the
    file's card replaced the user's, or the user's card stayed) gets a detached snapshot, so
    undoing it never writes one user's card state over another's.
    """
    assert user.id is not None
    cards = {c.item_id: c for c in reviews.cards_of(session, user_id=user.id)}
    from_file: set[str] = set()  # items whose card is now the file's
    updated_cards = 0
    for card_record in plan.keep_cards:
        card = cards.get(card_record.item_id)
        if card is None:
            session.add(CardState(user_id=user.id, **card_record.model_dump()))
        elif _newer(card.last_review, card_record.last_review):
            for name, value in card_record.model_dump().items():
                setattr(card, name, value)
            session.add(card)
        else:
            continue
        from_file.add(card_record.item_id)
        updated_cards += 1
    for own in reviews.reviews_of(session, user_id=user.id):
        if own.item_id in from_file and own.card_before:
            own.card_before = _detach(own)
            session.add(own)
    known = set(session.exec(select(ReviewLog.uid).where(ReviewLog.user_id == user.id)).all())
    added = 0
    for record in plan.keep_reviews:
        if record.uid in known:
            continue
        values = record.model_dump()
        if record.item_id not in from_file:
            values["card_before"] = _detach(record)
        session.add(ReviewLog(user_id=user.id, **values))
        known.add(record.uid)
        added += 1
    own_drafts = {d.question_slug: d for d in drafts.drafts_of(session, user_id=user.id)}
    updated_drafts = 0
    for draft_record in plan.keep_drafts:
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
