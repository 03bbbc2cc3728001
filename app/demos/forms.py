"""Demo form values: raw strings in, typed values out, errors naming the field.

Forms submit by GET (the URL then holds the whole state, so a view can be shared) or, with an
upload, by POST. Every value is read here as text and converted with a message that names the
field; the ranges are checked by the worker, one rule for the forms and the JSON API alike.
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
# Read after NFKC (app.worker.numbers): ASCII digits only, so `²` and `١` mean what they show.
_PAIR = re.compile(r"^\s*([+-]?[0-9]+)\s*(?:[x×,\s]\s*([+-]?[0-9]+))?\s*$", re.ASCII)


class MultiValues(Protocol):
    # A query string gives str values; a multipart form may also hold files (skipped here).
    def getlist(self, key: Any) -> list[Any]: ...


class FormValues:
    """Typed access to a query string or form body; `values` keeps what was typed, for the form."""

    def __init__(self, source: MultiValues, defaults: Mapping[str, str]) -> None:
        self._source = source
        self.values: dict[str, str] = dict(defaults)
        self.submitted = False
        for name in defaults:
            given = [value for value in source.getlist(name) if isinstance(value, str)]
            if given:
                self.values[name] = given[-1][:MAX_TEXT]
                self.submitted = True

    def text(self, name: str) -> str:
        return self.values[name]

    def integer(self, name: str) -> int:
        return parse_int(self.values[name], field=name)

    def number(self, name: str) -> float:
        return parse_float(self.values[name], field=name)

    def flag(self, name: str) -> bool:
        raw = self.values[name].strip().lower()
        if raw in ("true", "on", "1", "yes"):
            return True
        if raw in ("false", "off", "0", "no", ""):
            return False
        raise InvalidInput(name, f"must be true or false (got {raw!r})")

    def pair(self, name: str) -> int | tuple[int, int]:
        """`3`, or `3x5` / `3,5` / `3 5` for (rows, columns)."""
        raw = self.values[name]
        match = _PAIR.match(normalize(raw))
        if not match:
            raise InvalidInput(name, f"must be a whole number or two like 3x5 (got {raw[:40]!r})")
        first, second = match.groups()
        if second is None:
            return parse_int(first, field=name)
        return parse_int(first, field=name), parse_int(second, field=name)

    def padding(self, name: str) -> int | tuple[int, int] | str:
        raw = self.values[name].strip().lower()
        if raw in ("same", "valid"):
            return raw
        return self.pair(name)

    def choice(self, name: str, options: tuple[str, ...] | list[str]) -> str:
        raw = self.values[name].strip()
        if raw not in options:
            raise InvalidInput(name, f"must be one of {', '.join(options)} (got {raw!r})")
        return raw
