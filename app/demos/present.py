"""Presentation helpers shared by the demo views: highlighted code, where a result sits."""

from __future__ import annotations

from markupsafe import Markup
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import PythonLexer
from starlette.requests import Request

_FORMATTER = HtmlFormatter(nowrap=True)
_LEXER = PythonLexer()


def code_html(source: str) -> Markup:
    """A Python snippet as the answers show code: highlighted, with a copy button from app.js."""
    body = highlight(source, _LEXER, _FORMATTER)
    return Markup(f'<pre class="code highlight" data-lang="python"><code>{body}</code></pre>')


def placement(request: Request) -> dict[str, object]:
    """Heading level and id prefix for a result: inside a question (an htmx request aimed at a
    `q-…` element) the result sits under that page's h2 and h3, and its ids must not clash."""
    inline = request.headers.get("HX-Target", "").startswith("q-")
    return {"h": 4 if inline else 2, "prefix": "q-" if inline else ""}
