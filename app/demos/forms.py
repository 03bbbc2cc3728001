"""Demo form values: raw strings in, typed values out, errors naming the field.

Forms submit by GET (the URL then holds the whole state, so a view can be shared) or, with an
upload, by POST. Every value is read here as text and converted with a message that names the
field; the ranges are checked by the worker, one rule for the forms and the JSON API alike.
Text longer than MAX_TEXT is refused with a message when it is read, never cut silently.
A checkbox is sent as a hidden `name=false` followed by the box's `name=true`, so the last
value wins and an unchecked box is told apart from a field that was not sent at all.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Protocol

from app.worker.errors import InvalidInput
from app.worker.numbers import normalize, parse_float, parse_int

MAX_TEXT = 4000
# What is kept of an over-long value to show it again in the form (the message says it is long).
_SHOWN = 4 * MAX_TEXT
# Read after NFKC (app.worker.numbers): ASCII digits only, so `²` and `١` mean what they show.
_PAIR = re.compile(r"^\s*([+-]?[0-9]+)\s*(?:[x×,\s]\s*([+-]?[0-9]+))?\s*$", re.ASCII)
_WHOLE = re.compile(r"[+-]?[0-9]+", re.ASCII)
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?", re.ASCII)


class MultiValues(Protocol):
    # A query string gives str values; a multipart form may also hold files (skipped here).
    def getlist(self, key: Any) -> list[Any]: ...


class FormValues:
    """Typed access to a query string or form body; `values` keeps what was typed, for the form."""

    def __init__(self, source: MultiValues, defaults: Mapping[str, str]) -> None:
        self._source = source
        self.values: dict[str, str] = dict(defaults)
        self.submitted = False
        self._lengths: dict[str, int] = {}
        for name in defaults:
            given = [value for value in source.getlist(name) if isinstance(value, str)]
            if given:
                self._lengths[name] = len(given[-1])
                self.values[name] = given[-1][:_SHOWN]
                self.submitted = True

    def text(self, name: str) -> str:
        """The value as typed. Raises InvalidInput when it is longer than MAX_TEXT."""
        length = self._lengths.get(name, 0)
        if length > MAX_TEXT:
            raise InvalidInput(
                name,
                f"is {length:,} characters long; the limit is {MAX_TEXT:,}. "
                "Nothing was cut: shorten it and try again",
            )
        return self.values[name]

    def integer(self, name: str) -> int:
        raw = self.text(name)
        if not _WHOLE.fullmatch(normalize(raw)):
            raise InvalidInput(name, _not_a_number(raw.strip(), "a whole number, e.g. 3"))
        return parse_int(raw, field=name)

    def number(self, name: str) -> float:
        raw = self.text(name)
        if not _DECIMAL.fullmatch(normalize(raw)):
            raise InvalidInput(name, _not_a_number(raw.strip(), "a number, e.g. 0.5"))
        return parse_float(raw, field=name)

    def flag(self, name: str) -> bool:
        raw = self.text(name).strip().lower()
        if raw in ("true", "on", "1", "yes"):
            return True
        if raw in ("false", "off", "0", "no", ""):
            return False
        raise InvalidInput(name, f"must be true or false (got {raw!r})")

    def pair(self, name: str) -> int | tuple[int, int]:
        """`3`, or `3x5` / `3,5` / `3 5` for (rows, columns)."""
        raw = self.text(name)
        match = _PAIR.match(normalize(raw))
        if not match:
            raise InvalidInput(name, _not_a_number(raw.strip(), "a whole number, or two like 3x5"))
        first, second = match.groups()
        if second is None:
            return parse_int(first, field=name)
        return parse_int(first, field=name), parse_int(second, field=name)

    def padding(self, name: str) -> int | tuple[int, int] | str:
        raw = self.text(name).strip().lower()
        if raw in ("same", "valid"):
            return raw
        return self.pair(name)

    def choice(self, name: str, options: tuple[str, ...] | list[str]) -> str:
        raw = self.text(name).strip()
        if raw not in options:
            raise InvalidInput(name, f"must be one of {', '.join(options)} (got {raw!r})")
        return raw


def _not_a_number(raw: str, wanted: str) -> str:
    """What to say about a field that should hold a number. A browser sends a number field
    holding letters as empty, so an empty field is named as such, not quoted as ''."""
    if not raw:
        return f"is empty or not a number; enter {wanted}"
    return f"enter {wanted}, not {raw[:40]!r}"
