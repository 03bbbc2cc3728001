"""`/runs/compare?ids=1,2,3`: the user's runs side by side (app.runs.compare).

Registered before app.views.runs, whose `/runs/{run_id}` would take "compare" for an id.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse

from app.auth import OptionalUser
from app.db import read_session
from app.repos import runs as run_rows
from app.runs import compare, present
from app.web import render

router = APIRouter(prefix="/runs", tags=["runs"], include_in_schema=False)


@router.get("/compare", response_class=HTMLResponse)
def compare_page(
    request: Request,
    user: OptionalUser,
    ids: Annotated[list[str] | None, Query(max_length=200)] = None,
) -> HTMLResponse:
    """`ids` as "1,2,3", or repeated (`ids=1&ids=2`, what the runs list's checkboxes send)."""
    try:
        run_ids = compare.parse_ids(",".join(ids or []))
    except compare.IdsError as error:
        raise HTTPException(status_code=422, detail=str(error)) from None
    runs = None
    if user is not None and user.id is not None:
        with read_session(request.app.state.engine) as session:
            runs = run_rows.owned_runs(session, owner_id=user.id, run_ids=run_ids)
    if runs is None:
        raise HTTPException(status_code=404, detail="Not all of these runs exist and are yours.")
    data = compare.comparison(runs)
    context = {
        "data": data,
        "charts": compare.charts(data),
        "pct": present.pct,
        "num": present.num,
    }
    return render(request, "pages/runs_compare.html", context)
