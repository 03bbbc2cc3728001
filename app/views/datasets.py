"""Pages for uploaded data sets: the list with the upload form, one data set's preview, its
thumbnails (owner-checked), delete. Every form works without JavaScript."""

from __future__ import annotations

import functools
from pathlib import Path as FilePath
from typing import Annotated, Any

import anyio.to_thread
from fastapi import APIRouter, HTTPException, Path, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import Engine

from app.auth import OptionalUser
from app.csrf import CsrfChecked, CsrfRefused
from app.datasets import store, thumbnails
from app.datasets.accept import accept_upload
from app.db import EngineDep, read_session
from app.deps import SettingsDep
from app.models import User
from app.models.datasets import Dataset
from app.repos import runs as run_rows
from app.settings import Settings
from app.views.api_datasets import in_use, refusal
from app.web import render
from app.worker.errors import InvalidInput

router = APIRouter(prefix="/datasets", tags=["datasets"], include_in_schema=False)

DatasetId = Annotated[int, Path(ge=1, le=2**31 - 1)]
PREVIEW_PER_CLASS = 6
PREVIEW_CLASSES = 50
THUMB_PX = 96


def _owned_or_404(request: Request, engine: Engine, dataset_id: int, user: User | None) -> Dataset:
    row = store.owned(engine, dataset_id=dataset_id, owner=user)
    if row is None:
        raise HTTPException(status_code=404, detail=f"No data set {dataset_id} of yours.")
    return row


def _list_context(
    request: Request, engine: Engine, user: User | None, settings: Settings
) -> dict[str, Any]:
    datasets = store.list_for(engine, user)
    return {
        "datasets": datasets,
        "used_bytes": sum(d.disk_bytes for d in datasets),
        "limits": settings,
        "problem": None,
    }


@router.get("", response_class=HTMLResponse)
def list_page(
    request: Request, engine: EngineDep, user: OptionalUser, settings: SettingsDep
) -> HTMLResponse:
    """Your data sets and the upload form."""
    return render(request, "pages/datasets.html", _list_context(request, engine, user, settings))


@router.post("", response_class=HTMLResponse)
async def upload(
    request: Request, engine: EngineDep, user: OptionalUser, settings: SettingsDep
) -> Response:
    """The upload form: to the new data set's page, or back to the list with the reason."""
    try:
        row = await accept_upload(request, user, settings)
    except CsrfRefused as error:
        raise refusal(error) from None
    except InvalidInput as error:
        context = await run_in_threadpool(_list_context, request, engine, user, settings)
        context["problem"] = str(error)
        return render(request, "pages/datasets.html", context, status_code=error.status)
    return RedirectResponse(f"/datasets/{row.id}", status_code=303)


def _preview(settings: Settings, row: Dataset) -> dict[str, int]:
    """How many thumbnails each class shows."""
    shown: dict[str, int] = {}
    for name in list(row.classes)[:PREVIEW_CLASSES]:
        shown[name] = min(PREVIEW_PER_CLASS, len(store.class_images(settings, row, name)))
    return shown


@router.get("/{dataset_id}", response_class=HTMLResponse)
def dataset_page(
    request: Request,
    engine: EngineDep,
    dataset_id: DatasetId,
    user: OptionalUser,
    settings: SettingsDep,
) -> HTMLResponse:
    """Before training: class counts, what was skipped and why, a few images per class."""
    row = _owned_or_404(request, engine, dataset_id, user)
    context = {
        "dataset": row,
        "shown": _preview(settings, row),
        "class_names": list(row.classes),
        "train_link": f"/runs/new?dataset=upload:{row.id}",
    }
    return render(request, "pages/dataset.html", context)


