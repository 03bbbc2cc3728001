"""What the demo JSON endpoints share: the 422 body and how a worker error becomes one."""

from __future__ import annotations

from typing import Any

from fastapi import HTTPException
from pydantic import BaseModel

from app.worker.errors import InvalidInput


class ErrorBody(BaseModel):
    detail: str


ERRORS: dict[int | str, dict[str, Any]] = {
    422: {"description": "Invalid input; `detail` starts with the field's name", "model": ErrorBody}
}


def api_error(error: InvalidInput) -> HTTPException:
    """422 with `{"detail": "field: message"}` (the app's handler writes the JSON)."""
    return HTTPException(status_code=422, detail=str(error))
