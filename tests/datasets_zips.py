"""Zips for the upload tests, built in memory with zipfile and Pillow, and the upload call."""

from __future__ import annotations

import io
import stat
import zipfile
from pathlib import Path

import numpy as np
from fastapi.testclient import TestClient
from PIL import Image

from tests.web import csrf

Entry = tuple[str | zipfile.ZipInfo, bytes]


def image_bytes(seed: int, size: int = 16, fmt: str = "PNG") -> bytes:
    """A noise image (incompressible), `size` px square, in Pillow's format `fmt`."""
    pixels = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format=fmt)
    return out.getvalue()


def make_zip(entries: list[Entry], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=compression) as archive:
        for name, data in entries:
            archive.writestr(name, data)
    return out.getvalue()


def classes_zip(counts: dict[str, int], prefix: str = "", size: int = 16) -> bytes:
    """One folder per class, `n` noise PNGs in each."""
    entries: list[Entry] = []
    for c, (name, n) in enumerate(counts.items()):
        entries += [(f"{prefix}{name}/{i}.png", image_bytes(100 * c + i, size)) for i in range(n)]
    return make_zip(entries)


def symlink_entry(name: str, target: str) -> Entry:
    info = zipfile.ZipInfo(name)
    info.create_system = 3  # Unix: the high 16 bits of external_attr are st_mode
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info, target.encode()


def upload(
    client: TestClient,
    data: bytes,
    *,
    name: str | None = None,
    filename: str = "set.zip",
    token: str | None = None,
):
    """POST /api/datasets as the page's script would: the file and the CSRF header."""
    headers = {"X-CSRF-Token": token if token is not None else csrf(client)}
    form = {"name": name} if name is not None else {}
    return client.post(
        "/api/datasets",
        files={"file": (filename, data, "application/zip")},
        data=form,
        headers=headers,
    )


def files_under(root: Path) -> set[Path]:
    """Every file below `root` (none when it does not exist)."""
    return {p for p in root.rglob("*") if p.is_file() or p.is_symlink()} if root.exists() else set()
