"""Pages for experiments: launch a preset (a form on its question's page), the learner's
experiments (`/experiments`), and one experiment's page: the claim, how it is tested, the
runs' live status, the verdict with its per-seed numbers, the charts it talks about and the
comparison. Like the run page it works without JavaScript (a `<noscript>` refresh while live)
and htmx polls its status fragment once a second until every run has ended.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, HTTPException, Path, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import Engine

from app.auth import ActingUser, OptionalUser
from app.csrf import CsrfChecked
from app.db import EngineDep, read_session
from app.deps import JobsDep, SettingsDep
from app.experiments import refusal
from app.experiments.launch import describe, launch_experiment, preset_named
from app.experiments.presets import PRESETS
from app.models import Experiment, User
from app.repos import experiments as experiment_rows
from app.runs import compare, present
from app.runs.backend import BackendUnavailable, JobBackend
from app.settings import Settings
from app.web import render
from app.worker.errors import InvalidInput

router = APIRouter(prefix="/experiments", tags=["experiments"], include_in_schema=False)

ExperimentId = Annotated[int, Path(ge=1, le=2**31 - 1)]


def _page_context(
    engine: Engine, settings: Settings, experiment_id: int, user: User | None
) -> dict[str, Any]:
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
    described = describe(experiment, preset, runs, settings.runs_dir, with_charts=True)
    labels = {entry["id"]: entry["label"] for entry in described["runs"]}
    shown = runs[: compare.MAX_RUNS] if len(runs) > compare.MAX_RUNS else runs
    once = [e["id"] for e in described["runs"] if e["seed"] is None and e["arm"] is not None]
    data = compare.comparison(
        shown, [labels.get(run.id, f"run {run.id}") for run in shown], incomparable=once
    )
    return {
        "experiment": described,
        "live": described["status"] in ("queued", "running"),
        "data": data,
        "charts": described["charts"],
        "pct": present.pct,
        "num": present.num,
        "duration": present.duration,
    }


def latest_results(
    engine: Engine, settings: Settings, user: User | None, names: list[str]
) -> dict[str, Any]:
    """Per preset named, the user's newest experiment whose runs all still exist, described,
    with `fallback` the id of a newer one that lost a run (None when the newest is intact)."""
    if user is None or user.id is None or not names:
        return {}
    found: dict[str, Any] = {}
    with read_session(engine) as session:
        rows = experiment_rows.experiments_of(session, owner_id=user.id)
        newer: dict[str, int] = {}
        for row in rows:  # newest first
            preset = PRESETS.get(row.preset)
            if preset is None or row.preset not in names or row.preset in found:
                continue
            runs = experiment_rows.runs_in_order(session, experiment=row)
            if len(runs) < len(row.run_ids):
                newer.setdefault(row.preset, row.id or 0)
                continue
            described = describe(row, preset, runs, settings.runs_dir)
            described["fallback"] = newer.get(row.preset)
            found[row.preset] = described
    return found


def list_context(engine: Engine, settings: Settings, user: User | None) -> dict[str, Any]:
    """The learner's experiments, newest first, each with its status and verdict."""
    listed = []
    if user is not None and user.id is not None:
        with read_session(engine) as session:
            for row in experiment_rows.experiments_of(session, owner_id=user.id, limit=100):
                preset = PRESETS.get(row.preset)
                if preset is None:
                    continue
                runs = experiment_rows.runs_in_order(session, experiment=row)
                listed.append(describe(row, preset, runs, settings.runs_dir))
    return {"experiments": listed, "presets": PRESETS}


async def launch_preset(
    engine: Engine,
    name: object,
    *,
    user: User,
    settings: Settings,
    jobs: JobBackend,
    size: object = None,
) -> Experiment:
    """Queue the runs of preset `name` at `size` for `user`; the one path of form and API.

    Raises HTTPException: 422 for a name that is no preset, a size it does not have, or a run
    past the user's limits (the message names the field or the limit), 503 when the job
    backend cannot take runs.
    """
    preset = preset_named(name)
    if preset is None:
        raise HTTPException(status_code=422, detail="preset: expected one of " + ", ".join(PRESETS))
    size = settings.experiment_size if size is None else size
    if size not in ("default", "full", "test"):
        raise HTTPException(status_code=422, detail="size: expected default, full or test")
    try:
        return await run_in_threadpool(
            launch_experiment,
            preset,
            owner=user,
            engine=engine,
            settings=settings,
            backend=jobs,
            size=size,
        )
    except InvalidInput as error:
        raise HTTPException(status_code=422, detail=str(error)) from None
    except BackendUnavailable as error:
        raise HTTPException(status_code=503, detail=str(error)) from None


@router.post("", dependencies=[CsrfChecked])
async def launch(
    engine: EngineDep,
    user: ActingUser,
    settings: SettingsDep,
    jobs: JobsDep,
    preset: Annotated[str, Form(max_length=40)],
    size: Annotated[str | None, Form(max_length=20)] = None,
    back: Annotated[str | None, Form(max_length=120)] = None,
) -> Response:
    """Launch the preset named in the form; on to the experiment's page. A refusal from a
    question's page (`back`) goes back there, the reason shown beside the preset."""
    try:
        experiment = await launch_preset(
            engine, preset, user=user, settings=settings, jobs=jobs, size=size
        )
    except HTTPException as error:
        path = refusal.back_path(back)
        if path is None or preset not in PRESETS:
            raise
        token = refusal.sign(settings, preset, error.status_code, str(error.detail))
        return RedirectResponse(f"{path}?refused={token}#preset-{preset}", status_code=303)
    return RedirectResponse(f"/experiments/{experiment.id}", status_code=303)


@router.get("", response_class=HTMLResponse)
def experiments_page(
    request: Request, engine: EngineDep, user: OptionalUser, settings: SettingsDep
) -> HTMLResponse:
    """Your experiments, newest first: preset, status, verdict; the presets to start one."""
    context = list_context(engine, settings, user)
    return render(request, "pages/experiments.html", context)


@router.get("/{experiment_id}", response_class=HTMLResponse)
def experiment_page(
    request: Request,
    engine: EngineDep,
    experiment_id: ExperimentId,
    user: OptionalUser,
    settings: SettingsDep,
) -> HTMLResponse:
    """The experiment; htmx polls the same URL for the status fragment while it is live."""
    context = _page_context(engine, settings, experiment_id, user)
    return render(
        request, "pages/experiment.html", context, fragment="partials/_experiment_status.html"
    )
