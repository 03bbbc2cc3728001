"""Reading a demo form with an optional image upload, within UPLOAD_MAX_BYTES.

The body is read into memory as it arrives and refused as soon as it passes the cap (plus a
little room for the other fields), whatever Content-Length claims; then the multipart form is
parsed from that copy. The image bytes live only for the request: nothing is written to disk.
"""

from __future__ import annotations

from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request
from starlette.types import Message

from app.worker.errors import InvalidInput
from app.worker.images import human_bytes

# Room for the form's other fields and the multipart framing around the file.
FORM_OVERHEAD = 64 * 1024


def over_limit(max_bytes: int) -> InvalidInput:
    return InvalidInput("image", f"the upload is over the {human_bytes(max_bytes)} limit")


async def read_form_with_upload(
    request: Request, *, max_bytes: int, field: str = "image"
) -> tuple[FormData, bytes | None]:
    """The form's fields and the uploaded file's bytes (None when no file was chosen)."""
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
    data: bytes | None = None
    if isinstance(upload, UploadFile):
        data = await upload.read()
        if not data and not upload.filename:
            data = None  # the file input was left empty: no upload
        elif len(data) > max_bytes:
            raise over_limit(max_bytes)
    await form.close()
    return form, data
