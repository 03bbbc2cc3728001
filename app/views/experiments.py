"""Pages for experiments: launch a preset (a form on its question's page), and one
experiment's page: the claim, what to notice, the runs' live status, the finding and the
comparison. Like the run page it works without JavaScript (a `<noscript>` refresh while live)
and htmx polls its status fragment once a second until every run has ended.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, HTTPException, Path, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import Engine

from app.auth import ActingUser, CsrfChecked, OptionalUser
from app.db import read_session
from app.deps import JobsDep, SettingsDep
from app.experiments.launch import describe, launch_experiment
from app.experiments.presets import PRESETS
from app.models import Experiment, User
from app.repos import experiments as experiment_rows
from app.runs import compare, present
from app.runs.backend import BackendUnavailable, JobBackend
from app.settings import Settings
from app.web import render
from app.worker.training import ConfigError

router = APIRouter(prefix="/experiments", tags=["experiments"], include_in_schema=False)

ExperimentId = Annotated[int, Path(ge=1, le=2**31 - 1)]


def _page_context(engine: Engine, experiment_id: int, user: User | None) -> dict[str, Any]:
    experiment = None
    with read_session(engine) as session:
        if user is not None and user.id is not None:
            experiment = experiment_rows.get_experiment(
                session, experiment_id=experiment_id, owner_id=user.id
            )
        preset = PRESETS.get(experiment.preset) if experiment is not None else None
        if experiment is None or preset is None:
            raise HTTPException(status_code=404, detail=f"No experiment {experiment_id} of yours.")
        runs = experiment_rows.runs_in_order(session, experiment=experiment)
    described = describe(experiment, preset, runs)
    labels = {entry["id"]: entry["label"] for entry in described["runs"]}
    data = compare.comparison(runs, [labels.get(run.id, f"run {run.id}") for run in runs])
    return {
        "experiment": described,
        "live": described["status"] in ("queued", "running"),
        "data": data,
        "charts": compare.charts(data),
        "pct": present.pct,
        "num": present.num,
        "duration": present.duration,
    }


def latest_results(engine: Engine, user: User | None, names: list[str]) -> dict[str, Any]:
    """The user's newest experiment of each preset named, described (for the question page)."""
    if user is None or user.id is None or not names:
        return {}
    with read_session(engine) as session:
        latest = experiment_rows.latest_of(session, owner_id=user.id, presets=names)
        return {
            name: describe(
                row, PRESETS[name], experiment_rows.runs_in_order(session, experiment=row)
            )
            for name, row in latest.items()
            if name in PRESETS
        }


async def launch_preset(
    request: Request, name: object, *, user: User, settings: Settings, jobs: JobBackend
) -> Experiment:
    """Queue the runs of preset `name` for `user`; the one path of the form and the API.

    Raises HTTPException: 422 for a name that is no preset or a run past the user's limits
    (the message names the field or the limit), 503 when the job backend cannot take runs.
    """
    preset = PRESETS.get(name) if isinstance(name, str) else None
    if preset is None:
        raise HTTPException(status_code=422, detail="preset: expected one of " + ", ".join(PRESETS))
    try:
        return await run_in_threadpool(
            launch_experiment,
            preset,
            owner=user,
            engine=request.app.state.engine,
            settings=settings,
            backend=jobs,
        )
    except ConfigError as error:
        raise HTTPException(status_code=422, detail=str(error)) from None
    except BackendUnavailable as error:
        raise HTTPException(status_code=503, detail=str(error)) from None


@router.post("", dependencies=[CsrfChecked])
async def launch(
    request: Request,
    user: ActingUser,
    settings: SettingsDep,
    jobs: JobsDep,
    preset: Annotated[str, Form(max_length=40)],
) -> Response:
    """Launch the preset named in the form; on to the experiment's page."""
    experiment = await launch_preset(request, preset, user=user, settings=settings, jobs=jobs)
    return RedirectResponse(f"/experiments/{experiment.id}", status_code=303)


@router.get("/{experiment_id}", response_class=HTMLResponse)
def experiment_page(
    request: Request, experiment_id: ExperimentId, user: OptionalUser
) -> HTMLResponse:
    """The experiment; htmx polls the same URL for the status fragment while it is live."""
    context = _page_context(request.app.state.engine, experiment_id, user)
    return render(
        request, "pages/experiment.html", context, fragment="partials/_experiment_status.html"
    )
