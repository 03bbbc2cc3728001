"""Practice rounds: choose topics and size, one item at a time, feedback, undo, the summary."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlmodel import Session

from app.auth import ActingUser, OptionalUser
from app.content import Question, QuestionBank
from app.content.render import render_markdown
from app.content.schema import QuizItem
from app.csrf import CsrfChecked
from app.db import SessionDep, WriteSessionDep
from app.deps import BankDep
from app.inputs import TypedInt
from app.messages import ScreenError, on_screen
from app.models import CardState, ReviewLog, User
from app.models.common import utcnow
from app.practice.answering import answer_item, find_item, undo_last
from app.practice.generators import SEED_MAX, fresh_seed
from app.practice.grading import (
    ANSWER_LABELS,
    Outcome,
    Presented,
    choice_index,
    needs_seed,
    present,
    replay,
)
from app.practice.progress import mistakes
from app.practice.rounds import Round, drop_round, load_round, save_round
from app.practice.scheduling import describe_interval, next_intervals
from app.practice.selection import Candidate, candidates, mistake_candidates, scope_of
from app.repos import reviews
from app.web import render
from app.worker.errors import InvalidInput

router = APIRouter(prefix="/practice", tags=["practice"], include_in_schema=False)

ROUND_MAX = 50
# Typed by the learner in the round form: read by the one rule for numbers.
RoundSize = Annotated[TypedInt, Query(ge=1, le=ROUND_MAX)]
Slugs = Annotated[list[str], Query(max_length=30)]
GRADE_NAMES = {1: "Again", 2: "Hard", 3: "Good", 4: "Easy"}


def _checked_scope(bank: QuestionBank, questions: list[str], tags: list[str]) -> list[Question]:
    """The round's questions from the form; 422 naming the field for an unknown one."""
    for slug in questions:
        if bank.get(slug) is None:
            raise HTTPException(
                status_code=422, detail=f"question: no question is called '{slug[:60]}'"
            )
    for tag in tags:
        if tag not in bank.tags:
            raise HTTPException(status_code=422, detail=f"tag: unknown tag '{tag[:60]}'")
    return scope_of(bank, questions=questions, tags=tags)


def _cards(session: Session, user: User | None) -> dict[str, CardState]:
    if user is None or user.id is None:
        return {}
    return {c.item_id: c for c in reviews.cards_of(session, user_id=user.id)}


def _mistake_ids(session: Session, user: User | None) -> list[str]:
    if user is None or user.id is None:
        return []
    return mistakes(reviews.reviews_of(session, user_id=user.id))


def _scope_label(bank: QuestionBank, round_: Round) -> str:
    if round_.mode == "mistakes":
        return "your mistakes"
    if not round_.questions or len(round_.questions) == len(bank):
        return "all questions"
    return ", ".join(f"Q{n}" for n in round_.questions)


@dataclass
class PracticeItemPage:
    """What partials/_practice_item.html (and pages/practice.html around it) reads."""

    question: Question
    item: QuizItem
    presented: Presented  # the options in the order shown, the seed
    seed: int | None
    prompt_html: str  # rendered Markdown
    hint: str
    unit: str
    answer_html: str  # rendered Markdown: a recall item's model answer, "" for the others
    round: Round | None
    scope_label: str  # "all questions", "Q1, Q4" or "your mistakes"
    position: int  # 1-based place of this item in the round
    reason: str  # why this item comes now (selection's reason, "retry" after an error)
    error: ScreenError | None  # the form's message after a refused answer
    typed: str  # the answer as typed, kept after an error
    intervals: dict[int, str]  # rating (1-4) → next interval, e.g. "10 min" (recall items)
    started: int  # ms since the epoch, for the answer's duration
    undone: bool = False  # the previous grade was just taken back
    hints_used: int = 0


@dataclass(frozen=True)
class PracticeFeedbackPage:
    """What partials/_practice_feedback.html (and its page) reads after an answer."""

    question: Question
    item: QuizItem
    outcome: Outcome
    typed: str  # what the learner answered, as shown
    explanation_html: str  # rendered Markdown
    expected_html: str  # a recall item's model answer, "" for the others
    card: CardState  # the card as the answer moved it
    round: Round
    prompt_html: str
    next_url: str  # the next item, or the round's summary


def _item_context(
    bank: QuestionBank,
    presented: Presented,
    question: Question,
    round_: Round | None,
    reason: str,
    *,
    card: CardState | None,
    error: ScreenError | None = None,
    typed: str = "",
) -> PracticeItemPage:
    item = presented.item
    now = utcnow()
    intervals = {}
    if item.kind == "recall":
        intervals = {
            rating.value: describe_interval(span)
            for rating, span in next_intervals(card, now).items()
        }
    return PracticeItemPage(
        question=question,
        item=item,
        presented=presented,
        seed=presented.seed,
        prompt_html=render_markdown(presented.prompt),
        hint=presented.variant.hint if presented.variant else "",
        unit=presented.unit,
        answer_html=render_markdown(item.answer) if item.kind == "recall" else "",
        round=round_,
        scope_label=_scope_label(bank, round_) if round_ else "",
        position=round_.done + 1 if round_ else 1,
        reason=reason,
        error=error,
        typed=typed,
        intervals=intervals,
        started=int(now.timestamp() * 1000),
    )


