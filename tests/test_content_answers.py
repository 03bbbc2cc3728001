"""The shape of every answer: the answer given aloud first, sources listed once, quiz keys that
agree with the answer, and the figures the corrected answers quote, recomputed with torch."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest
import torchvision

from app.content import ContentError, QuestionBank, load_questions
from app.content.loader import ALOUD_FIELD, ALOUD_HEADING, ALOUD_MAX_WORDS
from app.content.schema import ChoiceItem, NumericItem, QuizItem


def test_every_answer_opens_with_the_answer_given_aloud(bank: QuestionBank) -> None:
    for question in bank:
        assert question.aloud_text.startswith(ALOUD_HEADING), question.slug
        words = len(question.aloud_text.split()) - len(ALOUD_HEADING.split())
        assert 60 <= words <= ALOUD_MAX_WORDS, (question.slug, words)
        # The depth holds everything else, the follow-ups and the sources included.
        assert 'id="common-follow-ups"' in question.depth_html, question.slug
        assert 'id="go-deeper"' in question.depth_html, question.slug
        assert ALOUD_HEADING not in question.depth_html, question.slug


def _body(path: Path) -> str:
    return path.read_text().split("\n---\n", 1)[1]


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ("rename", f"the first section must be '## {ALOUD_HEADING}'"),
        ("lengthen", f"the answer given aloud holds at most {ALOUD_MAX_WORDS}"),
        ("shorten", "needs at least 60"),
        ("prose-before", f"must open with the section '## {ALOUD_HEADING}'"),
    ],
)
def test_a_missing_or_overlong_answer_aloud_names_file_and_field(
    questions_copy: Path, change: str, reason: str
) -> None:
    target = sorted(questions_copy.glob("05-*.md"))[0]
    text = target.read_text()
    heading = f"## {ALOUD_HEADING}\n"
    if change == "rename":
        text = text.replace(heading, "## In short\n", 1)
    elif change == "lengthen":
        text = text.replace(heading, heading + "\n" + "word " * ALOUD_MAX_WORDS + "\n", 1)
    elif change == "shorten":
        start = text.index(heading) + len(heading)
        end = text.index("\n## ", start)
        text = text[:start] + "\nToo short to say aloud.\n" + text[end:]
    else:
        text = text.replace(heading, "An opening line outside any section.\n\n" + heading, 1)
    target.write_text(text)
    with pytest.raises(ContentError) as caught:
        load_questions(questions_copy)
    messages = [str(problem) for problem in caught.value.problems]
    assert any(m.startswith(f"{target.name}: {ALOUD_FIELD}: ") and reason in m for m in messages), (
        messages
    )


def test_every_source_is_listed_once(bank: QuestionBank) -> None:
    for question in bank:
        sources = _body(question.path).split("\n## Go deeper\n", 1)[1]
        entries = [line for line in sources.splitlines() if line.startswith("- ")]
        assert len(entries) >= 5, question.slug
        titles = [re.sub(r"\W+", " ", e.split("*")[1]).lower() for e in entries if "*" in e]
        repeated = sorted({t for t in titles if titles.count(t) > 1})
        assert not repeated, (question.slug, repeated)


# --- quiz keys against the answers ------------------------------------------------------------

# Each item's key claim, in words that must appear both in its explanation and in its answer:
# when an answer is corrected, the quiz item that tests it cannot keep the old claim.
KEY_CLAIMS = {
    "bn-why-it-works": ["larger learning rates", "santurkar"],
    "loop-zero-grad-placement": ["skip", "momentum and weight decay"],
    "resnet-zero-gamma": ["does not depend on them", "zero_init_residual"],
    "resnet-degradation": ["training error", "batchnorm"],
    "transfer-frozen-bn-still-changes": ["running", "in eval mode"],
    "transfer-lp-ft": ["trained head", "out of distribution"],
    "depthwise-speed-recall": ["memory-bound", "efficientnetv2"],
}


def _explanation(item: QuizItem) -> str:
    if isinstance(item, ChoiceItem):
        text = " ".join([item.prompt, *(f"{c.text} {c.why}" for c in item.choices)])
    elif isinstance(item, NumericItem):
        text = f"{item.prompt} {item.why or ''}"
    else:
        text = f"{item.prompt} {item.answer}"
    return _plain(text)


def _plain(text: str) -> str:
    return " ".join(re.sub(r"[`*]", "", text).lower().split())


@pytest.mark.parametrize("item_id", sorted(KEY_CLAIMS))
def test_quiz_key_claim_appears_in_its_answer(bank: QuestionBank, item_id: str) -> None:
    found = bank.item(item_id)
    assert found is not None, item_id
    question, item = found
    explanation, answer = _explanation(item), _plain(question.answer_text)
    for phrase in KEY_CLAIMS[item_id]:
        assert phrase in explanation, (item_id, phrase, "not in the quiz explanation")
        assert phrase in answer, (item_id, phrase, f"not in the answer of {question.slug}")


# --- figures the corrected answers quote, recomputed ------------------------------------------


def _run_block(bank: QuestionBank, slug: str, marker: str) -> str:
    question = bank.get(slug)
    assert question is not None
    [block] = [b for b in question.code if b.runnable and marker in b.source]
    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        exec(compile(block.source, f"<{slug}:{block.line}>", "exec"), {"__name__": "__block__"})
    return output.getvalue()


@pytest.mark.slow
def test_q2_aliasing_figures_match_the_code(bank: QuestionBank) -> None:
    printed = _run_block(bank, "pooling", "relative change")
    change = dict(
        re.findall(r"^(max pool|avg pool|blur pool)\s+relative change ([\d.]+)", printed, re.M)
    )
    assert set(change) == {"max pool", "avg pool", "blur pool"}, printed
    row = next(
        line
        for line in _body(bank.get("pooling").path).splitlines()
        if "frequency behavior" in line
    )
    assert f"({change['avg pool']} vs {change['max pool']})" in row
    # A box filter does not alias less than max pooling here; a real blur does.
    assert float(change["avg pool"]) >= float(change["max pool"]) > float(change["blur pool"])


@pytest.mark.slow
def test_q3_gradient_claims_hold_for_each_init(bank: QuestionBank) -> None:
    printed = _run_block(bank, "residual-connections", "first_layer_grad")
    pattern = (
        r"^(default|He)\s+BN=(True|False)\s+(\d+) conv layers: plain\s+(\S+)\s+residual\s+(\S+)"
    )
    grads = {
        (init, bn == "True", int(layers)): (float(plain), float(res))
        for init, bn, layers, plain, res in re.findall(pattern, printed, re.M)
    }
    assert len(grads) == 12, printed
    # Default init, no BN: the plain gradient vanishes, the residual one stays near 0.1.
    assert grads["default", False, 16][0] < 1e-6 and grads["default", False, 64][0] == 0.0
    assert all(0.05 < grads["default", False, n][1] < 0.5 for n in (4, 16, 64))
    # He init, no BN: 16 plain layers do not vanish; the residual stack explodes with depth.
    assert 1e-2 < grads["He", False, 16][0] < 0.2
    assert grads["He", False, 64][1] > 1e3
    # With BN: deep plain stacks explode at the first layer whatever the init; residual ones do not.
    for init in ("default", "He"):
        assert grads[init, True, 64][0] > 1e3 and grads[init, True, 64][1] < 100


def test_q4_quotes_efficientnet_b0_provenance_from_torchvision(bank: QuestionBank) -> None:
    weights = torchvision.models.EfficientNet_B0_Weights.IMAGENET1K_V1
    question = bank.get("architecture-evolution")
    assert question is not None
    text = " ".join(question.path.read_text().split())
    assert weights.meta["_docs"].strip() in text
    assert Path(weights.url).name.startswith("efficientnet_b0_rwightman")
    assert "efficientnet_b0_rwightman" in text
