"""`/runs/compare?ids=1,2,3`: the user's runs side by side (app.runs.compare).

Registered before app.views.runs, whose `/runs/{run_id}` would take "compare" for an id.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlmodel import Session

from app.auth import OptionalUser
from app.db import EngineDep, SessionDep
from app.deps import JobsDep
from app.repos import runs as run_rows
from app.runs import compare, compare_csv, present
from app.views.runs_context import list_context
from app.web import render
from app.worker.errors import InvalidInput

router = APIRouter(prefix="/runs", tags=["runs"], include_in_schema=False)


def _explain(ids: list[str] | None, message: str) -> str:
    """What to do, in words, when the ids make no comparison."""
    count = len([p for p in ",".join(ids or []).split(",") if p.strip()])
    if count < 2:
        ticked = "no run" if count == 0 else "one run"
        return (
            f"Compare puts 2 to {compare.MAX_RUNS} runs side by side: you ticked {ticked}. "
            "Tick at least two runs in the Compare column, then press Compare again."
        )
    return message.removeprefix("ids: ").capitalize() + "."


def _owned(session: Session, user: OptionalUser, ids: list[str] | None) -> list:
    try:
        run_ids = compare.parse_ids(",".join(ids or []))
    except InvalidInput as error:
        raise HTTPException(status_code=422, detail=str(error)) from None
    runs = None
    if user is not None and user.id is not None:
        runs = run_rows.owned_runs(session, owner_id=user.id, run_ids=run_ids)
    if runs is None:
        raise HTTPException(status_code=404, detail="Not all of these runs exist and are yours.")
    return runs


# The tables a comparison downloads as CSV: the per-epoch curves (metrics.json's numbers) and
# the figures of the page's table, unrounded.
CSV_TABLES = {"curves": compare_csv.curves_csv, "figures": compare_csv.figures_csv}


@router.get("/compare/{table}.csv")
def compare_download(
    session: SessionDep,
    user: OptionalUser,
    table: Literal["curves", "figures"],
    ids: Annotated[list[str] | None, Query(max_length=200)] = None,
) -> Response:
    """The compared runs' curves or figures as a CSV download."""
    runs = _owned(session, user, ids)
    name = f"{table}-" + "-".join(str(r.id) for r in runs) + ".csv"
    return Response(
        CSV_TABLES[table](runs),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@router.get("/compare", response_class=HTMLResponse)
def compare_page(
    request: Request,
    engine: EngineDep,
    session: SessionDep,
    user: OptionalUser,
    jobs: JobsDep,
    ids: Annotated[list[str] | None, Query(max_length=200)] = None,
) -> HTMLResponse:
    """`ids` as "1,2,3", or repeated (`ids=1&ids=2`, what the runs list's checkboxes send)."""
    try:
        run_ids = compare.parse_ids(",".join(ids or []))
    except InvalidInput as error:
        # Back on the runs list, the ticked runs still ticked, with what Compare needs.
        context = list_context(
            request, engine, user, jobs, compare_problem=_explain(ids, str(error))
        )
        context["ticked"] = {p.strip() for p in ",".join(ids or []).split(",")}
        return render(request, "pages/runs.html", context, status_code=422)
    runs = None
    if user is not None and user.id is not None:
        runs = run_rows.owned_runs(session, owner_id=user.id, run_ids=run_ids)
    if runs is None:
        raise HTTPException(status_code=404, detail="Not all of these runs exist and are yours.")
    data = compare.comparison(runs)
    context = {
        "ids": ",".join(str(run.id) for run in runs),
        "data": data,
        "charts": compare.charts(data),
        "pct": present.pct,
        "num": present.num,
    }
    return render(request, "pages/runs_compare.html", context)
