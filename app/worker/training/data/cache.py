"""Decoded data sets on disk under DATA_DIR/cache/, keyed by the source's content.

A data set is decoded once into `Decoded` (uint8 images N×3×S×S, int64 labels, the class
names, a fixed train/val split where the source has one, and the files skipped by reason) and
saved as `.npy` arrays beside a `meta.json`. The key hashes what determines the pixels: the
source's bytes (or, for the generated shapes, the generator's version and arguments), the
image size and this decoder's version; change any of them and a new entry is made.

An entry is written into a temporary folder and renamed into place, so a reader never sees
half an entry, and two processes decoding the same set at once both end with a valid one.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

# Bump when any decoder changes what it stores, so old entries are not reused.
FORMAT = 1
UNASSIGNED, TRAIN, VAL = -1, 0, 1  # values of Decoded.split


@dataclass
class Decoded:
    """A whole data set, decoded: what the cache stores."""

    images: np.ndarray  # (N, 3, S, S) uint8
    labels: np.ndarray  # (N,) int64, indices into classes
    classes: list[str]
    split: np.ndarray  # (N,) int8: TRAIN, VAL, or UNASSIGNED (split later by val_fraction)
    skipped: dict[str, int] = field(default_factory=dict)  # reason → files
    hflip: bool = True  # is a mirror image still of the same class?


def digest_files(paths: Iterable[Path], root: Path) -> str:
    """BLAKE2b over each file's path relative to `root` and its bytes, in the given order."""
    hasher = hashlib.blake2b(digest_size=20)
    for path in paths:
        hasher.update(path.relative_to(root).as_posix().encode() + b"\0")
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                hasher.update(block)
        hasher.update(b"\1")
    return hasher.hexdigest()


def cache_key(parts: dict[str, Any]) -> str:
    """24 hex digits of SHA-256 over the parts (JSON, keys sorted) and the storage format."""
    text = json.dumps({"format": FORMAT, **parts}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def load_or_build(
    cache_dir: Path, name: str, parts: dict[str, Any], build: Callable[[], Decoded]
) -> tuple[Decoded, bool]:
    """The cached entry for (name, parts), building and storing it first when absent.

    Returns (decoded, hit): hit is True when nothing was decoded. A damaged entry (a missing
    or unreadable file) is rebuilt.
    """
    entry = cache_dir / f"{name}-{cache_key(parts)}"
    if entry.is_dir():
        try:
            decoded = _read(entry)
        except (OSError, ValueError, KeyError):
            shutil.rmtree(entry, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                os.utime(entry)  # used now: the last to be evicted (`evict`)
            return decoded, True
    decoded = build()
    _write(entry, decoded)
    return decoded, False


def _read(entry: Path) -> Decoded:
    meta = json.loads((entry / "meta.json").read_text())
    return Decoded(
        images=np.load(entry / "images.npy"),
        labels=np.load(entry / "labels.npy"),
        split=np.load(entry / "split.npy"),
        classes=list(meta["classes"]),
        skipped=dict(meta["skipped"]),
        hflip=bool(meta["hflip"]),
    )


def _write(entry: Path, decoded: Decoded) -> None:
    entry.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{entry.name}-", dir=entry.parent))
    try:
        np.save(staging / "images.npy", np.ascontiguousarray(decoded.images, dtype=np.uint8))
        np.save(staging / "labels.npy", decoded.labels.astype(np.int64))
        np.save(staging / "split.npy", decoded.split.astype(np.int8))
        meta = {"classes": decoded.classes, "skipped": decoded.skipped, "hflip": decoded.hflip}
        (staging / "meta.json").write_text(json.dumps(meta))
        # Another process may have stored the same entry first: then keep theirs.
        with contextlib.suppress(OSError):
            os.rename(staging, entry)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


# A staging folder this old was left by a process that died while writing it.
STALE_STAGING_S = 24 * 3600


def _bytes_under(folder: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(folder):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(root, name)).st_size
    return total


def evict(cache_dir: Path, max_bytes: int, now: float | None = None) -> list[str]:
    """Remove entries, least recently used first, until the cache holds at most `max_bytes`
    (a reader that loses an entry meanwhile rebuilds it); also staging folders older than a
    day. Returns the names removed, oldest first. A missing `cache_dir` holds nothing.
    """
    if not cache_dir.is_dir():
        return []
    now = time.time() if now is None else now
    entries: list[tuple[float, int, Path]] = []
    removed: list[str] = []
    for path in cache_dir.iterdir():
        try:
            info = path.lstat()
        except OSError:
            continue
        if not path.is_dir() or path.is_symlink():
            continue
        if path.name.startswith("."):
            if now - info.st_mtime > STALE_STAGING_S:
                shutil.rmtree(path, ignore_errors=True)
                removed.append(path.name)
            continue
        entries.append((info.st_mtime, _bytes_under(path), path))
    total = sum(size for _, size, _ in entries)
    for _, size, path in sorted(entries, key=lambda e: e[0]):
        if total <= max_bytes:
            break
        shutil.rmtree(path, ignore_errors=True)
        total -= size
        removed.append(path.name)
    return removed
