"""Where uploaded data sets live, the per-user quota, and keeping or removing one whole.

Layout under DATA_DIR/datasets/uploads/: `.incoming/<random>.zip` while an upload arrives
(before its sender is known for sure), then `<owner>/.partial-<random>/` while it is unpacked,
renamed to `<owner>/<id>/` once the row exists. Any refusal removes what that upload wrote,
and an owner folder left empty by it; what a killed server left there is swept a day later.
"""

from __future__ import annotations

import contextlib
import posixpath
import secrets
import shutil
import time
from pathlib import Path

from sqlalchemy import Engine

from app.datasets import thumbnails
from app.datasets.entries import Caps
from app.datasets.extract import Extracted
from app.db import read_session, write_session
from app.models import User
from app.models.common import utcnow
from app.models.datasets import Dataset
from app.repos import datasets as rows
from app.repos import runs as run_rows
from app.repos.locks import lock_owner
from app.settings import Settings
from app.worker.errors import InvalidInput

UPLOADS = "uploads"  # under DATA_DIR/datasets
STALE_AFTER_S = 24 * 3600


def incoming_path(settings: Settings) -> Path:
    """A fresh path for an arriving zip (its folder is created); leftovers are swept first."""
    folder = settings.uploads_dir / ".incoming"
    folder.mkdir(parents=True, exist_ok=True)
    sweep_stale(settings)
    return folder / f"{secrets.token_hex(12)}.zip"


def sweep_stale(settings: Settings, max_age_s: float = STALE_AFTER_S) -> int:
    """Remove what a server killed mid-upload left: zips in `.incoming/` and `.partial-*`
    folders older than `max_age_s` (no upload lasts that long). Returns how many."""
    cutoff = time.time() - max_age_s
    removed = 0
    for path in (settings.uploads_dir / ".incoming").glob("*.zip"):
        with contextlib.suppress(OSError):
            if path.stat().st_mtime < cutoff:
                path.unlink()  # never the folder: an upload may be about to write into it
                removed += 1
    for path in settings.uploads_dir.glob("*/.partial-*"):
        with contextlib.suppress(OSError):
            if path.stat().st_mtime < cutoff:
                discard(path, settings)
                removed += 1
    return removed


def partial_dir(settings: Settings, owner_id: int) -> Path:
    """A fresh, empty folder inside the owner's folder to unpack into."""
    folder = settings.uploads_dir / str(owner_id) / f".partial-{secrets.token_hex(8)}"
    folder.mkdir(parents=True)
    return folder


def discard(path: Path, settings: Settings) -> None:
    """Remove a file or folder an upload wrote, and its owner folder if that is now empty."""
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
    parent = path.parent
    if parent != settings.uploads_dir and parent.parent == settings.uploads_dir:
        with contextlib.suppress(OSError):
            parent.rmdir()  # only when empty


def dataset_dir(settings: Settings, row: Dataset) -> Path:
    """The data set's folder on disk."""
    return settings.data_dir / "datasets" / row.folder


def class_images(settings: Settings, row: Dataset, name: str) -> list[Path]:
    """The kept images of one class, in a fixed order (train/ then val/ when split)."""
    root = dataset_dir(settings, row)
    split = (root / "train").is_dir() and (root / "val").is_dir()
    folders = [root / "train" / name, root / "val" / name] if split else [root / name]
    return [p for folder in folders if folder.is_dir() for p in sorted(folder.iterdir())]


def _quota_message(count: int, settings: Settings) -> str:
    return (
        f"you keep {count} data set{'s' if count != 1 else ''}, the most allowed "
        f"(DATASET_QUOTA_COUNT = {settings.dataset_quota_count}); delete one first"
    )


