"""The one error a demo raises for bad input: a ValueError that names the offending field."""

from __future__ import annotations


class InvalidInput(ValueError):
    """Bad input for a demo. `str()` reads "field: message", the form both the API and forms show.

    The web layer turns it into a 422: `{"detail": "field: message"}` in the JSON API, an inline
    message beside the field in a form.
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message
