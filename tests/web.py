"""Reading the app's pages in tests: the parsed page of a response or of HTML text."""

from __future__ import annotations

from bs4 import BeautifulSoup
from httpx import Response


def soup(page: Response | str) -> BeautifulSoup:
    """The HTML of `page` (a response, or its text) parsed with the standard-library parser."""
    return BeautifulSoup(page if isinstance(page, str) else page.text, "html.parser")