def check_room(engine: Engine, owner_id: int, settings: Settings) -> Caps:
    """Refuse (422) when the owner's quota is full; else the caps this upload unpacks under
    (the byte cap is the smaller of DATASET_MAX_EXTRACTED_BYTES and the quota left)."""
    with read_session(engine) as session:
        count, used = rows.usage(session, owner_id=owner_id)
    if count >= settings.dataset_quota_count:
        raise InvalidInput("file", _quota_message(count, settings))
    left = settings.dataset_quota_bytes - used
    if left <= 0:
        raise InvalidInput(
            "file",
            f"your data sets take {used:,} bytes, the most allowed (DATASET_QUOTA_BYTES = "
            f"{settings.dataset_quota_bytes:,}); delete one first",
        )
    by_quota = left < settings.dataset_max_extracted_bytes
    return Caps(
        files=settings.dataset_max_files,
        total_bytes=left if by_quota else settings.dataset_max_extracted_bytes,
        total_name="the bytes left in your quota, DATASET_QUOTA_BYTES"
        if by_quota
        else "DATASET_MAX_EXTRACTED_BYTES",
        ratio=settings.dataset_max_ratio,
        pixels=settings.dataset_max_pixels,
        classes=settings.dataset_max_classes,
        total_pixels=settings.dataset_max_total_pixels,
        decode_seconds=settings.dataset_max_decode_seconds,
    )


def keep(
    engine: Engine,
    *,
    owner_id: int,
    name: str,
    unpacked: Path,
    extracted: Extracted,
    settings: Settings,
) -> Dataset:
    """Record the data set and move `unpacked` to its final folder, in one transaction.

    The quota is checked again under the owner's lock, so two uploads at once cannot both
    pass it. Raises InvalidInput (422) when it is full; the caller then discards `unpacked`.
    """
    with write_session(engine) as session:
        lock_owner(session, owner_id)
        count, used = rows.usage(session, owner_id=owner_id)
        if count >= settings.dataset_quota_count:
            raise InvalidInput("file", _quota_message(count, settings))
        if used + extracted.disk_bytes > settings.dataset_quota_bytes:
            raise InvalidInput(
                "file",
                f"this data set's {extracted.disk_bytes:,} bytes would take your data sets past "
                f"{settings.dataset_quota_bytes:,} bytes (DATASET_QUOTA_BYTES)",
            )
        row = rows.create_dataset(
            session,
            owner_id=owner_id,
            name=name,
            folder="",
            classes=extracted.classes,
            skipped=extracted.skipped,
            skipped_names=extracted.skipped_names,
            disk_bytes=extracted.disk_bytes,
            now=utcnow(),
        )
        folder = f"{UPLOADS}/{owner_id}/{row.id}"
        rows.set_folder(session, row=row, folder=folder)
        final = settings.data_dir / "datasets" / folder
        if final.exists():  # left by a process killed before its commit: no row owns it
            shutil.rmtree(final)
        unpacked.rename(final)
        try:
            session.commit()
        except BaseException:
            final.rename(unpacked)
            raise
    return row


def same_folder(written: object, folder: str) -> bool:
    """Does a run's `folder` as written (`uploads/3/12/.`, `uploads//3/12`) name `folder`?"""
    if not isinstance(written, str) or not written:
        return False
    return posixpath.normpath(written.strip()) == posixpath.normpath(folder)


def live_run_using(engine: Engine, row: Dataset) -> int | None:
    """The id of one of the owner's queued or running runs that trains on this data set."""
    with read_session(engine) as session:
        for run in run_rows.runs_of(session, owner_id=row.owner_id):
            if run.live and same_folder(run.config.get("folder"), row.folder):
                return run.id
    return None


def remove(engine: Engine, row: Dataset, settings: Settings) -> bool:
    """Delete the row, then its folder; False when it was already gone."""
    with write_session(engine) as session:
        deleted = rows.delete_dataset(session, row=row)
    if deleted and row.folder.startswith(f"{UPLOADS}/"):
        shutil.rmtree(dataset_dir(settings, row), ignore_errors=True)
    if deleted and row.id is not None:
        thumbnails.remove(settings, row.id)
    return deleted


def owned(engine: Engine, *, dataset_id: int, owner: User | None) -> Dataset | None:
    """The data set if it is `owner`'s; None for a missing one and another user's alike."""
    if owner is None or owner.id is None:
        return None
    with read_session(engine) as session:
        return rows.get_dataset(session, dataset_id=dataset_id, owner_id=owner.id)


def list_for(engine: Engine, owner: User | None) -> list[Dataset]:
    """The owner's data sets, newest first (none for a visitor)."""
    if owner is None or owner.id is None:
        return []
    with read_session(engine) as session:
        return list(rows.datasets_of(session, owner_id=owner.id))
