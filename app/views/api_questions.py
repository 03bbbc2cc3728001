"""JSON API for the questions: list and detail."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel

from app.content import Question
from app.deps import BankDep
from app.errors import API_ERRORS, ErrorBody

router = APIRouter(prefix="/api/questions", tags=["questions"], responses=API_ERRORS)


class QuestionSummary(BaseModel):
    number: int
    slug: str
    title: str
    tags: list[str]
    difficulty: str

    @classmethod
    def of(cls, question: Question) -> QuestionSummary:
        return cls(
            number=question.number,
            slug=question.slug,
            title=question.title,
            tags=question.tags,
            difficulty=question.difficulty,
        )


class QuestionDetail(QuestionSummary):
    prompt_html: str
    answer_html: str

    @classmethod
    def of(cls, question: Question) -> QuestionDetail:
        summary = QuestionSummary.of(question).model_dump()
        return cls(**summary, prompt_html=question.prompt_html, answer_html=question.answer_html)


@router.get("", response_model=list[QuestionSummary])
def list_questions(bank: BankDep) -> list[QuestionSummary]:
    """All questions, in syllabus order."""
    return [QuestionSummary.of(question) for question in bank]


@router.get("/{slug}", response_model=QuestionDetail, responses={404: {"model": ErrorBody}})
def read_question(slug: str, bank: BankDep) -> QuestionDetail:
    """One question with its prompt and model answer as HTML."""
    question = bank.get(slug)
    if question is None:
        raise HTTPException(status_code=404, detail=f"No question is called '{slug}'.")
    return QuestionDetail.of(question)
