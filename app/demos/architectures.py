"""The architecture-facts table: torchvision's numbers beside the papers' figures from Q4.

The papers' figures live in one place, the table in `questions/04-architecture-evolution.md`
(columns: model | year | builder | weights | params (M) | top-1 % (torchvision) |
top-1 % (paper) | key idea). It is read at start-up; the torchvision side is computed by the
worker. Without that question (or its table) the classic builders are listed on their own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from markdown_it import MarkdownIt

from app.content import QuestionBank
from app.content.render import markdown_tables
from app.worker.architectures import CLASSIC_BUILDERS, ArchitectureFacts, architecture_facts
from app.worker.errors import InvalidInput

QUESTION_SLUG = "architecture-evolution"
HEADER = (
    "model",
    "year",
    "builder",
    "weights",
    "params (m)",
    "top-1 % (torchvision)",
    "top-1 % (paper)",
    "key idea",
)
_NAME = re.compile(r"^`?([A-Za-z0-9_]+)`?$")
_NUMBER = re.compile(r"^~?\s*(\d+(?:\.\d+)?)")
_inline = MarkdownIt("commonmark", {"html": False})


@dataclass(frozen=True)
class PaperRow:
    model: str
    year: str
    builder: str
    weights: str | None
    paper_top1: str  # as the answer writes it, e.g. "76.0" or "—"
    key_idea_html: str


@dataclass(frozen=True)
class ArchitectureRow:
    model: str
    year: str
    facts: ArchitectureFacts | None  # None: the builder is not one torchvision knows
    paper_top1: str
    key_idea_html: str

    @property
    def paper_top1_value(self) -> float | None:
        match = _NUMBER.match(self.paper_top1.strip())
        return float(match.group(1)) if match else None

    @property
    def top1_gap(self) -> float | None:
        """torchvision's top-1 minus the paper's, in points (None if either is missing)."""
        paper = self.paper_top1_value
        return None if paper is None or self.facts is None else self.facts.top1 - paper


def paper_rows(bank: QuestionBank) -> list[PaperRow]:
    """Rows of Q4's architecture table; empty when the question or the table is missing."""
    question = bank.get(QUESTION_SLUG)
    if question is None:
        return []
    for table in markdown_tables(question.answer_markdown):
        if not table or tuple(cell.lower() for cell in table[0]) != HEADER:
            continue
        rows = []
        for cells in table[1:]:
            if len(cells) != len(HEADER):
                continue
            cell = dict(zip(HEADER, cells, strict=True))
            builder = _NAME.match(cell["builder"])
            weights = _NAME.match(cell["weights"])
            if builder is None:
                continue
            rows.append(
                PaperRow(
                    model=cell["model"],
                    year=cell["year"],
                    builder=builder.group(1),
                    weights=weights.group(1) if weights else None,
                    paper_top1=cell["top-1 % (paper)"],
                    key_idea_html=_inline.renderInline(cell["key idea"]),
                )
            )
        return rows
    return []


def _facts(builder: str, weights: str | None) -> ArchitectureFacts | None:
    try:
        return architecture_facts(builder, weights)
    except InvalidInput:
        return None


def architecture_rows(bank: QuestionBank) -> list[ArchitectureRow]:
    """The table: Q4's rows with torchvision's facts, or the classic builders alone."""
    papers = paper_rows(bank)
    if not papers:
        return [
            ArchitectureRow(builder, "", architecture_facts(builder), "", "")
            for builder in CLASSIC_BUILDERS
        ]
    return [
        ArchitectureRow(
            row.model, row.year, _facts(row.builder, row.weights), row.paper_top1, row.key_idea_html
        )
        for row in papers
    ]
