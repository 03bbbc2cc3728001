"""Markdown → HTML for questions: tables, heading anchors, Pygments, formula blocks."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from html import escape

from markdown_it import MarkdownIt
from markdown_it.token import Token
from markdown_it.utils import EnvType, OptionsDict
from mdit_py_plugins.anchors import anchors_plugin
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import get_lexer_by_name
from pygments.util import ClassNotFound

_FORMATTER = HtmlFormatter(nowrap=True)


@dataclass(frozen=True)
class CodeBlock:
    """A fenced block as written: its language, the words after it, its source and line."""

    lang: str
    flags: tuple[str, ...]
    source: str
    line: int

    @property
    def runnable(self) -> bool:
        return self.lang == "python" and "fragment" not in self.flags


def _fence(
    renderer: object, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType
) -> str:
    token = tokens[idx]
    lang, *flags = token.info.split() or [""]
    code = token.content
    if lang == "formula":
        # Formulas are written in Unicode so they read the same with or without JavaScript.
        # Focusable, so a keyboard can scroll a long formula on a narrow screen.
        return f'<div class="formula" role="math" tabindex="0"><code>{escape(code.rstrip())}</code></div>\n'
    try:
        lexer = get_lexer_by_name(lang) if lang else None
    except ClassNotFound:
        lexer = None
    body = highlight(code, lexer, _FORMATTER) if lexer else escape(code)
    label = " ".join([lang, *flags]).strip()
    data = f' data-lang="{escape(label)}"' if label else ""
    return f'<pre class="code highlight"{data}><code>{body}</code></pre>\n'


def _table_open(
    renderer: object, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType
) -> str:
    # A focusable, labelled region lets keyboard users scroll wide tables on a phone; landmarks
    # on one page need distinct names, so the label is numbered (and prefixed per document).
    env["tables"] = env.get("tables", 0) + 1
    label = f"{env.get('table_prefix', 'Table')} {env['tables']}"
    return (
        f'<div class="table-wrap" role="region" tabindex="0" aria-label="{escape(label)}"><table>\n'
    )


def _table_close(
    renderer: object, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType
) -> str:
    return "</table></div>\n"


def build_markdown() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "typographer": False}).enable("table")
    md.use(anchors_plugin, min_level=2, max_level=4, permalink=True, permalinkSymbol="#")
    md.add_render_rule("fence", _fence)
    md.add_render_rule("table_open", _table_open)
    md.add_render_rule("table_close", _table_close)
    return md


class Renderer:
    """Renders Markdown with headings shifted down `shift` levels (the page owns the h1/h2)."""

    def __init__(self) -> None:
        self._md = build_markdown()

    def parse(self, text: str) -> list[Token]:
        return self._md.parse(text)

    def render(self, text: str, *, shift: int = 0, table_prefix: str = "Table") -> str:
        tokens = self.parse(text)
        if shift:
            for token in tokens:
                if token.type in ("heading_open", "heading_close"):
                    token.tag = f"h{min(int(token.tag[1]) + shift, 6)}"
        return self._md.renderer.render(tokens, self._md.options, {"table_prefix": table_prefix})


@lru_cache(maxsize=1024)
def render_markdown(text: str) -> str:
    """Render a short Markdown text (a quiz prompt or explanation); cached, as items repeat."""
    return _shared_renderer().render(text)


@lru_cache(maxsize=1)
def _shared_renderer() -> Renderer:
    return Renderer()


def code_blocks(tokens: Sequence[Token]) -> list[CodeBlock]:
    blocks = []
    for token in tokens:
        if token.type == "fence":
            lang, *flags = token.info.split() or [""]
            line = (token.map[0] + 1) if token.map else 0
            blocks.append(CodeBlock(lang, tuple(flags), token.content, line))
    return blocks


def markdown_tables(markdown: str) -> list[list[list[str]]]:
    """Every table of a Markdown document as rows of cell texts, the header row first."""
    tables: list[list[list[str]]] = []
    row: list[str] = []
    in_cell = False
    for token in _shared_renderer().parse(markdown):
        if token.type == "table_open":
            tables.append([])
        elif token.type == "tr_open":
            row = []
        elif token.type in ("th_open", "td_open"):
            in_cell = True
        elif token.type in ("th_close", "td_close"):
            in_cell = False
        elif token.type == "inline" and in_cell:
            row.append(token.content.strip())
        elif token.type == "tr_close" and tables:
            tables[-1].append(row)
    return tables


def plain_text(tokens: Sequence[Token]) -> str:
    """The words of a document (prose, table cells, code), for search."""
    parts = []
    for token in tokens:
        if token.type == "inline" or token.type in ("fence", "code_block"):
            parts.append(token.content)
    return " ".join(" ".join(parts).split())


def prose_text(tokens: Sequence[Token]) -> str:
    """The text a reader sees (prose, table cells, code) without Markdown syntax: for search
    snippets. Whitespace is collapsed to single spaces."""
    parts = []
    for token in tokens:
        if token.type == "inline":
            for child in token.children or []:
                if child.type in ("text", "code_inline"):
                    parts.append(child.content)
                elif child.type in ("softbreak", "hardbreak"):
                    parts.append(" ")
            parts.append(" ")
        elif token.type in ("fence", "code_block"):
            parts.append(f" {token.content} ")
    return " ".join("".join(parts).split())


def pygments_css() -> str:
    # WCAG-AA styles from accessible-pygments, so highlighted code passes the contrast check.
    light = HtmlFormatter(style="a11y-light").get_style_defs(".highlight")
    dark = HtmlFormatter(style="a11y-dark").get_style_defs(".highlight")
    return f"{light}\n@media (prefers-color-scheme: dark) {{\n{dark}\n}}\n"
