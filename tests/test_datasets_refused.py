"""Bad uploads to POST /api/datasets, one test each: the status, a message naming the field and
the cause, and nothing written anywhere (no file in DATA_DIR, no row).

Each zip is built in the test; the caps are lowered through the settings where a test needs
one passed with a few kilobytes.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.datasets_zips import (
    classes_zip,
    files_under,
    image_bytes,
    make_zip,
    symlink_entry,
    upload,
)
from tests.web import MakeClient, csrf


def refused(client: TestClient, data: bytes, status: int, *phrases: str, **kwargs) -> None:
    """The upload gets `status`, a detail starting with its field and holding each phrase,
    and leaves no file anywhere under the test's folder and no data set listed."""
    root = client.app.state.settings.data_dir.parent
    before = files_under(root)
    response = upload(client, data, **kwargs)
    assert response.status_code == status, response.text
    detail = response.json()["detail"]
    field = "name" if "name" in kwargs else "file"
    assert detail.startswith(f"{field}: "), detail
    for phrase in phrases:
        assert phrase in detail, detail
    new = {p for p in files_under(root) - before if ".sqlite3" not in p.name}
    assert new == set()
    if not before - {p for p in before if ".sqlite3" in p.name}:
        uploads = client.app.state.settings.uploads_dir
        left = [p.name for p in uploads.iterdir() if p.name != ".incoming"]
        assert left == [], left  # not even an empty folder for the user
        assert client.get("/api/datasets").json() == []


def two_classes() -> list[tuple[str, bytes]]:
    return [(f"{c}/{i}.png", image_bytes(10 * n + i)) for n, c in enumerate("ab") for i in range(2)]


