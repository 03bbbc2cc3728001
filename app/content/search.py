"""Ranked search over the twelve questions: BM25 with field weights, and a snippet per hit.

BM25 is the Okapi ranking function as presented by S. Robertson and H. Zaragoza, "The
Probabilistic Relevance Framework: BM25 and Beyond", Foundations and Trends in Information
Retrieval 3(4), 2009. Each field (title, tags, prompt, answer) is scored by BM25 against its
own average length, and the field scores are added with weights (the "most fields"
combination search engines offer). Summing weighted term counts before the saturation (the
simple BM25F) lets a long answer that mentions a word forty times tie with a question whose
title is that word: both saturate. The inverse document frequency is the non-negative form
log(1 + (N − n + 0.5) / (n + 0.5)). The collection is a dozen documents,
indexed once at start-up: our own few lines serve it better than a search engine would.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from markupsafe import Markup, escape

if TYPE_CHECKING:
    from app.content.loader import Question

K1 = 1.2  # term-frequency saturation (Robertson & Zaragoza's usual range 1.2–2.0)
B = 0.75  # length normalisation
FIELD_WEIGHTS = {"title": 4.0, "tags": 3.0, "prompt": 2.0, "answer": 1.0}
SNIPPET_CHARS = 220
WORD = re.compile(r"[^\W_]+")


def words(text: str) -> list[str]:
    """Lower-case words (letters and digits) after Unicode NFKC: "ResNet-50" → resnet, 50."""
    return WORD.findall(unicodedata.normalize("NFKC", text).lower())


@dataclass(frozen=True)
class SearchHit:
    question: Question
    score: float
    snippet: Markup | None  # escaped text with the matched words in <mark>; None: no snippet


class SearchIndex:
    """BM25 over title, tags, prompt and answer text of each question, field by field."""

    FIELDS = tuple(FIELD_WEIGHTS)

    def __init__(self, questions: Sequence[Question]) -> None:
        self.questions = list(questions)
        # tf[document][field]: word counts; length[document][field]: words in that field.
        self.tf: list[dict[str, Counter[str]]] = []
        self.length: list[dict[str, int]] = []
        for question in self.questions:
            fields = {
                "title": question.title,
                "tags": " ".join(question.tags),
                "prompt": question.meta.prompt,
                "answer": question.answer_text,
            }
            counts = {name: Counter(words(text)) for name, text in fields.items()}
            self.tf.append(counts)
            self.length.append({name: sum(c.values()) for name, c in counts.items()})
        documents = max(len(self.length), 1)
        self.average_length = {
            name: sum(lengths[name] for lengths in self.length) / documents for name in self.FIELDS
        }
        self.vocabulary = sorted(
            {word for counts in self.tf for field in counts.values() for word in field}
        )

    def expand(self, word: str) -> list[str]:
        """The indexed words that begin with `word` (search as you type: "pool" → pooling)."""
        return [v for v in self.vocabulary if v.startswith(word)]

    def score(self, index: int, query: Sequence[str]) -> float | None:
        """BM25 of document `index` for the query words, or None if a word is missing.

        Each query word is one term whose frequency in a field is that of all the words it
        begins, and whose document frequency counts the documents holding any of them.
        """
        fields, total = self.tf[index], 0.0
        for word in query:
            terms = self.expand(word)
            n = sum(
                1
                for doc in self.tf
                if any(term in field for field in doc.values() for term in terms)
            )
            idf = math.log(1 + (len(self.tf) - n + 0.5) / (n + 0.5))
            found = 0.0
            for name in self.FIELDS:
                tf = sum(fields[name].get(term, 0) for term in terms)
                if tf:
                    ratio = self.length[index][name] / (self.average_length[name] or 1.0)
                    found += FIELD_WEIGHTS[name] * tf * (K1 + 1) / (tf + K1 * (1 - B + B * ratio))
            if not found:
                return None
            total += idf * found
        return total

    def search(self, text: str, *, within: Iterable[str] | None = None) -> list[SearchHit]:
        """Questions holding every word of `text`, best first (ties in syllabus order)."""
        query = list(dict.fromkeys(words(text)))
        allowed = set(within) if within is not None else None
        hits = []
        for index, question in enumerate(self.questions):
            if allowed is not None and question.slug not in allowed:
                continue
            value = self.score(index, query) if query else None
            if value is not None:
                hits.append(SearchHit(question, value, snippet(question, query)))
        hits.sort(key=lambda hit: -hit.score)
        return hits


def snippet(question: Question, query: Sequence[str], size: int = SNIPPET_CHARS) -> Markup:
    """The passage of about `size` characters of the answer (else the prompt) that holds the
    most query words, HTML-escaped, each matched word in `<mark>`."""
    for text in (question.answer_text, question.meta.prompt):
        spans = [
            (m.start(), m.end())
            for m in WORD.finditer(text)
            if any(unicodedata.normalize("NFKC", m.group()).lower().startswith(w) for w in query)
        ]
        if spans:
            break
    else:
        return _marked(question.meta.prompt[:size], [], cut_start=False, cut_end=True)
    best_start = _densest(text, spans, size)
    begin = max(0, best_start - size // 4)
    if begin:
        space = text.find(" ", begin)
        begin = space + 1 if 0 <= space < best_start else begin
    end = min(len(text), begin + size)
    if end < len(text):
        space = text.rfind(" ", begin, end)
        end = space if space > best_start else end
    shown = [(s - begin, e - begin) for s, e in spans if begin <= s and e <= end]
    return _marked(text[begin:end], shown, cut_start=begin > 0, cut_end=end < len(text))


def _densest(text: str, spans: list[tuple[int, int]], size: int) -> int:
    """Where a window of `size` characters holds the most distinct matched words (a sliding
    window over the matches: linear in their number)."""
    inside: Counter[str] = Counter()
    best_start, best, right = spans[0][0], 0, 0
    for left, (start, _) in enumerate(spans):
        while right < len(spans) and spans[right][1] <= start + size:
            inside[text[spans[right][0] : spans[right][1]].lower()] += 1
            right += 1
        if len(inside) > best:
            best_start, best = start, len(inside)
        word = text[start : spans[left][1]].lower()
        inside[word] -= 1
        if not inside[word]:
            del inside[word]
    return best_start


def _marked(text: str, spans: list[tuple[int, int]], *, cut_start: bool, cut_end: bool) -> Markup:
    parts: list[Markup | str] = ["… " if cut_start else ""]
    at = 0
    for start, end in spans:
        parts.append(escape(text[at:start]))
        parts.append(Markup("<mark>{}</mark>").format(text[start:end]))
        at = end
    parts.append(escape(text[at:]))
    parts.append(" …" if cut_end else "")
    return Markup("").join(parts)
