"""Request values checked at the edge: what the database cannot store, or a number a person
typed, is refused with a 422 naming the field before any route code runs.

- `StorableStr`: no NUL character (PostgreSQL's text types cannot hold one) and no lone
  surrogate (not encodable as UTF-8). Lengths are bounded where the field is declared.
- `TypedInt`: a whole number by the one rule of `app.worker.numbers` (NFKC, ASCII digits).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BeforeValidator, ValidationInfo

from app.worker.errors import InvalidInput
from app.worker.numbers import parse_int


def storable(value: str) -> str:
    """`value` unchanged if a database can store it; ValueError (→ 422) if not."""
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("is not valid Unicode text (a lone surrogate)") from None
    return value


def _typed_int(value: object, info: ValidationInfo) -> object:
    if not isinstance(value, str):
        return value
    try:
        return parse_int(value, field=info.field_name or "value")
    except InvalidInput as error:
        raise ValueError(error.message) from None


StorableStr = Annotated[str, AfterValidator(storable)]
FormText = StorableStr
TypedInt = Annotated[int, BeforeValidator(_typed_int)]
