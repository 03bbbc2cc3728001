"""Presentation helpers shared by the demo views: highlighted code, error context."""

from __future__ import annotations

from html import escape

from markupsafe import Markup
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import PythonLexer

_FORMATTER = HtmlFormatter(nowrap=True)
_LEXER = PythonLexer()


def code_html(source: str) -> Markup:
    """A Python snippet as the answers show code: highlighted, with a copy button from app.js."""
    body = highlight(source, _LEXER, _FORMATTER)
    return Markup(f'<pre class="code highlight" data-lang="python"><code>{body}</code></pre>')


def plain_code_html(source: str) -> Markup:
    return Markup(f'<pre class="code"><code>{escape(source)}</code></pre>')