def _start_page(
    request: Request,
    bank: QuestionBank,
    session: Session,
    user: User | None,
    *,
    round_: Round | None,
    notice: str = "",
    status_code: int = 200,
) -> HTMLResponse:
    cards = _cards(session, user)
    now = utcnow()
    context = {
        "questions": list(bank),
        "tags": bank.tags,
        "mistake_count": len(_mistake_ids(session, user)),
        "due_now": sum(1 for c in cards.values() if c.due <= now),
        "last_round": round_ if round_ and round_.done else None,
        "notice": notice,
        "round_max": ROUND_MAX,
    }
    return render(request, "pages/practice_start.html", context, status_code=status_code)


@router.get("", response_class=HTMLResponse)
def practice(
    request: Request,
    bank: BankDep,
    session: SessionDep,
    user: OptionalUser,
    question: Slugs = [],  # noqa: B006  (FastAPI copies defaults)
    tag: Slugs = [],  # noqa: B006
    size: RoundSize = 10,
    new: bool = False,
    mistakes: bool = False,
    undone: bool = False,
) -> Response:
    """The item on screen in the current round; a new round (`new`, with the questions, tags
    and size chosen); or, with no round going, the page that starts one."""
    scope = _checked_scope(bank, question, tag)
    round_ = load_round(request)
    numbers = [q.number for q in scope] if (question or tag) else []
    if new or (numbers and (round_ is None or round_.questions != numbers)):
        round_ = Round(questions=numbers, size=size, mode="mistakes" if mistakes else "mixed")
    elif round_ is None or round_.finished:
        notice = "Your last grade was taken back." if undone else ""
        return _start_page(request, bank, session, user, round_=round_, notice=notice)
    cards = _cards(session, user)
    if round_.current and (found := bank.item(round_.current[0])) is not None:
        shown_question, item = found
        seed, reason = round_.current[1], "current"
        if needs_seed(item) != (seed is not None):  # an item changed kind since: draw it afresh
            seed = fresh_seed() if needs_seed(item) else None
    else:
        upcoming = _upcoming(bank, session, user, round_, cards)
        if not upcoming:
            round_.ended = True
            round_.current = None
            save_round(request, round_)
            if round_.done:
                return RedirectResponse("/practice/summary", status_code=303)
            notice = (
                "No mistakes to review: every item you answered was right the last time."
                if round_.mode == "mistakes"
                else "Nothing to practise in that selection."
            )
            return _start_page(request, bank, session, user, round_=None, notice=notice)
        shown_question, item, reason = upcoming[0].question, upcoming[0].item, upcoming[0].reason
        seed = fresh_seed() if needs_seed(item) else None
    round_.current = (item.id, seed)
    save_round(request, round_)
    presented = present(item, seed)
    context = _item_context(
        bank, presented, shown_question, round_, reason, card=cards.get(item.id)
    )
    context.undone = undone
    return render(request, "pages/practice.html", context)


def _upcoming(
    bank: QuestionBank,
    session: Session,
    user: User | None,
    round_: Round,
    cards: dict[str, CardState],
) -> list[Candidate]:
    answered = [r.item_id for r in _round_reviews(session, user, round_)]
    if round_.mode == "mistakes":
        return mistake_candidates(bank, _mistake_ids(session, user), exclude=answered)
    scope = [q for q in bank if not round_.questions or q.number in round_.questions]
    return candidates(bank, cards, utcnow(), scope=scope, exclude=answered)


def _round_reviews(session: Session, user: User | None, round_: Round) -> list[ReviewLog]:
    if user is None or user.id is None:
        return []
    return reviews.reviews_by_ids(session, user_id=user.id, ids=round_.reviews)


