"""Saving a learner's draft answer to a question."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from app.auth import ActingUser
from app.csrf import CsrfChecked
from app.db import WriteSessionDep
from app.deps import BankDep
from app.inputs import FormText
from app.repos.drafts import save_draft
from app.views.questions import question_or_404
from app.web import is_fragment_request, templates

router = APIRouter(tags=["drafts"], include_in_schema=False)

DRAFT_MAX = 20_000


@router.post("/questions/{slug}/draft", response_class=HTMLResponse, dependencies=[CsrfChecked])
def save(
    request: Request,
    slug: str,
    bank: BankDep,
    session: WriteSessionDep,
    user: ActingUser,
    draft: Annotated[FormText, Form(max_length=DRAFT_MAX)] = "",
    reveal: Annotated[bool, Form()] = False,
) -> Response:
    """Save the draft. Called by the form (htmx on a pause in typing, or a plain post), before
    a reveal, and by `navigator.sendBeacon` when the page is left: a beacon cannot set the
    CSRF header, so its token comes in the form body, checked like any form's."""
    question = question_or_404(bank, slug)
    assert user.id is not None
    saved = save_draft(session, user_id=user.id, question_slug=question.slug, text=draft)
    if is_fragment_request(request):
        return templates.TemplateResponse(request, "partials/_draft_status.html", {"draft": saved})
    if reveal:  # "Save and reveal" without JavaScript
        return RedirectResponse(f"/questions/{question.slug}?reveal=true#answer", status_code=303)
    return RedirectResponse(f"/questions/{question.slug}#draft", status_code=303)
