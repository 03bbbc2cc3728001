"""Grading an answer to a quiz item, and turning the result into an FSRS rating."""

from __future__ import annotations

from dataclasses import dataclass

from fsrs import Rating

from app.content.schema import ChoiceItem, NumericItem, QuizItem, RecallItem
from app.practice.generators import Variant, variant
from app.worker.errors import InvalidInput
from app.worker.numbers import as_finite_float, parse_float, parse_int

SELF_GRADES = {"again": Rating.Again, "hard": Rating.Hard, "good": Rating.Good, "easy": Rating.Easy}


class AnswerError(ValueError):
    """An answer that cannot be graded; `field` names the part of the request at fault."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(f"{field}: {message}")


def choice_index(text: str) -> int:
    """The option a person typed or sent from a form ("2", "²" and "２" alike); AnswerError if
    it is not a whole number."""
    try:
        return parse_int(text, field="answer", minimum=0, maximum=1_000)
    except InvalidInput:
        raise AnswerError("answer", "choose one of the options") from None


@dataclass(frozen=True)
class Outcome:
    correct: bool | None  # None for a self-graded recall card
    rating: Rating
    expected: str  # what the right answer is, as text
    explanation: str  # Markdown
    answer_text: str  # the learner's answer as it is stored


@dataclass(frozen=True)
class Presented:
    """An item as a learner sees it: the prompt (a variant's for parametric ones) and seed."""

    item: QuizItem
    prompt: str
    seed: int | None = None
    variant: Variant | None = None


def present(item: QuizItem, seed: int | None) -> Presented:
    """The item as shown; parametric items need the seed, the others must not get one."""
    if isinstance(item, NumericItem) and item.generator:
        if seed is None:
            raise AnswerError("seed", "this item is parametric: send the seed of the variant shown")
        try:
            shown = variant(item.generator, seed)
        except ValueError as error:
            raise AnswerError("seed", str(error).removeprefix("seed: ")) from error
        return Presented(item, shown.prompt, seed, shown)
    if seed is not None:
        raise AnswerError("seed", "this item has fixed numbers and takes no seed")
    return Presented(item, item.prompt)


def _format_number(value: float) -> str:
    return f"{value:,.6g}" if abs(value) < 1e6 else f"{value:,.0f}"


def _auto_rating(correct: bool, hints_used: int) -> Rating:
    if not correct:
        return Rating.Again
    return Rating.Hard if hints_used else Rating.Good


def grade(presented: Presented, answer: object, *, hints_used: int = 0) -> Outcome:
    """Grade `answer` for the item as presented; AnswerError for an unusable answer."""
    item = presented.item
    if isinstance(item, ChoiceItem):
        if isinstance(answer, bool) or not isinstance(answer, int):
            raise AnswerError("answer", "send the index of the chosen option (an integer)")
        if not 0 <= answer < len(item.choices):
            raise AnswerError(
                "answer", f"option index must be between 0 and {len(item.choices) - 1}"
            )
        correct = answer == item.answer_index
        right = item.choices[item.answer_index]
        chosen = item.choices[answer]
        explanation = (
            chosen.why
            if correct
            else f"{chosen.why}\n\nThe right answer: {right.text}. {right.why}"
        )
        return Outcome(
            correct, _auto_rating(correct, hints_used), right.text, explanation, str(answer)
        )

    if isinstance(item, NumericItem):
        number = _as_number(answer)
        if presented.variant is not None:
            expected, tolerance, why = (
                presented.variant.answer,
                presented.variant.tolerance,
                presented.variant.working,
            )
        else:
            assert item.answer is not None and item.why is not None
            expected, tolerance, why = item.answer, item.tolerance, item.why
        # A little slack for floating-point noise in answers typed to the stated precision.
        correct = abs(number - expected) <= tolerance + 1e-9 * max(1.0, abs(expected))
        unit = (presented.variant.unit if presented.variant else item.unit) or ""
        expected_text = f"{_format_number(expected)} {unit}".strip()
        return Outcome(correct, _auto_rating(correct, hints_used), expected_text, why, repr(number))

    assert isinstance(item, RecallItem)
    if not isinstance(answer, str) or answer.lower() not in SELF_GRADES:
        raise AnswerError("answer", "grade a recall card with one of again, hard, good, easy")
    rating = SELF_GRADES[answer.lower()]
    return Outcome(None, rating, item.answer, item.answer, answer.lower())


def _as_number(answer: object) -> float:
    """A typed or JSON answer as a finite float, by the one rule in app.worker.numbers."""
    try:
        if isinstance(answer, str):
            # Thousands separators are allowed in an answer: "1,792" and "1_792" are 1792.
            return parse_float(answer.replace(",", "").replace("_", ""), field="answer")
        return as_finite_float(answer, field="answer")
    except InvalidInput as error:
        raise AnswerError("answer", error.message) from None