@router.get("/summary", response_class=HTMLResponse)
def summary(request: Request, bank: BankDep, session: SessionDep, user: OptionalUser) -> Response:
    """Every item of the round: its prompt, your answer, the right one and why."""
    round_ = load_round(request)
    if round_ is None or not round_.done:
        return RedirectResponse("/practice", status_code=303)
    rows = []
    for review in _round_reviews(session, user, round_):
        found = bank.item(review.item_id)
        if found is None:
            continue
        shown = replay(found[1], answer=review.answer, seed=review.seed, order=review.choice_order)
        rows.append(
            {
                "question": found[0],
                "item": found[1],
                "prompt_html": render_markdown(shown.presented.prompt),
                "given": shown.given,
                "expected": shown.expected,
                "explanation_html": render_markdown(shown.explanation),
                "correct": review.correct,
                "grade": GRADE_NAMES.get(review.rating, ""),
                "failed": review.correct is False or review.rating == 1,
            }
        )
    graded = [r for r in rows if r["correct"] is not None]
    context = {
        "rows": rows,
        "round": round_,
        "scope_label": _scope_label(bank, round_),
        "correct": sum(1 for r in graded if r["correct"]),
        "graded": len(graded),
        "failed": sum(1 for r in rows if r["failed"]),
        "again_query": "&".join(f"question={bank.questions[n - 1].slug}" for n in round_.questions)
        if round_.mode == "mixed" and all(0 < n <= len(bank) for n in round_.questions)
        else "",
    }
    return render(request, "pages/practice_summary.html", context)


@router.post("/answer", response_class=HTMLResponse, dependencies=[CsrfChecked])
def answer(
    request: Request,
    bank: BankDep,
    session: WriteSessionDep,
    user: ActingUser,
    item_id: Annotated[str, Form(max_length=80)],
    answer: Annotated[str, Form(max_length=200)] = "",
    seed: Annotated[int | None, Form(ge=1, le=SEED_MAX)] = None,
    hints_used: Annotated[int, Form(ge=0, le=10)] = 0,
    started: Annotated[int | None, Form(ge=0, le=2**53)] = None,  # ms since the epoch
) -> HTMLResponse:
    """Grade the answer, record the review, show the feedback (what you answered, the right
    answer, why, when it comes back). An answer that cannot be graded is shown again, as
    typed, with the reason."""
    round_ = load_round(request) or Round()
    try:
        question, item = find_item(bank, item_id)
        given: object = answer
        if item.kind == "choice":
            given = choice_index(answer)
        elif item.kind == "numeric" and not answer.strip():
            raise InvalidInput("answer", "type a number")
        now = utcnow()
        duration = int(now.timestamp() * 1000) - started if started else None
        recorded = answer_item(
            session,
            bank,
            user=user,
            item_id=item_id,
            answer=given,
            seed=seed,
            hints_used=hints_used,
            duration_ms=duration if duration and 0 < duration < 86_400_000 else None,
            now=now,
        )
    except InvalidInput as error:
        found = bank.item(item_id)
        if found is None or error.field == "seed":
            raise HTTPException(status_code=422, detail=str(error)) from None
        assert user.id is not None
        card = reviews.card_for(session, user_id=user.id, item_id=item_id)
        context = _item_context(
            bank,
            present(found[1], seed),
            found[0],
            round_,
            "retry",
            card=card,
            error=on_screen(error, ANSWER_LABELS),
            typed=answer,
        )
        context.hints_used = hints_used
        return render(
            request,
            "pages/practice.html",
            context,
            fragment="partials/_practice_item.html",
            status_code=422,
        )
    assert recorded.review.id is not None
    round_.record(recorded.review.id, item.id)
    save_round(request, round_)
    outcome = recorded.outcome
    feedback = PracticeFeedbackPage(
        question=question,
        item=item,
        outcome=outcome,
        typed=answer.strip() if item.kind == "numeric" else outcome.given,
        explanation_html=render_markdown(outcome.explanation),
        expected_html=render_markdown(outcome.expected) if item.kind == "recall" else "",
        card=recorded.card,
        round=round_,
        prompt_html=render_markdown(recorded.presented.prompt),
        next_url="/practice/summary" if round_.finished else "/practice",
    )
    return render(
        request,
        "pages/practice_feedback.html",
        feedback,
        fragment="partials/_practice_feedback.html",
    )


@router.post("/undo", dependencies=[CsrfChecked])
def undo(request: Request, session: WriteSessionDep, user: OptionalUser) -> Response:
    """Take back the last grade: the review is removed, its card restored, and the item is on
    screen again as it was shown; the page then says so."""
    removed = undo_last(session, user_id=user.id) if user and user.id else None
    if removed is None:
        return RedirectResponse("/practice", status_code=303)
    round_ = load_round(request)
    if (
        round_ is not None
        and removed.id is not None
        and round_.take_back(removed.id, removed.item_id, removed.seed)
    ):
        save_round(request, round_)
    return RedirectResponse("/practice?undone=true", status_code=303)


@router.post("/end", dependencies=[CsrfChecked])
def end_round(request: Request) -> Response:
    """End the current round now: its summary if anything was answered, else a new start."""
    round_ = load_round(request)
    if round_ is None or not round_.done:
        drop_round(request)
        return RedirectResponse("/practice", status_code=303)
    round_.ended, round_.current = True, None
    save_round(request, round_)
    return RedirectResponse("/practice/summary", status_code=303)
