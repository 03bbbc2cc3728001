"""The one error for bad input, anywhere: a ValueError that names the offending field.

Worker, web and API raise the same `InvalidInput` for "this field is wrong: why": a demo's
form, a run's config (`RunConfig.from_dict`), a training data set, an uploaded zip, a quiz
answer, an import file, a query string. The web layer turns it into the HTTP status it carries
(422 unless it says otherwise) with `{"detail": "field: message"}` in the JSON API, and an
inline message beside the field in a form, where the field's name is replaced by its label
(`app.messages.on_screen`); the CLI prints `str(error)`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence


class InvalidInput(ValueError):
    """Bad input. `str()` reads "field: message", the form both the API and forms show.

    `field` names the field (a config key, a form control, "file" for an upload as a whole);
    `message` says what is wrong and what would be accepted. `status` is the HTTP status the
    web answers with: 422 (unusable, the default), 413 (over a size cap), 415 (not the
    expected media type), 507 (the server's disk is full). `details` lists, for an input of
    many parts (an import file), one "where: what" line per problem found.
    """

    def __init__(
        self, field: str, message: str, status: int = 422, details: Sequence[str] = ()
    ) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message
        self.status = status
        self.details = tuple(details)


def relabel(message: str, names: Mapping[str, str]) -> str:
    """`message` with each snake_case field name of `names` (a whole word, e.g. `in_channels`)
    replaced by what the person reading it calls that field, e.g. "channels". One-word names
    (`stride`, `groups`) are left alone: in a message they are plain English already."""
    wanted = sorted((name for name in names if "_" in name), key=len, reverse=True)
    if not wanted:
        return message
    pattern = re.compile(r"\b(" + "|".join(map(re.escape, wanted)) + r")\b")
    return pattern.sub(lambda match: names[match.group(1)], message)
