"""What the demo JSON endpoints share: the 422 body and how a worker error becomes one."""

from __future__ import annotations

from typing import Any

from fastapi import HTTPException

from app.errors import API_ERRORS, ErrorBody
from app.worker.errors import InvalidInput

__all__ = ["ERRORS", "ErrorBody", "api_error"]

# 400 (not JSON) and 422 (`{"detail": "field: message"}`), as every JSON route documents them.
ERRORS: dict[int | str, dict[str, Any]] = API_ERRORS


def api_error(error: InvalidInput) -> HTTPException:
    """422 with `{"detail": "field: message"}` (the app's handler writes the JSON)."""
    return HTTPException(status_code=422, detail=str(error))
