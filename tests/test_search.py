"""Ranked search (BM25 over title, tags, prompt and answer) with an escaped snippet per hit,
and one tag vocabulary that the content schema checks."""

from __future__ import annotations

import math
import re
import unicodedata
from pathlib import Path

import pytest
from bs4 import BeautifulSoup
from fastapi.testclient import TestClient

from app.content import ContentError, QuestionBank, load_questions
from app.content.schema import TAGS
from app.content.search import FIELD_WEIGHTS, K1, B, words

HX = {"HX-Request": "true"}


def _bm25(bank: QuestionBank, query: list[str]) -> dict[str, float]:
    """BM25 as Robertson & Zaragoza (2009) give it, per field against the field's average
    length, the fields added with their weights; computed here from the questions' text, each
    query word standing for the indexed words it begins."""
    fields = {
        q.slug: {
            "title": q.title,
            "tags": " ".join(q.tags),
            "prompt": q.meta.prompt,
            "answer": q.answer_text,
        }
        for q in bank
    }
    tokens = {
        slug: {
            name: re.findall(r"[^\W_]+", unicodedata.normalize("NFKC", text).lower())
            for name, text in doc.items()
        }
        for slug, doc in fields.items()
    }
    average = {
        name: sum(len(doc[name]) for doc in tokens.values()) / len(tokens) for name in FIELD_WEIGHTS
    }
    scores = {}
    for slug, doc in tokens.items():
        total, matched = 0.0, True
        for word in query:
            n = sum(
                1 for d in tokens.values() if any(w.startswith(word) for f in d.values() for w in f)
            )
            idf = math.log(1 + (len(tokens) - n + 0.5) / (n + 0.5))
            found = 0.0
            for name, weight in FIELD_WEIGHTS.items():
                f = sum(1 for w in doc[name] if w.startswith(word))
                if f:
                    norm = K1 * (1 - B + B * len(doc[name]) / average[name])
                    found += weight * f * (K1 + 1) / (f + norm)
            if not found:
                matched = False
                break
            total += idf * found
        if matched:
            scores[slug] = total
    return scores


@pytest.mark.parametrize("query", ["resnet", "focal loss", "calibration", "batch norm", "pool"])
def test_hits_come_best_first_by_bm25(bank: QuestionBank, query: str) -> None:
    expected = _bm25(bank, words(query))
    hits = bank.search(query)
    assert {h.question.slug for h in hits} == set(expected)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    for hit in hits:
        assert hit.score == pytest.approx(expected[hit.question.slug])


def test_a_question_about_the_word_beats_one_that_mentions_it(bank: QuestionBank) -> None:
    assert bank.search("resnet")[0].question.slug == "residual-connections"
    assert bank.search("pooling")[0].question.slug == "pooling"
    assert bank.search("focal loss")[0].question.slug == "class-imbalance"


def test_every_hit_has_a_snippet_with_the_words_marked(client: TestClient) -> None:
    page = BeautifulSoup(
        client.get("/", params={"q": "focal loss"}, headers=HX).text, "html.parser"
    )
    cards = page.select("li.question-card")
    assert cards
    for card in cards:
        marks = [m.text.lower() for m in card.select(".snippet mark")]
        assert marks and all(m.startswith(("focal", "loss")) for m in marks)


def test_snippets_are_escaped(questions_copy: Path) -> None:
    target = sorted(questions_copy.glob("02-*.md"))[0]
    text = target.read_text()
    marker = "\nA zebrafish note: <script>alert(1)</script> & more.\n\n## Common follow-ups"
    target.write_text(text.replace("\n## Common follow-ups", marker, 1))
    hit = load_questions(questions_copy).search("zebrafish")[0]
    html = str(hit.snippet)
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; more" in html
    assert "<mark>zebrafish</mark>" in html


def test_without_a_query_every_question_in_syllabus_order(bank: QuestionBank) -> None:
    hits = bank.search("", "fundamentals")
    assert [h.question.number for h in hits] == [q.number for q in bank if "fundamentals" in q.tags]
    assert all(h.snippet is None for h in hits)


# --- tags ------------------------------------------------------------------------------------


def test_tags_come_from_one_vocabulary_and_every_tag_is_used(bank: QuestionBank) -> None:
    used = set(bank.tags)
    assert used <= set(TAGS)
    assert used == set(TAGS), f"unused tags in the vocabulary: {set(TAGS) - used}"
    # No two spellings of one topic: a plural of another tag, or a prefix of it.
    for tag in TAGS:
        for other in TAGS:
            if tag != other:
                assert other != f"{tag}s" and not other.startswith(f"{tag}-"), (tag, other)


def test_a_tag_outside_the_vocabulary_is_a_content_error(questions_copy: Path) -> None:
    target = sorted(questions_copy.glob("04-*.md"))[0]
    target.write_text(target.read_text().replace("tags: [architectures,", "tags: [architecture,"))
    with pytest.raises(ContentError) as caught:
        load_questions(questions_copy)
    assert any(
        str(p).startswith(f"{target.name}: tags.0") and "'architectures'" in str(p)
        for p in caught.value.problems
    )


def test_a_tag_given_twice_is_a_content_error(questions_copy: Path) -> None:
    target = sorted(questions_copy.glob("04-*.md"))[0]
    target.write_text(target.read_text().replace("tags: [architectures,", "tags: [history,"))
    with pytest.raises(ContentError, match="history repeated"):
        load_questions(questions_copy)
