"""A multipart upload streamed straight to one file, within a byte cap, CSRF-checked on the way.

The body is parsed as it arrives (python-multipart's streaming parser): the small text fields
are kept in memory, the one file part is written to the given path, and the upload is refused
as soon as it passes the cap, whatever Content-Length claims. No copy goes anywhere else (no
spooled temporary file). The CSRF token is checked when the file part begins, from the
`X-CSRF-Token` header or a `csrf_token` field sent before the file (a form puts its hidden
field first), so a forged request never gets a byte written.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request

from app.csrf import CSRF_FIELD, CsrfRefused
from app.worker.errors import InvalidInput

MAX_FIELDS = 8
MAX_FIELD_BYTES = 4096
FILE_FIELD = "file"
BODY_OVERHEAD = 256 * 1024  # the other fields, part headers and boundaries around the file


@dataclass
class Received:
    """The form's text fields, the file's name as sent, and its size in bytes."""

    fields: dict[str, str] = field(default_factory=dict)
    filename: str | None = None
    size: int = 0


def too_large(max_bytes: int) -> InvalidInput:
    return InvalidInput(
        FILE_FIELD,
        f"the upload is over the limit of {max_bytes:,} bytes (DATASET_MAX_UPLOAD_BYTES)",
        status=413,
    )


class _Reader:
    """The parser's callbacks: one part at a time, its headers, then its data."""

    def __init__(
        self, dest: Path, max_bytes: int, token_ok: Callable[[str | None], bool], header: str | None
    ) -> None:
        self.dest = dest
        self.max_bytes = max_bytes
        self.token_ok = token_ok
        self.header_token = header
        self.received = Received()
        self.out: IO[bytes] | None = None
        self.field_name = ""
        self.is_file = False
        self.value = bytearray()
        self.header_name = bytearray()
        self.header_value = bytearray()
        self.headers: dict[str, bytes] = {}
        self.parts = 0
        self.verified = False  # the file part began with a valid token

    def token(self) -> str | None:
        return self.header_token or self.received.fields.get(CSRF_FIELD)

    def on_part_begin(self) -> None:
        self.parts += 1
        if self.parts > MAX_FIELDS + 1:
            raise InvalidInput("form", f"more than {MAX_FIELDS + 1} parts in the form")
        self.headers, self.value, self.is_file = {}, bytearray(), False

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self.header_name += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self.header_value += data[start:end]

    def on_header_end(self) -> None:
        self.headers[bytes(self.header_name).decode("latin-1").lower()] = bytes(self.header_value)
        self.header_name, self.header_value = bytearray(), bytearray()

    def on_headers_finished(self) -> None:
        _, options = parse_options_header(self.headers.get("content-disposition", b""))
        self.field_name = options.get(b"name", b"").decode("utf-8", "replace")
        self.is_file = b"filename" in options
        if not self.is_file:
            if self.field_name == FILE_FIELD:
                raise InvalidInput(
                    FILE_FIELD,
                    "send the zip as a file (a part whose Content-Disposition has a filename), "
                    "not as a text field",
                )
            return
        if self.field_name != FILE_FIELD:
            raise InvalidInput(FILE_FIELD, f"send the zip in the field '{FILE_FIELD}'")
        if self.out is not None or self.received.filename is not None:
            raise InvalidInput(FILE_FIELD, "send one zip file per upload")
        if not self.token_ok(self.token()):
            raise CsrfRefused()
        self.verified = True
        self.received.filename = options[b"filename"].decode("utf-8", "replace")
        self.out = open(self.dest, "xb")  # noqa: SIM115  (closed at the part's end or close())

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self.is_file:
            assert self.out is not None
            self.received.size += end - start
            if self.received.size > self.max_bytes:
                raise too_large(self.max_bytes)
            self.out.write(data[start:end])
            return
        self.value += data[start:end]
        if len(self.value) > MAX_FIELD_BYTES:
            raise InvalidInput(self.field_name[:40] or "form", f"over {MAX_FIELD_BYTES} bytes")

    def on_part_end(self) -> None:
        if self.is_file:
            if self.out is not None:
                self.out.close()
                self.out = None
            return
        self.received.fields[self.field_name] = self.value.decode("utf-8", "replace")

    def close(self) -> None:
        if self.out is not None:
            self.out.close()
            self.out = None


async def receive_file(
    request: Request,
    dest: Path,
    *,
    max_bytes: int,
    token_ok: Callable[[str | None], bool],
    header_token: str | None,
    on_verified: Callable[[], Awaitable[None]] | None = None,
) -> Received:
    """Stream the multipart body's `file` part into `dest` (created; the caller removes it).

    Raises InvalidInput (415 for a body that is not multipart/form-data, 413 past `max_bytes`, 422
    for a form without a file) or CsrfRefused. `token_ok` judges the CSRF token;
    `on_verified` (which may raise InvalidInput) is awaited once the token has checked out, within
    one chunk of the file part's start, so a refusal it gives costs no more of the body.
    """
    kind, options = parse_options_header(request.headers.get("content-type", ""))
    boundary = options.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise InvalidInput(FILE_FIELD, "send the zip as multipart/form-data, field 'file'", 415)
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > max_bytes + BODY_OVERHEAD:
        raise too_large(max_bytes)
    reader = _Reader(dest, max_bytes, token_ok, header_token)
    parser = MultipartParser(
        boundary,
        {
            "on_part_begin": reader.on_part_begin,
            "on_part_data": reader.on_part_data,
            "on_part_end": reader.on_part_end,
            "on_header_field": reader.on_header_field,
            "on_header_value": reader.on_header_value,
            "on_header_end": reader.on_header_end,
            "on_headers_finished": reader.on_headers_finished,
        },
    )
    total = 0
    try:
        async for chunk in request.stream():
            total += len(chunk)
            if total > max_bytes + BODY_OVERHEAD:
                raise too_large(max_bytes)
            parser.write(chunk)
            if reader.verified and on_verified is not None:
                check, on_verified = on_verified, None
                await check()
        parser.finalize()
    except (InvalidInput, CsrfRefused):
        raise
    except Exception as error:  # the parser's own errors: a malformed body
        raise InvalidInput("form", f"not a well-formed multipart body ({error})") from None
    finally:
        reader.close()
    if not token_ok(reader.token()):
        raise CsrfRefused()
    if not reader.received.filename and reader.received.size == 0:
        raise InvalidInput(FILE_FIELD, "no file: choose a .zip of class folders")
    return reader.received
