"""Grading an answer to a quiz item, and turning the result into an FSRS rating.

Multiple-choice options are shown in an order drawn from the attempt's seed (`choice_order`),
so the right option is not always in the same place; an answer names the position *shown*,
and what is stored is the option's index in the question file, beside the order shown.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass

from fsrs import Rating

from app.content.schema import Choice, ChoiceItem, NumericItem, QuizItem, RecallItem
from app.practice.generators import SEED_MAX, Variant, variant
from app.worker.errors import InvalidInput
from app.worker.numbers import as_finite_float, normalize, parse_float, parse_int

SELF_GRADES = {"again": Rating.Again, "hard": Rating.Hard, "good": Rating.Good, "easy": Rating.Easy}


# What the answer form calls its fields, for messages (app.messages.on_screen; the API names
# them as sent).
ANSWER_LABELS = {"answer": "Your answer", "item_id": "The quiz item", "seed": "The variant"}


def choice_index(text: str) -> int:
    """The option a person typed or sent from a form ("2", "²" and "２" alike); InvalidInput if
    it is not a whole number."""
    try:
        return parse_int(text, field="answer", minimum=0, maximum=1_000)
    except InvalidInput:
        raise InvalidInput("answer", "choose one of the options") from None


@dataclass(frozen=True)
class Outcome:
    correct: bool | None  # None for a self-graded recall card
    rating: Rating
    expected: str  # what the right answer is, as text
    explanation: str  # Markdown
    answer_text: str  # the learner's answer as it is stored
    given: str = ""  # the learner's answer as they gave it: the option's text, the number
    hinted: bool = False  # right, but after a hint: counted as Hard


@dataclass(frozen=True)
class Solution:
    """The right answer to an item as presented, and why: for items not answered."""

    expected: str
    explanation: str  # Markdown


def choice_order(count: int, seed: int) -> tuple[int, ...]:
    """The order in which `count` options are shown for `seed`: option indices as in the file.

    A Fisher–Yates shuffle (`random.shuffle`) seeded by a string, which `random` hashes with
    SHA-512: the same seed gives the same order in every process and after every reload, and
    over seeds each option is equally likely in each position.
    """
    order = list(range(count))
    random.Random(f"choices:{seed}").shuffle(order)
    return tuple(order)


def format_order(order: Sequence[int] | None) -> str | None:
    """An order as the review log stores it: "2,0,3,1" (None when the file's order was shown)."""
    return ",".join(str(i) for i in order) if order is not None else None


def parse_order(text: str | None, count: int) -> tuple[int, ...] | None:
    """A stored order back as indices; None if absent or not a permutation of `count` options."""
    if not text:
        return None
    try:
        order = tuple(int(part) for part in text.split(","))
    except ValueError:
        return None
    return order if sorted(order) == list(range(count)) else None


@dataclass(frozen=True)
class Presented:
    """An item as a learner sees it: the prompt (a variant's for parametric ones), the seed, and
    for a multiple-choice item the order of its options (indices into `item.choices`)."""

    item: QuizItem
    prompt: str
    seed: int | None = None
    variant: Variant | None = None
    order: tuple[int, ...] | None = None

    @property
    def choices(self) -> list[Choice]:
        """The options in the order shown (the file's order when there is no seed)."""
        if not isinstance(self.item, ChoiceItem):
            return []
        order = self.order or range(len(self.item.choices))
        return [self.item.choices[i] for i in order]

    def shown_position(self, file_index: int) -> int:
        """Where option `file_index` (its index in the file) appears in the order shown."""
        return self.order.index(file_index) if self.order is not None else file_index

    @property
    def unit(self) -> str:
        if self.variant is not None:
            return self.variant.unit
        return (self.item.unit if isinstance(self.item, NumericItem) else None) or ""


def needs_seed(item: QuizItem) -> bool:
    """Parametric numeric items (fresh numbers) and multiple choice (shuffled options)."""
    return isinstance(item, ChoiceItem) or (isinstance(item, NumericItem) and bool(item.generator))


def present(item: QuizItem, seed: int | None) -> Presented:
    """The item as shown. Parametric items need the seed; a multiple-choice item with a seed
    shows its options shuffled by it (without one, in the file's order); the others take none."""
    if isinstance(item, NumericItem) and item.generator:
        if seed is None:
            raise InvalidInput(
                "seed", "this item is parametric: send the seed of the variant shown"
            )
        try:
            shown = variant(item.generator, seed)
        except ValueError as error:
            raise InvalidInput("seed", str(error).removeprefix("seed: ")) from error
        return Presented(item, shown.prompt, seed, shown)
    if isinstance(item, ChoiceItem) and seed is not None:
        if not 1 <= seed <= SEED_MAX:
            raise InvalidInput("seed", f"must be between 1 and {SEED_MAX}")
        return Presented(item, item.prompt, seed, order=choice_order(len(item.choices), seed))
    if seed is not None:
        raise InvalidInput("seed", "this item has fixed numbers and takes no seed")
    return Presented(item, item.prompt)


def _format_number(value: float) -> str:
    return f"{value:,.6g}" if abs(value) < 1e6 else f"{value:,.0f}"


def _auto_rating(correct: bool, hints_used: int) -> Rating:
    if not correct:
        return Rating.Again
    return Rating.Hard if hints_used else Rating.Good


def grade(presented: Presented, answer: object, *, hints_used: int = 0) -> Outcome:
    """Grade `answer` for the item as presented; InvalidInput for an unusable answer.

    choice: the position of the option in the order shown (an int); numeric: a number or its
    text; recall: again | hard | good | easy. A right answer after a hint rates Hard.
    """
    item = presented.item
    if isinstance(item, ChoiceItem):
        if isinstance(answer, bool) or not isinstance(answer, int):
            raise InvalidInput("answer", "send the index of the chosen option (an integer)")
        if not 0 <= answer < len(item.choices):
            raise InvalidInput(
                "answer", f"option index must be between 0 and {len(item.choices) - 1}"
            )
        chosen_index = presented.order[answer] if presented.order is not None else answer
        return _choice_outcome(item, chosen_index, hints_used)

    if isinstance(item, NumericItem):
        number = _as_number(answer)
        expected, tolerance, why = _numeric_target(presented)
        # A little slack for floating-point noise in answers typed to the stated precision.
        correct = abs(number - expected) <= tolerance + 1e-9 * max(1.0, abs(expected))
        return Outcome(
            correct,
            _auto_rating(correct, hints_used),
            _with_unit(expected, presented.unit),
            why,
            repr(number),
            given=_with_unit(number, presented.unit),
            hinted=correct and hints_used > 0,
        )

    assert isinstance(item, RecallItem)
    if not isinstance(answer, str) or answer.lower() not in SELF_GRADES:
        raise InvalidInput("answer", "grade a recall card with one of again, hard, good, easy")
    rating = SELF_GRADES[answer.lower()]
    return Outcome(None, rating, item.answer, item.answer, answer.lower(), given=answer.lower())


def _choice_outcome(item: ChoiceItem, chosen_index: int, hints_used: int) -> Outcome:
    correct = chosen_index == item.answer_index
    right = item.choices[item.answer_index]
    chosen = item.choices[chosen_index]
    explanation = (
        chosen.why if correct else f"{chosen.why}\n\nThe right answer: {right.text}. {right.why}"
    )
    return Outcome(
        correct,
        _auto_rating(correct, hints_used),
        right.text,
        explanation,
        str(chosen_index),
        given=chosen.text,
        hinted=correct and hints_used > 0,
    )


def _numeric_target(presented: Presented) -> tuple[float, float, str]:
    """(expected, tolerance, working in Markdown) of a numeric item as presented."""
    item = presented.item
    assert isinstance(item, NumericItem)
    if presented.variant is not None:
        shown = presented.variant
        return shown.answer, shown.tolerance, shown.working
    assert item.answer is not None and item.why is not None
    return item.answer, item.tolerance, item.why


def _with_unit(value: float, unit: str) -> str:
    return f"{_format_number(value)} {unit}".strip()


def solution(presented: Presented) -> Solution:
    """The right answer and its explanation, for an item the learner did not answer."""
    item = presented.item
    if isinstance(item, ChoiceItem):
        right = item.choices[item.answer_index]
        return Solution(right.text, right.why)
    if isinstance(item, NumericItem):
        expected, _tolerance, why = _numeric_target(presented)
        return Solution(_with_unit(expected, presented.unit), why)
    return Solution(item.answer, item.answer)


def replay(item: QuizItem, *, answer: str, seed: int | None, order: str | None) -> Replayed:
    """A stored review shown again: the prompt as it was, what was answered, the right answer
    and the explanation. Never raises: a review an older version (or an import) stored in a
    form this version cannot read shows its stored text and the item's own solution."""
    try:
        presented = present(item, seed)
    except InvalidInput:
        presented = present(item, None)
    if isinstance(item, ChoiceItem):
        order_shown = parse_order(order, len(item.choices))
        presented = Presented(item, item.prompt, seed, order=order_shown)
        if answer.isdigit() and int(answer) < len(item.choices):
            outcome = _choice_outcome(item, int(answer), 0)
            return Replayed(presented, outcome.given, outcome.expected, outcome.explanation)
    elif isinstance(item, NumericItem):
        try:
            number = float(answer)
            given = _with_unit(number, presented.unit)
        except (ValueError, OverflowError):
            given = answer
        right = solution(presented)
        return Replayed(presented, given, right.expected, right.explanation)
    right = solution(presented)
    return Replayed(presented, answer, right.expected, right.explanation)


@dataclass(frozen=True)
class Replayed:
    presented: Presented
    given: str
    expected: str
    explanation: str  # Markdown


# 12,345 or 1,234,567.5: the only commas a number may hold. "0,153" is not one of them.
_THOUSANDS = re.compile(r"^[+-]?[1-9][0-9]{0,2}(,[0-9]{3})+(\.[0-9]*)?$", re.ASCII)


def _as_number(answer: object) -> float:
    """A typed or JSON answer as a finite float, by the one rule in app.worker.numbers."""
    try:
        if isinstance(answer, str):
            if "," in answer and not _THOUSANDS.match(normalize(answer)):
                raise InvalidInput(
                    "answer",
                    f"'{answer[:40]}' has a comma that does not separate thousands; write "
                    "decimals with a dot (0.153, not 0,153)",
                )
            # Thousands separators are allowed in an answer: "1,792" and "1_792" are 1792.
            return parse_float(answer.replace(",", "").replace("_", ""), field="answer")
        return as_finite_float(answer, field="answer")
    except InvalidInput as error:
        raise InvalidInput("answer", error.message) from None
