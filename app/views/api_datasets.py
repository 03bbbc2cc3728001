"""JSON API for uploaded data sets: upload a zip of class folders, list them, delete one.

The session cookie identifies the caller, as for runs; another user's data set is a 404,
exactly like one that does not exist. The upload is multipart (a cross-site form can send
one), so it also needs the session's CSRF token: the `X-CSRF-Token` header, or a
`csrf_token` field sent before the file.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from app.auth import OptionalUser
from app.csrf import UPLOAD_REFUSED, CsrfRefused
from app.datasets import store
from app.datasets.accept import accept_upload
from app.db import EngineDep
from app.deps import SettingsDep
from app.errors import API_ERRORS, ErrorBody
from app.models.datasets import DatasetPublic
from app.worker.errors import InvalidInput

router = APIRouter(prefix="/api/datasets", tags=["datasets"], responses=API_ERRORS)

DatasetId = Annotated[int, Path(ge=1, le=2**31 - 1, description="The data set's id")]
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {
        "description": "No such data set of yours (another user's are not found either)",
        "model": ErrorBody,
    }
}
UPLOAD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {
                            "type": "string",
                            "format": "binary",
                            "description": "A .zip with one folder of images per class",
                        },
                        "name": {"type": "string", "maxLength": 80},
                        "csrf_token": {
                            "type": "string",
                            "description": "Or send it as the X-CSRF-Token header",
                        },
                    },
                }
            }
        },
    }
}


def in_use(dataset_id: int, run_id: int) -> str:
    return (
        f"data set {dataset_id} is used by run {run_id}, which is queued or running; "
        "cancel it or wait for it to end first"
    )


def refusal(error: InvalidInput | CsrfRefused) -> HTTPException:
    """The HTTP error for a refused upload: its status and "field: reason"."""
    if isinstance(error, CsrfRefused):
        return HTTPException(status_code=403, detail=UPLOAD_REFUSED)
    return HTTPException(status_code=error.status, detail=str(error))


@router.post(
    "",
    status_code=201,
    response_model=DatasetPublic,
    openapi_extra=UPLOAD_BODY,
    responses={
        403: {"description": "No valid CSRF token", "model": ErrorBody},
        413: {"description": "Over an upload or expansion cap", "model": ErrorBody},
        415: {"description": "Not multipart/form-data", "model": ErrorBody},
        507: {"description": "The server's disk refused the files", "model": ErrorBody},
        422: {
            "description": "Not a usable zip of class folders, an unsafe entry, a full quota; "
            "`detail` starts with the field (`file` or `name`)",
            "model": ErrorBody,
        },
    },
)
async def create_dataset(
    request: Request, user: OptionalUser, settings: SettingsDep
) -> DatasetPublic:
    """Upload a zip of class folders (multipart field `file`, optional `name`).

    The answer gives the usable images per class and what was skipped, by reason.
    """
    try:
        row = await accept_upload(request, user, settings)
    except (InvalidInput, CsrfRefused) as error:
        raise refusal(error) from None
    return DatasetPublic.of(row)


@router.get("", response_model=list[DatasetPublic])
def list_datasets(request: Request, engine: EngineDep, user: OptionalUser) -> list[DatasetPublic]:
    """The caller's data sets, newest first."""
    return [DatasetPublic.of(row) for row in store.list_for(engine, user)]


@router.get("/{dataset_id}", response_model=DatasetPublic, responses=NOT_FOUND)
def read_dataset(
    request: Request, engine: EngineDep, dataset_id: DatasetId, user: OptionalUser
) -> DatasetPublic:
    """One of the caller's data sets."""
    row = store.owned(engine, dataset_id=dataset_id, owner=user)
    if row is None:
        raise HTTPException(status_code=404, detail=f"No data set {dataset_id} of yours.")
    return DatasetPublic.of(row)


@router.delete(
    "/{dataset_id}",
    status_code=204,
    responses={
        **NOT_FOUND,
        204: {"description": "Deleted, with its files"},
        409: {"description": "A queued or running run trains on it", "model": ErrorBody},
    },
)
async def delete_dataset(
    request: Request,
    engine: EngineDep,
    dataset_id: DatasetId,
    user: OptionalUser,
    settings: SettingsDep,
) -> Response:
    """Delete one of the caller's data sets and its files."""
    row = await run_in_threadpool(store.owned, engine, dataset_id=dataset_id, owner=user)
    if row is not None:
        busy = await run_in_threadpool(store.live_run_using, engine, row)
        if busy is not None:
            raise HTTPException(status_code=409, detail=in_use(dataset_id, busy))
    if row is None or not await run_in_threadpool(store.remove, engine, row, settings):
        raise HTTPException(status_code=404, detail=f"No data set {dataset_id} of yours.")
    return Response(status_code=204)
