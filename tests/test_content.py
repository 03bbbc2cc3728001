"""The question files: schema, structure, and every way a broken file is reported."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from app.content import ContentError, QuestionBank, load_questions
from app.content.schema import ChoiceItem, NumericItem, RecallItem
from app.main import create_app
from app.settings import ROOT, Settings


def test_twelve_questions_numbered_in_order(bank: QuestionBank) -> None:
    assert [q.number for q in bank] == list(range(1, 13))
    for question in bank:
        assert question.path.name == f"{question.number:02d}-{question.slug}.md"


def test_every_question_has_four_quiz_items_of_three_kinds(bank: QuestionBank) -> None:
    for question in bank:
        kinds = {type(item) for item in question.meta.quiz}
        assert len(question.meta.quiz) >= 4, question.slug
        assert {ChoiceItem, NumericItem, RecallItem} <= kinds, question.slug


def test_every_answer_ends_with_follow_ups_and_sources(bank: QuestionBank) -> None:
    for question in bank:
        headings = re.findall(r'<h3 id="([^"]+)"', question.answer_html)
        assert headings[-2:] == ["common-follow-ups", "go-deeper"], question.slug


def test_answers_are_substantial(bank: QuestionBank) -> None:
    for question in bank:
        assert len(question.search_text.split()) > 600, question.slug


def test_the_demos_named_by_the_product_are_attached(bank: QuestionBank) -> None:
    demos = {q.number: set(q.meta.demos) for q in bank}
    assert "shape-calculator" in demos[1] & demos[8] & demos[10]
    assert "pooling-visualizer" in demos[2]
    assert "architecture-facts" in demos[4]
    assert "augmentation-gallery" in demos[7]


def _replace(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path.name}"
    path.write_text(text.replace(old, new, 1))


def _first(directory: Path) -> Path:
    return sorted(directory.glob("01-*.md"))[0]


@pytest.mark.parametrize(
    ("old", "new", "field", "reason"),
    [
        ("difficulty: foundational", "difficulty: trivial", "difficulty", "Input should be"),
        ("number: 1\n", "number: 2\n", "number", "does not match the file name"),
        ("slug: convolutional-layers", "slug: conv", "slug", "does not match the file name"),
        ("tags: [", "tags: [architecture, ", "tags.0", "Input should be 'architectures'"),
        ("demos: [shape-calculator]", "demos: [teleporter]", "demos.0", "Input should be"),
        ("kind: choice", "kind: essay", "quiz.", "does not match any of the expected tags"),
        ("## Go deeper", "## Further reading", "body", "must end with the sections"),
        ("title:", "titel:", "title", "Field required"),
    ],
)
def test_broken_file_is_reported_with_file_field_and_reason(
    questions_copy: Path, old: str, new: str, field: str, reason: str
) -> None:
    target = _first(questions_copy)
    _replace(target, old, new)
    with pytest.raises(ContentError) as caught:
        load_questions(questions_copy)
    messages = [str(problem) for problem in caught.value.problems]
    assert any(m.startswith(f"{target.name}: {field}") and reason in m for m in messages), messages


def test_invalid_yaml_is_reported(questions_copy: Path) -> None:
    target = _first(questions_copy)
    _replace(target, "title:", "title: [unclosed\nx:")
    with pytest.raises(ContentError, match=rf"{target.name}: front matter: "):
        load_questions(questions_copy)


def test_two_correct_choices_are_rejected(questions_copy: Path) -> None:
    target = _first(questions_copy)
    text = target.read_text()
    # Mark every choice of the file correct: the first choice item then has several.
    target.write_text(re.sub(r"(\n\s+- text: [^\n]+)", r"\1\n        correct: true", text))
    with pytest.raises(ContentError, match="exactly one choice must have correct: true"):
        load_questions(questions_copy)


def test_duplicate_quiz_ids_across_files_are_rejected(
    questions_copy: Path, bank: QuestionBank
) -> None:
    first_id = bank.questions[0].meta.quiz[0].id
    second = sorted(questions_copy.glob("02-*.md"))[0]
    second_id = bank.questions[1].meta.quiz[0].id
    _replace(second, f"id: {second_id}", f"id: {first_id}")
    with pytest.raises(
        ContentError, match=rf"{second.name}: quiz\.0\.id: '{first_id}' is already used"
    ):
        load_questions(questions_copy)


def test_python_block_that_does_not_compile_is_rejected(questions_copy: Path) -> None:
    target = _first(questions_copy)
    _replace(target, "```python\n", "```python\ndef broken(:\n")
    with pytest.raises(ContentError, match=rf"{target.name}: body: python block at body line \d+"):
        load_questions(questions_copy)


def test_missing_file_in_the_sequence_is_rejected(questions_copy: Path) -> None:
    sorted(questions_copy.glob("05-*.md"))[0].unlink()
    with pytest.raises(ContentError, match=r"numbered 1\.\.N"):
        load_questions(questions_copy)


def test_app_refuses_to_start_with_a_broken_file(questions_copy: Path, tmp_path: Path) -> None:
    _replace(_first(questions_copy), "difficulty: foundational", "difficulty: trivial")
    settings = Settings(DATA_DIR=tmp_path, QUESTIONS_DIR=questions_copy, SECRET_KEY="x")
    with pytest.raises(ContentError, match="difficulty"):
        create_app(settings)


def _cvprep(*args: str, questions: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {"QUESTIONS_DIR": str(questions), "DATA_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_check_content_passes_on_the_real_files(tmp_path: Path) -> None:
    result = _cvprep("check-content", questions=ROOT / "questions", tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "12 questions" in result.stdout


def test_check_content_and_serve_fail_naming_the_file(questions_copy: Path, tmp_path: Path) -> None:
    target = _first(questions_copy)
    _replace(target, "difficulty: foundational", "difficulty: trivial")
    for command in (["check-content"], ["serve", "--port", "1"]):
        result = _cvprep(*command, questions=questions_copy, tmp_path=tmp_path)
        assert result.returncode == 1
        assert f"{target.name}: difficulty:" in result.stderr
