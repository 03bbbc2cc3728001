"""JSON API for training runs: launch, read, list, cancel or delete, download their files.

The session cookie identifies the caller, as for pages; another user's run is a 404 on every
route, exactly like a run that does not exist.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, JSONResponse, Response
from sqlalchemy import Engine

from app.auth import ActingUser, OptionalUser
from app.datasets import runs as dataset_runs
from app.db import EngineDep, SessionDep, read_session
from app.deps import JobsDep, SettingsDep
from app.errors import API_ERRORS, ErrorBody
from app.models import User
from app.models.runs import RunAccepted, RunPublic, RunSummary
from app.repos import runs as run_rows
from app.runs import dispatch
from app.runs.backend import BackendUnavailable
from app.runs.files import downloadable
from app.runs.limits import QueueFull
from app.runs.validate import check_json_types
from app.views.api_quiz import NOT_JSON, require_json
from app.worker.errors import InvalidInput
from app.worker.training import RunConfig

router = APIRouter(prefix="/api/runs", tags=["runs"], responses=API_ERRORS)

RunId = Annotated[int, Path(ge=1, le=2**31 - 1, description="The run's id")]
MAX_BODY_BYTES = 65_536  # a config is well under 2 KB
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {
        "description": "No such run of yours (another user's runs are not found either)",
        "model": ErrorBody,
    }
}


def config_schema() -> dict[str, Any]:
    """RunConfig as a JSON Schema object: every field optional, with its default and range."""
    properties: dict[str, Any] = {}
    for spec in RunConfig.fields():
        schema: dict[str, Any] = {"description": spec.help, "default": spec.default}
        if spec.type == "int":
            schema["type"] = "integer"
        elif spec.type == "float":
            schema["type"] = "number"
        elif spec.type == "bool":
            schema["type"] = "boolean"
        elif spec.type == "str?":
            schema["type"] = ["string", "null"]
        else:
            schema["type"] = "string"
        if spec.choices:
            schema["enum"] = list(spec.choices)
        if spec.minimum is not None:
            schema["minimum"] = spec.minimum
        if spec.maximum is not None:
            schema["maximum"] = spec.maximum
        properties[spec.name] = schema
    properties[dataset_runs.FIELD] = {
        "type": ["integer", "null"],
        "description": "One of your uploaded data sets (GET /api/datasets): trains on its "
        "folder; dataset must be folder (or left out)",
        "default": None,
    }
    return {
        "type": "object",
        "properties": properties,
        "additionalProperties": False,
        "example": {"dataset": "shapes", "model": "smallcnn", "epochs": 1},
    }


CONFIG_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "A RunConfig: any field left out takes its default",
        "content": {"application/json": {"schema": config_schema()}},
    }
}


@router.post(
    "",
    status_code=202,
    response_model=RunAccepted,
    dependencies=[Depends(require_json)],
    openapi_extra=CONFIG_BODY,
    responses={
        **NOT_JSON,
        422: {
            "description": "A field is invalid, or over a limit; `detail` starts with its name "
            "and gives the allowed values (the engine's message)",
            "model": ErrorBody,
        },
        413: {"description": "The body is larger than 64 KiB", "model": ErrorBody},
        429: {"description": "Too many of your runs queued or running", "model": ErrorBody},
        503: {
            "description": "The job queue cannot be reached; the run was recorded as failed",
            "model": ErrorBody,
        },
    },
)
async def create_run(
    request: Request, engine: EngineDep, user: ActingUser, settings: SettingsDep, jobs: JobsDep
) -> RunAccepted:
    """Queue a training run of the config in the body; poll `GET /api/runs/{id}` to follow it.

    The smallest body is `{"dataset": "shapes", "model": "smallcnn", "epochs": 1}`.
    """
    raw = await request.body()
    if len(raw) > MAX_BODY_BYTES:
        raise HTTPException(status_code=413, detail=f"body: larger than {MAX_BODY_BYTES} bytes")
    try:
        values = json.loads(raw)
    except (ValueError, RecursionError):
        raise HTTPException(
            status_code=400, detail="body: not valid JSON (send UTF-8 JSON as application/json)"
        ) from None
    try:
        checked = check_json_types(values)
        if dataset_runs.FIELD in checked:
            checked = await run_in_threadpool(_resolve_dataset, engine, checked, user)
        config = RunConfig.from_dict(checked)
        run = await run_in_threadpool(
            dispatch.launch,
            config,
            owner=user,
            engine=engine,
            settings=settings,
            backend=jobs,
        )
    except InvalidInput as error:
        raise HTTPException(status_code=422, detail=str(error)) from None
    except QueueFull as error:
        raise HTTPException(status_code=429, detail=str(error)) from None
    except BackendUnavailable as error:
        raise HTTPException(status_code=503, detail=str(error)) from None
    assert run.id is not None
    return RunAccepted(id=run.id, status=run.status)


def _resolve_dataset(engine: Engine, values: dict[str, Any], user: User) -> dict[str, Any]:
    assert user.id is not None
    with read_session(engine) as session:
        return dataset_runs.resolve(values, session, owner_id=user.id, strict=True)


@router.get("", response_model=list[RunSummary])
def list_runs(session: SessionDep, user: OptionalUser) -> list[RunSummary]:
    """The caller's runs, newest first."""
    if user is None or user.id is None:
        return []
    return [RunSummary.of(run) for run in run_rows.runs_of(session, owner_id=user.id)]


