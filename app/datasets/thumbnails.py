"""Thumbnails of uploaded images: decoded once, kept as PNGs, at most a few decodes at a time.

A kept image may be as large as DATASET_MAX_PIXELS (a 5 KB palette PNG can hold 40 MP). The
data set page asks for up to 300 thumbnails, so each is decoded once into
`DATA_DIR/thumbs/<data set id>/<class>-<n>.png` (written by rename, so a reader never sees
half a file) and served from there afterwards. A decode shrinks the image in its own mode
before anything else (`decode_image(..., preview=True)`: one decode at most 4 bytes a pixel, 160 MB for an
image of 40 MP, and a fraction of a full conversion's time); decodes run at most `DECODES` at
a time in the web process, and the requests waiting for one wait in the event loop
(`limiter`), not in threads of the pool every other route shares. A data set's thumbnails go
with it.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import tempfile
import threading
from pathlib import Path

from app.concurrency import LoopLimiter
from app.datasets import decoding
from app.settings import Settings

# Thumbnails decoded at once per web process: one per two cores, as full decodes.
DECODES = decoding.DECODES
_decoding = threading.BoundedSemaphore(DECODES)
# This event loop's limiter of thumbnails decoded at once (DECODES).
limiter = LoopLimiter(DECODES)


def folder(settings: Settings, dataset_id: int) -> Path:
    """DATA_DIR/thumbs/<id>: the data set's thumbnails."""
    return settings.data_dir / "thumbs" / str(dataset_id)


def _kept_path(settings: Settings, dataset_id: int, class_index: int, number: int) -> Path:
    return folder(settings, dataset_id) / f"{class_index}-{number}.png"


def kept(settings: Settings, dataset_id: int, class_index: int, number: int) -> bytes | None:
    """The thumbnail's PNG if it was made before, else None (a file read, no decode)."""
    with contextlib.suppress(OSError):
        return _kept_path(settings, dataset_id, class_index, number).read_bytes()
    return None


def thumbnail_png(
    settings: Settings, dataset_id: int, class_index: int, number: int, source: Path, size: int
) -> bytes | str:
    """The PNG thumbnail (`size` px square) of `source`, from the cache or decoded now; a
    str says why the image cannot be shown. Blocking: call it from a thread (`limiter`)."""
    found = kept(settings, dataset_id, class_index, number)
    if found is not None:
        return found
    from PIL import Image

    from app.worker.training.data.folder import decode_image

    cached = _kept_path(settings, dataset_id, class_index, number)
    with _decoding:
        with contextlib.suppress(OSError):  # made while this one waited
            return cached.read_bytes()
        pixels = decode_image(source, size, preview=True)
        if isinstance(pixels, str):
            return pixels
        out = io.BytesIO()
        Image.fromarray(pixels.transpose(1, 2, 0)).save(out, format="PNG")
        data = out.getvalue()
        with contextlib.suppress(OSError):
            cached.parent.mkdir(parents=True, exist_ok=True)
            handle, staging = tempfile.mkstemp(dir=cached.parent, prefix=".", suffix=".png")
            with os.fdopen(handle, "wb") as written:
                written.write(data)
            os.replace(staging, cached)
    return data


def remove(settings: Settings, dataset_id: int) -> None:
    """Delete the data set's thumbnails (nothing if there are none)."""
    shutil.rmtree(folder(settings, dataset_id), ignore_errors=True)
