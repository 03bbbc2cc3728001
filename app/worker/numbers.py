"""The one rule for numbers a person types: NFKC first, then ASCII digits only, bounded length.

`str.isdigit()` and `int()` disagree: a superscript two (`²`) or a circled one (`①`) passes
`isdigit()` and then `int()` raises; `int()` and `float()` also take Arabic-Indic digits, `_`
separators and surrounding whitespace, and `float()` overflows on a 400-digit integer. Every
number typed into a form, a demo text field or the JSON API goes through `parse_int` or
`parse_float` here, so the same text means the same number everywhere (Unicode compatibility
normalisation, UAX #15, turns `²` into `2` and full-width `１２` into `12`) and a value that
cannot be converted is an `InvalidInput` naming the field, never a crash. Pure Python: the
worker and the web side both import it.
"""

from __future__ import annotations

import math
import re
import unicodedata

from app.worker.errors import InvalidInput

# Longest accepted text: enough for any int64 (19 digits and a sign) or a float written out
# with a mantissa and an exponent; anything longer is a paste error or an attack.
MAX_NUMBER_TEXT = 40
# Largest magnitude of a typed whole number: every figure in cvprep fits well inside it, and
# it converts to a float without rounding (2**53).
MAX_INT = 2**53

_INT = re.compile(r"[+-]?[0-9]+", re.ASCII)
_FLOAT = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?", re.ASCII)


def normalize(text: str) -> str:
    """`text` after NFKC (compatibility forms folded: `²` → `2`, `１` → `1`), stripped."""
    return unicodedata.normalize("NFKC", text).strip()


def _prepared(text: str, field: str, what: str) -> str:
    if len(text) > 4 * MAX_NUMBER_TEXT:
        raise InvalidInput(field, f"{what} is too long (at most {MAX_NUMBER_TEXT} characters)")
    value = normalize(text)
    if not value:
        raise InvalidInput(field, f"type {what}")
    if len(value) > MAX_NUMBER_TEXT:
        raise InvalidInput(field, f"{what} is too long (at most {MAX_NUMBER_TEXT} characters)")
    return value


def parse_int(text: str, *, field: str, minimum: int = -MAX_INT, maximum: int = MAX_INT) -> int:
    """A whole number from typed text, within [minimum, maximum].

    Raises InvalidInput(field, …) for empty text, anything but an optional sign and ASCII
    digits after NFKC, or a value out of range.
    """
    value = _prepared(text, field, "a whole number")
    if not _INT.fullmatch(value):
        raise InvalidInput(field, f"{text[:40]!r} is not a whole number (use digits 0-9)")
    number = int(value)
    if not minimum <= number <= maximum:
        raise InvalidInput(field, f"must be between {minimum:,} and {maximum:,} (got {value})")
    return number


def parse_float(text: str, *, field: str, limit: float = 1e300) -> float:
    """A finite number from typed text (`12`, `-0.5`, `.5`, `1e-3`), |value| ≤ limit.

    Raises InvalidInput(field, …) for empty text, `nan`/`inf`, anything but ASCII digits, one
    point and an exponent after NFKC, or a magnitude past `limit`.
    """
    value = _prepared(text, field, "a number")
    if not _FLOAT.fullmatch(value):
        raise InvalidInput(field, f"{text[:40]!r} is not a number (use digits 0-9)")
    number = float(value)
    if not math.isfinite(number) or abs(number) > limit:
        raise InvalidInput(
            field, f"must be a number between {-limit:g} and {limit:g} (got {value})"
        )
    return number


def check_int(value: int, *, field: str, minimum: int = -MAX_INT, maximum: int = MAX_INT) -> int:
    """An integer that arrived already typed (JSON), held to the same bounds as typed text."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(field, "must be a whole number")
    if not minimum <= value <= maximum:
        # str() of a huge int is slow (and refused past 4,300 digits): describe it instead.
        digits = int(value.bit_length() * math.log10(2)) + 1
        shown = str(value) if digits <= 24 else f"a number of about {digits:,} digits"
        raise InvalidInput(field, f"must be between {minimum:,} and {maximum:,} (got {shown})")
    return value


def as_finite_float(value: object, *, field: str, limit: float = 1e300) -> float:
    """A JSON number (int or float) as a finite float with |value| ≤ limit; InvalidInput if not.

    `float()` of a 400-digit integer raises OverflowError; this reports it as out of range.
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidInput(field, "must be a number")
    if isinstance(value, int) and abs(value) > limit:
        raise InvalidInput(field, f"must be a number between {-limit:g} and {limit:g}")
    number = float(value)
    if not math.isfinite(number) or abs(number) > limit:
        raise InvalidInput(field, f"must be a number between {-limit:g} and {limit:g}")
    return number
