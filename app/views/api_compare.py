"""`GET /api/runs/compare?ids=1,2,3`: runs side by side as JSON (the page shows the same).

Registered before app.views.api_runs, whose `/api/runs/{run_id}` would take "compare" for an id.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query

from app.auth import OptionalUser
from app.db import SessionDep
from app.errors import API_ERRORS, ErrorBody
from app.repos import runs as run_rows
from app.runs.compare import comparison, parse_ids
from app.worker.errors import InvalidInput

router = APIRouter(prefix="/api/runs", tags=["runs"], responses=API_ERRORS)

IdsQuery = Annotated[
    str, Query(max_length=200, description="2 to 8 run ids separated by commas, e.g. 3,4,5")
]


@router.get(
    "/compare",
    responses={
        404: {"description": "One of the runs is not yours or does not exist", "model": ErrorBody},
        422: {"description": "ids malformed, fewer than 2 or more than 8", "model": ErrorBody},
    },
)
def compare_runs(ids: IdsQuery, session: SessionDep, user: OptionalUser) -> dict[str, Any]:
    """Runs side by side: metrics with the best per column, config differences, per-class
    recall, and each run's curves ([epoch, val_accuracy, val_loss, train_loss] per epoch)."""
    try:
        run_ids = parse_ids(ids)
    except InvalidInput as error:
        raise HTTPException(status_code=422, detail=str(error)) from None
    runs = None
    if user is not None and user.id is not None:
        runs = run_rows.owned_runs(session, owner_id=user.id, run_ids=run_ids)
    if runs is None:
        raise HTTPException(
            status_code=404, detail="ids: not all of these runs exist and are yours"
        )
    return comparison(runs)
