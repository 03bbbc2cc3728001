"""Reading a demo form with an optional image upload, within UPLOAD_MAX_BYTES.

The body is read into memory as it arrives and refused as soon as it passes the cap (plus a
little room for the other fields), whatever Content-Length claims; then the multipart form is
parsed from that copy. The image bytes live only for the request: nothing is written to disk.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starlette.datastructures import FormData, ImmutableMultiDict, UploadFile
from starlette.requests import Request
from starlette.types import Message

from app.demos.forms import MultiValues
from app.demos.present import placement
from app.demos.runner import run_demo
from app.worker.errors import InvalidInput
from app.worker.images import check_photo, decode_upload, human_bytes, sample_photo

# The photo picker's value while an uploaded photo is shown (the page script adds the option).
UPLOAD_CHOICE = "upload"

# What a page calls the learner's uploaded photo.
UPLOAD_NAME = "your photo"

# Room for the form's other fields and the multipart framing around the file.
FORM_OVERHEAD = 64 * 1024


@dataclass(frozen=True)
class Upload:
    """An uploaded file, held for one request."""

    name: str  # as the browser sent it, trimmed to a short, printable label
    data: bytes


def _label(filename: str | None) -> str:
    name = "".join(ch for ch in (filename or "") if ch.isprintable()).strip()
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    return (name[:60] + "…") if len(name) > 60 else (name or "unnamed file")


def check_no_lost_upload(photo: str) -> str:
    """The sample photo named by the picker. The upload choice without a file (a shared link,
    or a form sent without the page script) cannot be honoured: uploads are not kept."""
    if photo == UPLOAD_CHOICE:
        raise InvalidInput(
            "photo",
            "your photo is not kept on the server; choose it again under “Or your own photo”, "
            "or pick a sample photo",
        )
    return check_photo(photo)


def over_limit(max_bytes: int) -> InvalidInput:
    return InvalidInput("image", f"the upload is over the {human_bytes(max_bytes)} limit")


async def read_form_with_upload(
    request: Request, *, max_bytes: int, field: str = "image"
) -> tuple[FormData, Upload | None]:
    """The form's fields and the uploaded file (None when no file was chosen)."""
    limit = max_bytes + FORM_OVERHEAD
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise over_limit(max_bytes)
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > limit:
            raise over_limit(max_bytes)
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": bytes(body), "more_body": False}

    form = await Request(request.scope, replay).form(max_files=1, max_fields=64)
    upload = form.get(field)
    found: Upload | None = None
    if isinstance(upload, UploadFile):
        data = await upload.read()
        if len(data) > max_bytes:
            raise over_limit(max_bytes)
        if data or upload.filename:  # else the file input was left empty: no upload
            found = Upload(_label(upload.filename), data)
    await form.close()
    return form, found


@dataclass(frozen=True)
class PhotoForm:
    """A photo demo's request: its fields, the uploaded photo (None when none was sent) and the
    upload's refusal (over UPLOAD_MAX_BYTES, a broken form), shown beside the form."""

    fields: MultiValues
    upload: Upload | None = None
    error: InvalidInput | None = None


async def read_photo_form(request: Request) -> PhotoForm:
    """A demo's multipart POST: the fields and the photo, within UPLOAD_MAX_BYTES. Never raises
    for bad input: the refusal is kept in `error`, with no fields."""
    max_bytes = request.app.state.settings.upload_max_bytes
    try:
        fields, upload = await read_form_with_upload(request, max_bytes=max_bytes)
    except InvalidInput as error:
        return PhotoForm(ImmutableMultiDict(), None, error)
    return PhotoForm(fields, upload)


async def chosen_photo(request: Request, photo: str, upload: Upload | None) -> tuple[str, Any]:
    """(name, image) the demo works on: the upload decoded (`name` "your photo"), else the
    sample photo the picker names. The image is an RGB PIL image, longest side at most 512 px;
    decoding runs in the demos' thread pool. Raises InvalidInput (`image` or `photo`)."""
    if upload is not None:
        max_bytes = request.app.state.settings.upload_max_bytes
        image = await run_demo(request, decode_upload, upload.data, max_bytes=max_bytes)
        return UPLOAD_NAME, image
    name = check_no_lost_upload(photo)
    return name, await run_demo(request, sample_photo, name)


def photo_context(request: Request, form: PhotoForm, values: dict[str, str]) -> dict[str, Any]:
    """What every photo demo's page reads besides its result: the form's values, whether a
    photo was uploaded and its name, and where the page sits among the demos."""
    return {
        "form": values,
        "error": None,
        "uploaded": form.upload is not None,
        "upload_name": form.upload.name if form.upload else None,
        **placement(request),
    }