def _thumbnail_source(
    request: Request,
    engine: Engine,
    dataset_id: int,
    class_index: int,
    number: int,
    user: User | None,
) -> bytes | FilePath:
    """The kept thumbnail's PNG, or the image to make it from (404 if there is none)."""
    settings: Settings = request.app.state.settings
    row = _owned_or_404(request, engine, dataset_id, user)
    assert row.id is not None
    found = thumbnails.kept(settings, row.id, class_index, number)
    if found is not None:
        return found
    names = list(row.classes)
    files = (
        store.class_images(settings, row, names[class_index]) if class_index < len(names) else []
    )
    if number >= len(files):
        raise HTTPException(status_code=404, detail="No such image in this data set.")
    return files[number]


@router.get("/{dataset_id}/images/{class_index}/{number}")
async def thumbnail(
    request: Request,
    engine: EngineDep,
    dataset_id: DatasetId,
    class_index: Annotated[int, Path(ge=0, le=100_000)],
    number: Annotated[int, Path(ge=0, le=PREVIEW_PER_CLASS - 1)],
    user: OptionalUser,
    settings: SettingsDep,
) -> Response:
    """A square PNG thumbnail of one kept image, re-encoded (never the file as uploaded),
    decoded once and kept (app.datasets.thumbnails); requests waiting for a decode wait in
    the event loop, not in the shared thread pool."""
    source = await run_in_threadpool(
        _thumbnail_source, request, engine, dataset_id, class_index, number, user
    )
    if isinstance(source, bytes):
        png: bytes | str = source
    else:
        make = functools.partial(
            thumbnails.thumbnail_png, settings, dataset_id, class_index, number, source, THUMB_PX
        )
        png = await anyio.to_thread.run_sync(make, limiter=thumbnails.limiter())
    if isinstance(png, str):
        raise HTTPException(status_code=404, detail=f"This image cannot be shown ({png}).")
    return Response(png, media_type="image/png", headers={"Cache-Control": "private, max-age=3600"})


@router.get("/{dataset_id}/delete", response_class=HTMLResponse)
def confirm_delete(
    request: Request, engine: EngineDep, dataset_id: DatasetId, user: OptionalUser
) -> HTMLResponse:
    """Before a data set is deleted: the runs that trained on it, and a button that posts."""
    row = _owned_or_404(request, engine, dataset_id, user)
    depends: list[tuple[tuple[str, str], str | None]] = []
    blocked = None
    with read_session(engine) as session:
        for run in run_rows.runs_of(session, owner_id=row.owner_id):
            if run.config.get("folder") != row.folder:
                continue
            if run.live and blocked is None:
                blocked = f"Run {run.id} is {run.status} on it: cancel it or let it end first."
            depends.append(
                (
                    (
                        f"Run {run.id}",
                        f" ({run.config.get('model')}, {run.status}) trained on it: it keeps its "
                        "results, but cannot be run again",
                    ),
                    f"/runs/{run.id}",
                )
            )
    context = {
        "crumbs": [("Data sets", "/datasets"), (row.name, f"/datasets/{dataset_id}")],
        "heading": f"Delete the data set '{row.name}'?",
        "intro": (
            f"'{row.name}' ({len(row.classes)} classes, {row.images:,} images, "
            f"{row.disk_bytes:,} bytes) is deleted from this server for good."
        ),
        "depends": depends,
        "blocked": blocked,
        "blocked_href": None,
        "action": f"/datasets/{dataset_id}/delete",
        "keep_href": f"/datasets/{dataset_id}",
    }
    return render(request, "pages/confirm_delete.html", context)


@router.post("/{dataset_id}/delete", dependencies=[CsrfChecked])
def delete(
    request: Request,
    engine: EngineDep,
    dataset_id: DatasetId,
    user: OptionalUser,
    settings: SettingsDep,
) -> Response:
    row = _owned_or_404(request, engine, dataset_id, user)
    busy = store.live_run_using(engine, row)
    if busy is not None:
        raise HTTPException(status_code=409, detail=in_use(dataset_id, busy))
    store.remove(engine, row, settings)
    return RedirectResponse("/datasets", status_code=303)
