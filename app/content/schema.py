"""What a question file's front matter may hold. Validated at start-up and by `check-content`."""

from __future__ import annotations

from typing import Annotated, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

Slug = Annotated[str, StringConstraints(pattern=r"^[a-z0-9]+(?:-[a-z0-9]+)*$", max_length=60)]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=4000)]

Difficulty = Literal["foundational", "intermediate", "advanced"]
# The one tag vocabulary: a question's tags come from this list, so a filter never splits one
# topic over two spellings (`architecture` / `architectures`). Add a tag here to use it.
Tag = Literal[
    "architectures",
    "calibration",
    "class-imbalance",
    "convolution",
    "data-augmentation",
    "downsampling",
    "efficiency",
    "evaluation",
    "fundamentals",
    "history",
    "imagenet",
    "invariance",
    "loss-functions",
    "mixed-precision",
    "normalization",
    "optimization",
    "pooling",
    "pytorch",
    "receptive-field",
    "regularization",
    "residual-connections",
    "resnet",
    "sampling",
    "tensor-shapes",
    "training",
    "transfer-learning",
]
TAGS: tuple[str, ...] = get_args(Tag)
DemoName = Literal[
    "shape-calculator", "pooling-visualizer", "augmentation-gallery", "architecture-facts"
]
ExperimentName = Literal[
    "transfer", "imbalance", "augmentation", "batchnorm", "residual", "pooling", "training-loop"
]

GeneratorName = Literal[
    "conv-output-size",
    "conv-params",
    "conv-macs",
    "pool-output-size",
    "depthwise-savings",
    "pointwise-vs-fc-params",
    "receptive-field",
    "precision-recall-f1",
    "class-weights",
    "ece-from-bins",
]
# Parametric numeric items name one of these; the numbers are drawn from a seed per attempt.
GENERATOR_NAMES: tuple[str, ...] = get_args(GeneratorName)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Choice(_Strict):
    text: Text
    correct: bool = False
    why: Text


class ChoiceItem(_Strict):
    id: Slug
    kind: Literal["choice"]
    prompt: Text
    choices: list[Choice] = Field(min_length=2, max_length=6)

    @model_validator(mode="after")
    def _one_correct(self) -> ChoiceItem:
        correct = sum(choice.correct for choice in self.choices)
        if correct != 1:
            raise ValueError(f"exactly one choice must have correct: true (found {correct})")
        return self

    @property
    def answer_index(self) -> int:
        return next(i for i, choice in enumerate(self.choices) if choice.correct)


class NumericItem(_Strict):
    id: Slug
    kind: Literal["numeric"]
    prompt: Text
    answer: float | None = None
    tolerance: float = Field(default=0.0, ge=0)
    unit: str | None = None
    why: Text | None = None
    generator: GeneratorName | None = None

    @model_validator(mode="after")
    def _answer_or_generator(self) -> NumericItem:
        if self.generator is None:
            if self.answer is None:
                raise ValueError("a numeric item needs either `answer` or `generator`")
            if self.why is None:
                raise ValueError("a numeric item with a fixed answer needs `why`")
        elif self.answer is not None:
            raise ValueError("a parametric item (with `generator`) must not fix an `answer`")
        return self


class RecallItem(_Strict):
    id: Slug
    kind: Literal["recall"]
    prompt: Text
    answer: Text


QuizItem = Annotated[ChoiceItem | NumericItem | RecallItem, Field(discriminator="kind")]


class QuestionMeta(_Strict):
    number: int = Field(ge=1, le=99)
    slug: Slug
    title: Annotated[str, StringConstraints(strip_whitespace=True, min_length=3, max_length=120)]
    prompt: Text
    tags: list[Tag] = Field(min_length=1, max_length=6)
    difficulty: Difficulty
    demos: list[DemoName] = Field(default_factory=list)
    experiments: list[ExperimentName] = Field(default_factory=list)
    quiz: list[QuizItem] = Field(default_factory=list)

    @model_validator(mode="after")
    def _tags_once(self) -> QuestionMeta:
        repeated = sorted({tag for tag in self.tags if self.tags.count(tag) > 1})
        if repeated:
            raise ValueError(f"tags: each tag once ({', '.join(repeated)} repeated)")
        return self