def test_a_corrupt_zip(make_client: MakeClient) -> None:
    client = make_client()
    refused(client, b"PK\x03\x04 this is not really a zip", 422, "not a readable zip")
    whole = classes_zip({"a": 2, "b": 2})
    refused(client, whole[: len(whole) // 2], 422, "not a readable zip")


def test_a_damaged_entry(make_client: MakeClient) -> None:
    data = bytearray(make_zip(two_classes()))
    first = zipfile.ZipFile(io.BytesIO(data)).infolist()[0]
    start = first.header_offset + 30 + len(first.filename) + len(first.extra)
    middle = start + first.compress_size // 2
    data[middle : middle + 40] = bytes(40)  # the compressed bytes, not the headers
    refused(make_client(), bytes(data), 422, "damaged")


def test_a_zip_slip_entry(make_client: MakeClient, tmp_path: Path) -> None:
    data = make_zip([*two_classes(), ("../x.png", image_bytes(1)), ("a/../../y.png", b"y")])
    refused(make_client(), data, 422, "'../x.png'", "'..'")
    assert not list(tmp_path.rglob("x.png")) and not list(tmp_path.rglob("y.png"))


def test_an_absolute_path(make_client: MakeClient, tmp_path: Path) -> None:
    target = tmp_path / "abs.png"
    refused(make_client(), make_zip([*two_classes(), (str(target), b"x")]), 422, "absolute path")
    assert not target.exists()


def test_a_drive_letter_or_backslashes(make_client: MakeClient) -> None:
    client = make_client()
    refused(client, make_zip([*two_classes(), ("C:/x.png", b"x")]), 422, "drive letter")
    refused(client, make_zip([*two_classes(), ("a\\..\\..\\x.png", b"x")]), 422, "backslashes")


def test_a_symlink_entry(make_client: MakeClient, tmp_path: Path) -> None:
    data = make_zip([*two_classes(), symlink_entry("a/link.png", "/etc/passwd")])
    refused(make_client(), data, 422, "'a/link.png'", "symbolic link")
    assert not [p for p in tmp_path.rglob("*") if p.is_symlink()]


def test_a_device_entry(make_client: MakeClient) -> None:
    import stat

    info = zipfile.ZipInfo("a/dev.png")
    info.create_system = 3
    info.external_attr = (stat.S_IFCHR | 0o666) << 16
    refused(make_client(), make_zip([*two_classes(), (info, b"")]), 422, "device")


def test_a_bomb_entry_stops_at_the_ratio_cap(make_client: MakeClient) -> None:
    bomb = make_zip([*two_classes(), ("a/zeros.png", bytes(30_000_000))])
    assert len(bomb) < 100_000
    refused(make_client(), bomb, 413, "'a/zeros.png'", "200 times", "DATASET_MAX_RATIO")


def test_an_archive_of_nothing_but_a_nested_zip(make_client: MakeClient) -> None:
    inner = make_zip([("huge.bin", bytes(5_000_000))])
    data = make_zip([("a/in.zip", inner), ("b/in.zip", inner)])
    refused(make_client(), data, 422, "no usable images", "archive inside the archive")


def test_one_class_only(make_client: MakeClient) -> None:
    refused(make_client(), classes_zip({"cats": 3}, prefix="set/"), 422, "one class ('cats')")


def test_an_empty_class(make_client: MakeClient) -> None:
    client = make_client()
    empty_folder = make_zip([*two_classes(), ("c/", b"")])
    refused(client, empty_folder, 422, "class 'c' has no usable images")
    only_junk = make_zip([*two_classes(), ("c/notes.txt", b"n"), ("c/._0.png", b"\x00")])
    refused(client, only_junk, 422, "class 'c' has no usable images", "not decodable")


def test_a_class_of_one_image_without_a_split(make_client: MakeClient) -> None:
    """Training holds one image of each class out, so a one-image class could never train:
    the upload says so instead of a run failing later."""
    client = make_client()
    data = classes_zip({"a": 1, "b": 3, "c": 1})
    refused(client, data, 422, "class 'a', 'c' has only 1 usable image", "at least 2")
    # With train/ and val/ given, one training image per class is enough.
    split = make_zip(
        [
            ("train/a/0.png", image_bytes(1)),
            ("train/b/0.png", image_bytes(2)),
            ("val/a/0.png", image_bytes(3)),
            ("val/b/0.png", image_bytes(4)),
        ]
    )
    assert upload(client, split).status_code == 201


def test_only_non_images(make_client: MakeClient) -> None:
    data = make_zip([("a/x.jpg", b"not a jpeg"), ("b/y.txt", b"text")])
    refused(make_client(), data, 422, "no usable images", "not decodable as an image: 2")


def test_over_the_upload_bytes_cap(make_client: MakeClient) -> None:
    data = classes_zip({"a": 3, "b": 3})
    refused(make_client(DATASET_MAX_UPLOAD_BYTES=len(data) - 1), data, 413, "DATASET_MAX_UPLOAD")


def test_over_the_file_count_cap(make_client: MakeClient) -> None:
    data = classes_zip({"a": 3, "b": 3})
    refused(make_client(DATASET_MAX_FILES=5), data, 413, "6 entries", "DATASET_MAX_FILES")


def test_a_central_directory_too_large_for_the_file_count_cap(make_client: MakeClient) -> None:
    long = "/".join(["x" * 200] * 26)  # a 5,225-byte path: 5 entries need at most 5 KiB
    data = make_zip([*two_classes()[:3], (f"a/{long}.png", image_bytes(9))])
    refused(make_client(DATASET_MAX_FILES=5), data, 413, "directory takes", "DATASET_MAX_FILES")


def test_over_the_extracted_bytes_cap(make_client: MakeClient) -> None:
    data = classes_zip({"a": 3, "b": 3}, size=32)  # noise: ~3 KB each, barely compressible
    client = make_client(DATASET_MAX_EXTRACTED_BYTES=8_000)
    refused(client, data, 413, "8,000 bytes", "DATASET_MAX_EXTRACTED_BYTES")


def test_over_the_pixel_cap(make_client: MakeClient) -> None:
    data = make_zip([*two_classes(), ("b/big.png", image_bytes(5, size=40))])
    refused(make_client(DATASET_MAX_PIXELS=1_000), data, 422, "1,600 pixels", "DATASET_MAX_PIXELS")


def test_past_the_decode_time_budget(make_client: MakeClient) -> None:
    # A budget no decode fits in: the first image's decode passes it.
    client = make_client(DATASET_MAX_DECODE_SECONDS=1e-9)
    refused(client, classes_zip({"a": 2, "b": 2}), 413, "DATASET_MAX_DECODE_SECONDS", "decode")


def test_one_image_past_the_decode_time_budget_is_stopped_there(make_client: MakeClient) -> None:
    # ~40 MP in a few KB: ~0.3 s of CPU to decode; the decoder is stopped at 0.05 s and the
    # upload refused naming the image, with no trace of the stop left behind.
    from tests.test_capacity_uploads import palette_png

    data = make_zip([("a/big.png", palette_png(6300, 1)), *two_classes()])
    client = make_client(DATASET_MAX_DECODE_SECONDS=0.05)
    refused(client, data, 413, "DATASET_MAX_DECODE_SECONDS", "'a/big.png'")


def test_over_the_quota_bytes(make_client: MakeClient) -> None:
    data = classes_zip({"a": 3, "b": 3}, size=32)
    refused(make_client(DATASET_QUOTA_BYTES=8_000), data, 413, "quota", "DATASET_QUOTA_BYTES")


def test_a_second_upload_while_the_quota_is_full(make_client: MakeClient) -> None:
    client = make_client(DATASET_QUOTA_COUNT=1)
    assert upload(client, classes_zip({"a": 2, "b": 2})).status_code == 201
    kept = files_under(client.app.state.settings.data_dir)
    response = upload(client, classes_zip({"c": 2, "d": 2}))
    assert response.status_code == 422
    assert response.json()["detail"].startswith("file: you keep 1 data set")
    assert "DATASET_QUOTA_COUNT" in response.json()["detail"]
    assert files_under(client.app.state.settings.data_dir) == kept
    assert len(client.get("/api/datasets").json()) == 1


def test_with_the_quota_full_a_forged_or_missing_token_is_still_403(
    make_client: MakeClient,
) -> None:
    """The token is checked before the quota: a forged request is told nothing about it."""
    client = make_client(DATASET_QUOTA_COUNT=1)
    assert upload(client, classes_zip({"a": 2, "b": 2})).status_code == 201
    kept = files_under(client.app.state.settings.data_dir)
    data = classes_zip({"c": 2, "d": 2})
    assert upload(client, data, token="forged").status_code == 403
    files = {"file": ("set.zip", data, "application/zip")}
    assert client.post("/api/datasets", files=files).status_code == 403  # no token at all
    assert client.post("/datasets", files=files).status_code == 403  # the page's form
    # A form sending its token as the field before the file meets the quota.
    token = csrf(client, "/datasets")
    response = client.post("/api/datasets", data={"csrf_token": token}, files=files)
    assert response.status_code == 422
    assert "DATASET_QUOTA_COUNT" in response.json()["detail"]
    assert files_under(client.app.state.settings.data_dir) == kept


def test_a_name_too_long(make_client: MakeClient) -> None:
    refused(make_client(), classes_zip({"a": 1, "b": 1}), 422, "at most 80", name="n" * 81)


def test_no_csrf_token_is_403_and_writes_nothing(make_client: MakeClient) -> None:
    client = make_client()
    before = files_under(client.app.state.settings.data_dir)
    response = upload(client, classes_zip({"a": 1, "b": 1}), token="forged")
    assert response.status_code == 403
    assert files_under(client.app.state.settings.data_dir) == before


def test_not_multipart_is_415(make_client: MakeClient) -> None:
    client = make_client()
    response = client.post("/api/datasets", json={"file": "x"})
    assert response.status_code == 415
    assert response.json()["detail"].startswith("file: ")


def test_the_zip_sent_as_a_text_field_is_named_as_such(make_client: MakeClient) -> None:
    client = make_client()
    data = classes_zip({"a": 2, "b": 2})  # over the 4 KB a text field may hold
    for body in (data, data[:100]):
        response = client.post(
            "/api/datasets",
            files={"file": (None, body)},  # no filename: a text field, not a file
            headers={"X-CSRF-Token": csrf(client, "/datasets")},
        )
        assert response.status_code == 422, response.text
        assert response.json()["detail"].startswith("file: send the zip as a file"), response.text
    assert client.get("/api/datasets").json() == []


def test_a_long_file_name_is_shortened_into_the_name(make_client: MakeClient) -> None:
    client = make_client()
    long_name = "holiday pictures " * 20  # 340 characters
    response = upload(client, classes_zip({"a": 2, "b": 2}), filename=long_name + ".zip")
    assert response.status_code == 201, response.text
    assert response.json()["name"] == long_name[:80].strip()
    # A `name` typed in is the user's own words: too long is refused, not cut.
    refused(client, classes_zip({"a": 2, "b": 2}), 422, "at most 80", name=long_name)


def test_a_bomb_is_stopped_at_the_cap_not_after_it(tmp_path: Path) -> None:
    """Unpacked directly: what was on disk when the refusal came is within the cap (the
    caller then removes it), however large the entry would have grown."""
    from app.datasets.entries import Caps
    from app.datasets.extract import CHUNK, extract_zip
    from app.worker.errors import InvalidInput

    archive = tmp_path / "bomb.zip"
    archive.write_bytes(make_zip([*two_classes(), ("a/zeros.png", bytes(50_000_000))]))
    compressed = zipfile.ZipFile(archive).getinfo("a/zeros.png").compress_size
    target = tmp_path / "out"
    target.mkdir()
    caps = Caps(files=100, total_bytes=10**9, total_name="-", ratio=50, pixels=10**6)
    with pytest.raises(InvalidInput) as refusal:
        extract_zip(archive, target, caps)
    assert refusal.value.status == 413
    on_disk = sum(p.stat().st_size for p in files_under(target))
    assert on_disk <= 50 * compressed + 4 * 2 * 16 * 16 * 3 + CHUNK
    assert on_disk < 5_000_000  # a tenth of the 50 MB the entry would grow to
    caps = Caps(files=100, total_bytes=20_000, total_name="X", ratio=10**6, pixels=10**6)
    target = tmp_path / "out2"
    target.mkdir()
    with pytest.raises(InvalidInput, match="past 20,000 bytes"):
        extract_zip(archive, target, caps)
    assert sum(p.stat().st_size for p in files_under(target)) <= 20_000
