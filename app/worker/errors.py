"""The one error a demo raises for bad input: a ValueError that names the offending field."""

from __future__ import annotations

import re
from collections.abc import Mapping


class InvalidInput(ValueError):
    """Bad input for a demo. `str()` reads "field: message", the form both the API and forms show.

    The web layer turns it into a 422: `{"detail": "field: message"}` in the JSON API, an inline
    message beside the field in a form, where the field's name is replaced by its label.
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def relabel(message: str, names: Mapping[str, str]) -> str:
    """`message` with each snake_case field name of `names` (a whole word, e.g. `in_channels`)
    replaced by what the person reading it calls that field, e.g. "channels". One-word names
    (`stride`, `groups`) are left alone: in a message they are plain English already."""
    wanted = sorted((name for name in names if "_" in name), key=len, reverse=True)
    if not wanted:
        return message
    pattern = re.compile(r"\b(" + "|".join(map(re.escape, wanted)) + r")\b")
    return pattern.sub(lambda match: names[match.group(1)], message)
