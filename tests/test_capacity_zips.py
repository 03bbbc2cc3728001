"""Hostile zips refused before the work they would cost: a zip64 directory hidden behind a
classic end record that says "empty", more class folders than DATASET_MAX_CLASSES, more
pixels than DATASET_MAX_TOTAL_PIXELS (counted before decoding), a name with a NUL, a damaged
archive whose error has no text. Each refusal leaves nothing behind. SQLite and PostgreSQL."""

from __future__ import annotations

import io
import os
import struct
import zipfile
from pathlib import Path

from fastapi.testclient import TestClient

from tests.datasets_zips import classes_zip, files_under, upload
from tests.test_capacity_uploads import palette_png
from tests.web import client_for


def left_behind(client: TestClient) -> set[Path]:
    return files_under(client.app.state.settings.data_dir / "datasets")


def zip64_hiding(entries: int) -> bytes:
    """A zip of `entries` empty files whose classic end record says 0 entries and 0 bytes,
    while a zip64 end record (which zipfile believes) lists them all."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as archive:
        for i in range(entries):
            archive.writestr(f"a/{i}.txt", b"")
    data = out.getvalue()
    end = data.rfind(b"PK\x05\x06")
    size, offset = struct.unpack("<II", data[end + 12 : end + 20])
    record = struct.pack(
        "<4sQHHIIQQQQ", b"PK\x06\x06", 44, 45, 45, 0, 0, entries, entries, size, offset
    )
    locator = struct.pack("<4sIQI", b"PK\x06\x07", 0, end, 1)
    classic = struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, 0, 0, 0, 0, 0)
    return data[:end] + record + locator + classic


def test_a_zip64_directory_behind_an_empty_end_record_is_counted_first(
    database_url: str, tmp_path: Path
) -> None:
    data = zip64_hiding(3000)
    assert len(zipfile.ZipFile(io.BytesIO(data)).infolist()) == 3000  # what zipfile reads
    with client_for(database_url, tmp_path, DATASET_MAX_FILES=1000) as client:
        refused = upload(client, data)
        assert refused.status_code == 413
        detail = refused.json()["detail"]
        assert "3,000 entries" in detail and "DATASET_MAX_FILES" in detail
        assert left_behind(client) == set()


def test_more_class_folders_than_the_cap_are_refused_before_any_is_read(
    database_url: str, tmp_path: Path
) -> None:
    with client_for(database_url, tmp_path, DATASET_MAX_CLASSES=20) as client:
        refused = upload(client, classes_zip({f"c{i:02d}": 2 for i in range(21)}, size=8))
        assert refused.status_code == 413
        assert "21 class folders" in refused.text and "DATASET_MAX_CLASSES" in refused.text
        assert left_behind(client) == set()
        fits = upload(client, classes_zip({f"c{i:02d}": 2 for i in range(20)}, size=8))
        assert fits.status_code == 201, fits.text


def test_the_pixels_of_all_images_are_budgeted_before_each_is_decoded(
    database_url: str, tmp_path: Path
) -> None:
    side = 2000  # 4 MP each, a few KB as a palette PNG
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for i in range(6):
            archive.writestr(f"{'ab'[i % 2]}/{i}.png", palette_png(side, i))
    with client_for(database_url, tmp_path, DATASET_MAX_TOTAL_PIXELS=3 * side * side) as client:
        refused = upload(client, out.getvalue())
        assert refused.status_code == 413
        detail = refused.json()["detail"]
        assert "DATASET_MAX_TOTAL_PIXELS" in detail and f"{3 * side * side:,} pixels" in detail
        assert "'b/3.png'" in detail  # the fourth image: refused from its header
        assert left_behind(client) == set()


def test_an_entry_name_with_a_nul_is_refused_not_truncated(db_client: TestClient) -> None:
    data = bytearray(classes_zip({"cat": 2, "dog": 2}, size=8))
    for _ in range(2):  # the local header and the central directory both hold the name
        at = data.find(b"cat/0.png")
        data[at : at + 9] = b"cat/0\x00png"
    refused = upload(db_client, bytes(data))
    assert refused.status_code == 422
    assert "control character" in refused.json()["detail"]
    assert left_behind(db_client) == set()


def damaged_zip() -> bytes:
    """Two entries; the file is cut in the middle of the first one's data (the directory
    kept), so zipfile raises an EOFError without any text."""
    payload = os.urandom(200_000)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("a/0.png", payload)
        archive.writestr("b/0.png", payload)
    data = out.getvalue()
    info = zipfile.ZipFile(io.BytesIO(data)).infolist()[0]
    cut = info.header_offset + 30 + len(info.filename) + 1000
    directory = data.rfind(b"PK\x01\x02", 0, data.rfind(b"PK\x01\x02"))
    tail = bytearray(data[directory:])
    end = tail.rfind(b"PK\x05\x06")
    offset = struct.unpack_from("<I", tail, end + 16)[0]
    struct.pack_into("<I", tail, end + 16, offset - (directory - cut))
    return data[:cut] + bytes(tail)


def test_a_damaged_archive_says_what_is_wrong(db_client: TestClient) -> None:
    refused = upload(db_client, damaged_zip())
    assert refused.status_code == 422
    detail = refused.json()["detail"]
    assert "damaged at 'a/0.png'" in detail and "()" not in detail
    assert "cut short" in detail
    assert left_behind(db_client) == set()