@router.get("/{run_id}", response_model=RunPublic, responses=NOT_FOUND)
def read_run(run_id: RunId, session: SessionDep, user: OptionalUser) -> RunPublic:
    """One run: status, config, progress, the latest metrics and the per-epoch history."""
    run = None
    if user is not None and user.id is not None:
        run = run_rows.get_run(session, run_id=run_id, owner_id=user.id)
    if run is None:
        raise HTTPException(status_code=404, detail=f"No run {run_id} of yours.")
    return RunPublic.of(run, queue_position=run_rows.queue_position(session, run=run))


@router.delete(
    "/{run_id}",
    status_code=202,
    response_model=RunAccepted,
    responses={
        **NOT_FOUND,
        204: {"description": "Deleted, with its files (`purge=true` on an ended run)"},
        409: {
            "description": "Purge of a live run, or cancel of an ended one",
            "model": ErrorBody,
        },
    },
)
def delete_run(
    request: Request,
    engine: EngineDep,
    run_id: RunId,
    user: OptionalUser,
    settings: SettingsDep,
    jobs: JobsDep,
    purge: Annotated[
        bool, Query(description="Delete an ended run and its files instead of cancelling")
    ] = False,
) -> Response:
    """Cancel a queued or running run (202, its status after the call), or with
    `?purge=true` delete an ended run and its files (204)."""
    run = dispatch.owned_run(engine, run_id=run_id, owner=user)
    if run is None:
        raise HTTPException(status_code=404, detail=f"No run {run_id} of yours.")
    if purge:
        if not dispatch.delete(run, engine=engine, settings=settings):
            raise HTTPException(
                status_code=409,
                detail=f"run {run_id} is {run.status}; cancel it and wait for it to end first",
            )
        return Response(status_code=204)
    if not run.live:
        raise HTTPException(
            status_code=409,
            detail=f"run {run_id} has already ended ({run.status}); "
            "add ?purge=true to delete it and its files",
        )
    status = dispatch.cancel(run, engine=engine, backend=jobs)
    return JSONResponse({"id": run_id, "status": status}, status_code=202)


@router.get(
    "/{run_id}/files/{name:path}",
    response_class=FileResponse,
    responses={
        **NOT_FOUND,
        200: {
            "description": "checkpoint.pt, metrics.json, predictions.npz, config.yaml or "
            "misclassified/<n>.png",
            "content": {"application/octet-stream": {}},
        },
    },
)
def download_file(
    run_id: RunId,
    name: Annotated[str, Path(max_length=64, description="e.g. metrics.json")],
    session: SessionDep,
    user: OptionalUser,
    settings: SettingsDep,
) -> Response:
    """One of the run's files, as the engine wrote it."""
    run = None
    if user is not None and user.id is not None:
        run = run_rows.get_run(session, run_id=run_id, owner_id=user.id)
    found = downloadable(settings, run_id, name) if run is not None else None
    if found is None:
        raise HTTPException(
            status_code=404, detail=f"No file '{name[:64]}' in run {run_id} of yours."
        )
    path, media_type = found
    download = name.replace("/", "-")
    return FileResponse(
        path,
        media_type=media_type,
        filename=None if media_type == "image/png" else f"run-{run_id}-{download}",
        headers={"Cache-Control": "no-store"},
    )
