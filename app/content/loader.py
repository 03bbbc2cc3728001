"""Load `questions/NN-slug.md` files into a validated, pre-rendered QuestionBank."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from pydantic import ValidationError

from app.content.render import CodeBlock, Renderer, code_blocks, plain_text, prose_text
from app.content.schema import QuestionMeta, QuizItem
from app.content.search import SearchHit, SearchIndex

FILE_NAME = re.compile(r"^(?P<number>\d{2})-(?P<slug>[a-z0-9]+(?:-[a-z0-9]+)*)\.md$")
FRONT_MATTER = re.compile(r"\A---\n(?P<yaml>.*?)\n---\n(?P<body>.*)\Z", re.S)
REQUIRED_SECTIONS = ("Common follow-ups", "Go deeper")
# Every answer opens with what a candidate would say in the room (about two minutes spoken);
# the page shows it first on reveal and keeps the depth below it one click away.
ALOUD_HEADING = "The answer you would give aloud"
ALOUD_MAX_WORDS = 300
ALOUD_FIELD = f"body (## {ALOUD_HEADING})"


@dataclass(frozen=True)
class ContentProblem:
    file: str
    field: str
    reason: str

    def __str__(self) -> str:
        return f"{self.file}: {self.field}: {self.reason}"


class ContentError(Exception):
    """One or more question files are invalid; each problem names file, field and reason."""

    def __init__(self, problems: Sequence[ContentProblem]) -> None:
        self.problems = tuple(problems)
        lines = "\n".join(f"  - {problem}" for problem in self.problems)
        super().__init__(f"{len(self.problems)} problem(s) in the question files:\n{lines}")


@dataclass(frozen=True)
class Question:
    meta: QuestionMeta
    path: Path
    prompt_html: str
    answer_html: str
    answer_markdown: str
    search_text: str
    code: tuple[CodeBlock, ...]
    answer_text: str = ""  # the answer as plain text, for search ranking and snippets
    aloud_html: str = ""  # the first section: the answer given aloud, shown first on reveal
    depth_html: str = ""  # everything after it: depth, follow-ups, sources
    aloud_text: str = ""  # the first section as plain text (its words are counted)

    @property
    def number(self) -> int:
        return self.meta.number

    @property
    def slug(self) -> str:
        return self.meta.slug

    @property
    def title(self) -> str:
        return self.meta.title

    @property
    def tags(self) -> list[str]:
        return list(self.meta.tags)

    @property
    def difficulty(self) -> str:
        return self.meta.difficulty


@dataclass(frozen=True)
class QuestionBank:
    questions: tuple[Question, ...]
    _by_slug: dict[str, Question] = field(init=False, repr=False)
    _items: dict[str, tuple[Question, QuizItem]] = field(init=False, repr=False)
    _index: SearchIndex = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_slug", {q.slug: q for q in self.questions})
        items = {item.id: (q, item) for q in self.questions for item in q.meta.quiz}
        object.__setattr__(self, "_items", items)
        object.__setattr__(self, "_index", SearchIndex(self.questions))

    def __iter__(self):
        return iter(self.questions)

    def __len__(self) -> int:
        return len(self.questions)

    def get(self, slug: str) -> Question | None:
        return self._by_slug.get(slug)

    def item(self, item_id: str) -> tuple[Question, QuizItem] | None:
        return self._items.get(item_id)

    @property
    def tags(self) -> list[str]:
        return sorted({tag for q in self.questions for tag in q.tags})

    def neighbours(self, slug: str) -> tuple[Question | None, Question | None]:
        index = [q.slug for q in self.questions].index(slug)
        previous = self.questions[index - 1] if index > 0 else None
        following = self.questions[index + 1] if index + 1 < len(self.questions) else None
        return previous, following

    def search(self, text: str = "", tag: str = "") -> list[SearchHit]:
        """Questions with `tag` that hold every word of `text` (a word matches the words it
        begins: "pool" finds "pooling"), best first by BM25, each with a highlighted snippet.
        Without `text`, every question with `tag` in syllabus order."""
        tagged = [q for q in self.questions if not tag or tag in q.tags]
        return (
            self._index.search(text, within={q.slug for q in tagged})
            if text.strip()
            else [SearchHit(q, 0.0, None) for q in tagged]
        )


def _split(text: str) -> tuple[str, str]:
    match = FRONT_MATTER.match(text.replace("\r\n", "\n"))
    if not match:
        raise ValueError("the file must start with YAML front matter between two '---' lines")
    return match["yaml"], match["body"]


def _field_name(location: Iterable[int | str]) -> str:
    # Pydantic's discriminated unions add the tag ("choice") to the path; keep what an author wrote.
    parts = [str(part) for part in location if part not in ("choice", "numeric", "recall")]
    return ".".join(parts) or "(front matter)"


def _section_problems(body: str) -> list[str]:
    headings = re.findall(r"^##\s+(.+?)\s*$", body, re.M)
    if list(headings[-2:]) != list(REQUIRED_SECTIONS):
        wanted = " then ".join(f"'## {name}'" for name in REQUIRED_SECTIONS)
        return [f"the answer must end with the sections {wanted}"]
    return []


def split_aloud(body: str, renderer: Renderer) -> tuple[str, str]:
    """The body cut before its second `##` heading: (the answer aloud, the depth).

    Raises ValueError when the body does not open with `## The answer you would give aloud`
    (prose before it included) or has no `##` section after it."""
    headings = [
        token.map[0]
        for token in renderer.parse(body)
        if token.type == "heading_open" and token.tag == "h2" and token.map
    ]
    lines = body.split("\n")
    if not headings or "".join(lines[: headings[0]]).strip():
        raise ValueError(f"the answer must open with the section '## {ALOUD_HEADING}'")
    title = lines[headings[0]].lstrip("#").strip()
    if title != ALOUD_HEADING:
        raise ValueError(f"the first section must be '## {ALOUD_HEADING}', found '## {title}'")
    if len(headings) < 2:
        raise ValueError("the depth sections must follow the answer given aloud")
    cut = headings[1]
    return "\n".join(lines[:cut]), "\n".join(lines[cut:])


def _aloud_problems(aloud: str, renderer: Renderer) -> list[str]:
    words = len(prose_text(renderer.parse(aloud)).split()) - len(ALOUD_HEADING.split())
    if words > ALOUD_MAX_WORDS:
        return [f"{words} words; the answer given aloud holds at most {ALOUD_MAX_WORDS}"]
    if words < 60:
        return [f"{words} words; the answer given aloud needs at least 60"]
    return []


def _code_problems(blocks: Sequence[CodeBlock]) -> list[str]:
    problems = []
    for block in blocks:
        if block.lang != "python":
            continue
        try:
            compile(block.source, f"<python block at line {block.line}>", "exec")
        except SyntaxError as error:
            problems.append(f"python block at body line {block.line} does not compile: {error.msg}")
    return problems


def load_question(path: Path, renderer: Renderer) -> Question:
    """Parse and validate one file; raises ContentError naming the file and field."""
    name = path.name
    match = FILE_NAME.match(name)
    if not match:
        raise ContentError([ContentProblem(name, "file name", "must look like 'NN-slug.md'")])
    try:
        front, body = _split(path.read_text(encoding="utf-8"))
        raw = yaml.safe_load(front)
    except (ValueError, UnicodeDecodeError, yaml.YAMLError) as error:
        reason = " ".join(str(error).split())
        raise ContentError([ContentProblem(name, "front matter", reason)]) from error
    if not isinstance(raw, dict):
        raise ContentError([ContentProblem(name, "front matter", "must be a YAML mapping")])
    try:
        meta = QuestionMeta.model_validate(raw)
    except ValidationError as error:
        problems = [
            ContentProblem(name, _field_name(detail["loc"]), detail["msg"])
            for detail in error.errors()
        ]
        raise ContentError(problems) from error

    problems = []
    if meta.number != int(match["number"]):
        problems.append(
            ContentProblem(name, "number", f"{meta.number} does not match the file name")
        )
    if meta.slug != match["slug"]:
        problems.append(ContentProblem(name, "slug", f"'{meta.slug}' does not match the file name"))
    tokens = renderer.parse(body)
    blocks = code_blocks(tokens)
    for reason in _section_problems(body) + _code_problems(blocks):
        problems.append(ContentProblem(name, "body", reason))
    aloud, depth = "", body
    try:
        aloud, depth = split_aloud(body, renderer)
    except ValueError as error:
        problems.append(ContentProblem(name, ALOUD_FIELD, str(error)))
    else:
        problems.extend(
            ContentProblem(name, ALOUD_FIELD, r) for r in _aloud_problems(aloud, renderer)
        )
    if problems:
        raise ContentError(problems)

    search_text = " ".join([meta.title, meta.prompt, " ".join(meta.tags), plain_text(tokens)])
    return Question(
        meta=meta,
        path=path,
        prompt_html=renderer.render(meta.prompt, table_prefix="Question table"),
        answer_html=renderer.render(body, shift=1),
        answer_markdown=body,
        search_text=search_text.lower(),
        code=tuple(blocks),
        answer_text=prose_text(tokens),
        aloud_html=renderer.render(aloud, shift=1),
        depth_html=renderer.render(depth, shift=1),
        aloud_text=prose_text(renderer.parse(aloud)),
    )


def load_questions(directory: Path) -> QuestionBank:
    """Every question in `directory`, validated and rendered; all problems reported at once."""
    if not directory.is_dir():
        raise ContentError([ContentProblem(str(directory), "questions directory", "not found")])
    renderer = Renderer()
    questions: list[Question] = []
    problems: list[ContentProblem] = []
    for path in sorted(directory.glob("*.md")):
        try:
            questions.append(load_question(path, renderer))
        except ContentError as error:
            problems.extend(error.problems)

    seen_ids: dict[str, str] = {}
    for question in questions:
        for index, item in enumerate(question.meta.quiz):
            if item.id in seen_ids:
                problems.append(
                    ContentProblem(
                        question.path.name,
                        f"quiz.{index}.id",
                        f"'{item.id}' is already used in {seen_ids[item.id]}",
                    )
                )
            seen_ids[item.id] = question.path.name
    numbers = sorted(q.number for q in questions)
    if not problems and numbers != list(range(1, len(numbers) + 1)):
        problems.append(
            ContentProblem(
                str(directory), "number", f"questions must be numbered 1..N, found {numbers}"
            )
        )
    if not questions and not problems:
        problems.append(
            ContentProblem(str(directory), "questions directory", "holds no NN-slug.md file")
        )
    if problems:
        raise ContentError(problems)
    return QuestionBank(tuple(sorted(questions, key=lambda q: q.number)))
