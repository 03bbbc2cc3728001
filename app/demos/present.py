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


_SCALES = (
    (10**6, "million"),
    (10**9, "billion"),
    (10**12, "trillion"),
    (10**15, "quadrillion"),
    (10**18, "quintillion"),
)
_SUPERSCRIPT = str.maketrans("0123456789-", "⁰¹²³⁴⁵⁶⁷⁸⁹⁻")


def short_count(n: int) -> str:
    """A large count in words with three significant digits: 11.7 million, 4.09 billion,
    1.15 quintillion (2⁶⁰); from 10²¹ on in scientific notation, 1.21 × 10²⁴. Below a
    million, the number itself with thousands separators."""
    if abs(n) < 10**6:
        return f"{n:,}"
    for scale, word in _SCALES:
        value = float(f"{n / scale:.3g}")  # rounded first: 999.96 million is 1 billion
        if abs(value) < 1000:
            return f"{value:.3g} {word}"
    mantissa, exponent = f"{n:.2e}".split("e")
    return f"{mantissa} × 10{str(int(exponent)).translate(_SUPERSCRIPT)}"
