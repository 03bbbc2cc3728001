"""The twelve questions: schema, loading and rendering of `questions/*.md`."""

from app.content.loader import ContentError, Question, QuestionBank, load_questions

__all__ = ["ContentError", "Question", "QuestionBank", "load_questions"]
