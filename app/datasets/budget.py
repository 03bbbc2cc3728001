"""Caps on what an upload costs before the work they bound is done, beside the per-entry
checks of app.datasets.entries:

- `check_zip64_directory`: the zip64 end record (which zipfile believes over the classic one)
  is held to DATASET_MAX_FILES and the directory size, before zipfile parses a single entry;
- `check_class_count`: DATASET_MAX_CLASSES, from the names alone, before anything is read;
- `PixelBudget`: DATASET_MAX_TOTAL_PIXELS over the whole archive, counted from each image's
  header before it is decoded in full;
- `DecodeBudget`: DATASET_MAX_DECODE_SECONDS over the whole archive, the CPU time its images
  take to decode (not the time they wait for a slot or the CPU), checked after each decode;
- `decoding()`: at most DECODES full decodes at once, each in a decoding process
  (app.datasets.decoding) holding at most 4 bytes a pixel (160 MB for an image of 40 MP); and
  `unpacking` (an anyio limiter) at most that many uploads unpacked at once, the others
  waiting in the event loop rather than in threads.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

import anyio

from app.datasets.decoding import DECODES
from app.datasets.entries import CENTRAL_BYTES_PER_ENTRY, Caps, too_many
from app.worker.errors import InvalidInput

ZIP64_LOCATOR = b"PK\x06\x07"
ZIP64_END = b"PK\x06\x06"
# Full image decodes (and archives unpacked) at once per web process: one per decoding
# process (app.datasets.decoding.DECODES, one per two cores).
_decodes = threading.BoundedSemaphore(DECODES)


def check_zip64_directory(archive_path: Path, caps: Caps) -> None:
    """Refuse an archive whose zip64 end record lists more entries than DATASET_MAX_FILES or a
    directory larger than they need. zipfile takes the zip64 record whenever its locator sits
    just before the classic end record, whatever the classic record says (an archive can claim
    "0 entries" there and list millions in zip64), so the same record is read here first."""
    with open(archive_path, "rb") as file:
        size = file.seek(0, 2)
        tail_length = min(size, 65_536 + 22)
        file.seek(size - tail_length)
        tail = file.read(tail_length)
        at = tail.rfind(b"PK\x05\x06")
        if at < 20 or tail[at - 20 : at - 16] != ZIP64_LOCATOR:
            return
        record_at = int.from_bytes(tail[at - 12 : at - 4], "little")
        if record_at >= size:
            raise InvalidInput("file", "not a readable zip archive (its zip64 record is missing)")
        file.seek(record_at)
        record = file.read(56)
    if len(record) < 56 or record[:4] != ZIP64_END:
        raise InvalidInput("file", "not a readable zip archive (its zip64 record is damaged)")
    entries = int.from_bytes(record[32:40], "little")
    directory_size = int.from_bytes(record[40:48], "little")
    if entries > caps.files:
        raise too_many(entries, caps)
    if directory_size > caps.files * CENTRAL_BYTES_PER_ENTRY:
        raise InvalidInput(
            "file",
            f"the archive's directory takes {directory_size:,} bytes, more than "
            f"{caps.files:,} entries (DATASET_MAX_FILES) need",
            status=413,
        )


def check_class_count(classes: list[str], caps: Caps) -> None:
    """Refuse more class folders than DATASET_MAX_CLASSES (a run's page, its metrics and its
    model's head grow with them)."""
    if len(classes) > caps.classes:
        raise InvalidInput(
            "file",
            f"the archive has {len(classes):,} class folders, over the limit of "
            f"{caps.classes:,} (DATASET_MAX_CLASSES)",
            status=413,
        )


class PixelBudget:
    """Pixels of the images of one archive, counted from their headers before each is decoded;
    InvalidInput past DATASET_MAX_TOTAL_PIXELS."""

    def __init__(self, caps: Caps) -> None:
        self.limit, self.used = caps.total_pixels, 0

    def take(self, pixels: int, label: str) -> None:
        self.used += pixels
        if self.used > self.limit:
            raise InvalidInput(
                "file",
                f"the images add up to more than {self.limit:,} pixels at '{label}', the limit "
                "for one archive (DATASET_MAX_TOTAL_PIXELS); send fewer or smaller images",
                status=413,
            )


class DecodeBudget:
    """CPU seconds spent decoding the images of one archive (app.datasets.decoding reports
    each decode's); InvalidInput (413) once past DATASET_MAX_DECODE_SECONDS. Time spent
    waiting for a slot or for the CPU is not counted."""

    def __init__(self, caps: Caps) -> None:
        self.limit, self.used = caps.decode_seconds, 0.0

    @property
    def remaining(self) -> float:
        """CPU seconds the archive's next decodes may still take."""
        return max(0.0, self.limit - self.used)

    def spend(self, seconds: float, label: str) -> None:
        """Count one decode of `seconds` (CPU s); InvalidInput past the limit."""
        self.used += seconds
        if self.used > self.limit:
            self.refuse(label)

    def refuse(self, label: str) -> NoReturn:
        """InvalidInput (413): the archive's images passed the limit by `label`."""
        raise InvalidInput(
            "file",
            f"the images took more than {self.limit:g} s to decode by '{label}', the limit "
            "for one archive (DATASET_MAX_DECODE_SECONDS); send fewer or smaller images",
            status=413,
        )


@contextmanager
def decoding() -> Iterator[None]:
    """Hold one of the process's DECODES slots for a full image decode."""
    with _decodes:
        yield


_unpackers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, anyio.CapacityLimiter] = (
    weakref.WeakKeyDictionary()
)


def unpacking() -> anyio.CapacityLimiter:
    """This event loop's limiter of uploads unpacked at once (DECODES)."""
    loop = asyncio.get_running_loop()
    found = _unpackers.get(loop)
    if found is None:
        found = _unpackers[loop] = anyio.CapacityLimiter(DECODES)
    return found
