"""One upload from start to end, as the JSON API and the page both take it.

1. The CSRF token is checked first: at once when it is in the `X-CSRF-Token` header, else
   from the form field before the file part is written.
2. Then, if the caller already has an account or guest row, its quota: a full quota is
   refused before the file is read (within one chunk of it for a form's field token). The
   body streams into `uploads/.incoming/<random>.zip`, within DATASET_MAX_UPLOAD_BYTES.
3. The caller's user row is made if it is a first saved action (a guest), the quota checked,
   and the zip unpacked member by member into `uploads/<owner>/.partial-<random>/`.
4. The row is written and the folder renamed to `uploads/<owner>/<id>/` in one transaction.
Any refusal removes everything this upload wrote; the zip itself is removed in every case.
"""

from __future__ import annotations

import functools
from pathlib import Path

import anyio.to_thread
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import Engine
from starlette.requests import Request

from app.auth import acting_user
from app.csrf import CSRF_HEADER, CsrfRefused, token_check
from app.datasets import budget, store
from app.datasets.extract import extract_zip
from app.datasets.upload import Received, receive_file
from app.inputs import storable
from app.models import User
from app.models.datasets import Dataset
from app.settings import Settings
from app.worker.errors import InvalidInput

MAX_NAME = 80


def data_set_name(received: Received) -> str:
    """The `name` field, else the zip's file name without `.zip`; at most 80 characters.

    Raises InvalidInput naming `name` for text a database cannot store."""
    given = received.fields.get("name", "").strip()
    if not given and received.filename:
        given = received.filename.replace("\\", "/").rsplit("/", 1)[-1]
        if given.lower().endswith(".zip"):
            given = given[:-4]
        given = given[:MAX_NAME]  # a long file name is shortened; a long `name` is refused
    given = "".join(ch for ch in given if ch.isprintable()).strip()
    try:
        storable(given)
    except ValueError as error:
        raise InvalidInput("name", str(error)) from None
    if len(given) > MAX_NAME:
        raise InvalidInput("name", f"at most {MAX_NAME} characters, got {len(given)}")
    return given or "my data set"


async def accept_upload(request: Request, user: User | None, settings: Settings) -> Dataset:
    """Receive, check, unpack and record one uploaded zip for the caller.

    Raises InvalidInput (field and reason; status 413, 415 or 422) or CsrfRefused; nothing the
    upload wrote is left behind then.
    """
    engine = request.app.state.engine
    token_ok = token_check(request)
    header = request.headers.get(CSRF_HEADER)

    async def check_room() -> None:
        if user is not None and user.id is not None:
            await run_in_threadpool(store.check_room, engine, user.id, settings)

    # The token first, then the quota: a forged request learns nothing of the user's quota.
    if header is not None:
        if not token_ok(header):
            raise CsrfRefused()
        await check_room()
    incoming = store.incoming_path(settings)
    try:
        received = await receive_file(
            request,
            incoming,
            max_bytes=settings.dataset_max_upload_bytes,
            token_ok=token_ok,
            header_token=header,
            on_verified=None if header is not None else check_room,
        )
        name = data_set_name(received)
        owner = user if user is not None else await acting_user(request, None)
        assert owner.id is not None
        # At most budget.DECODES uploads unpack at once; the rest wait here, holding no thread.
        return await anyio.to_thread.run_sync(
            functools.partial(_unpack, engine, owner.id, name, incoming, settings),
            limiter=budget.unpacking(),
        )
    finally:
        incoming.unlink(missing_ok=True)


def _unpack(engine: Engine, owner_id: int, name: str, archive: Path, settings: Settings) -> Dataset:
    caps = store.check_room(engine, owner_id, settings)
    unpacked = store.partial_dir(settings, owner_id)
    try:
        extracted = extract_zip(archive, unpacked, caps)
        return store.keep(
            engine,
            owner_id=owner_id,
            name=name,
            unpacked=unpacked,
            extracted=extracted,
            settings=settings,
        )
    except BaseException:
        store.discard(unpacked, settings)
        raise
