"""POST/GET/DELETE /api/datasets: a good messy zip, the listing, deleting, other users.

The bad uploads (one test each) are in test_datasets_refused.py.
"""

from __future__ import annotations

import io
import os
import time
import unicodedata
import zipfile
from pathlib import Path

import numpy as np
from fastapi.testclient import TestClient
from PIL import Image

from tests.datasets_zips import classes_zip, files_under, image_bytes, make_zip, upload
from tests.web import login, register


def data_dir(client: TestClient) -> Path:
    return client.app.state.settings.data_dir


def messy_zip() -> tuple[bytes, dict[str, bytes]]:
    """What a Mac user's zip of a folder holds: a wrapping folder, __MACOSX, AppleDouble
    files, .DS_Store, upper-case extensions, a PNG named .jpeg, a truncated JPEG, a note."""
    cats = {f"myset/cat/{i}.png": image_bytes(i) for i in range(3)}
    cats["myset/cat/photo.jpeg"] = image_bytes(10)  # a PNG, whatever the name says
    dogs = {f"myset/dog/IMG_{i}.JPG": image_bytes(20 + i, fmt="JPEG") for i in range(2)}
    whole = image_bytes(30, size=64, fmt="JPEG")
    entries = [
        ("myset/", b""),
        *cats.items(),
        *dogs.items(),
        ("myset/dog/cut.jpg", whole[: len(whole) // 2]),
        ("myset/dog/notes.txt", b"taken in the park"),
        ("myset/.DS_Store", b"\x00\x00\x00\x01Bud1"),
        ("myset/cat/._0.png", b"\x00\x05\x16\x07AppleDouble"),
        ("__MACOSX/myset/cat/._1.png", b"\x00\x05\x16\x07AppleDouble"),
        ("__MACOSX/myset/dog/._IMG_0.JPG", b"\x00\x05\x16\x07AppleDouble"),
    ]
    return make_zip(entries), {**cats, **dogs}


def test_a_messy_zip_gives_its_classes_and_counts_what_it_skipped(db_client) -> None:
    data, kept = messy_zip()
    response = upload(db_client, data, filename="holiday.zip")
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["name"] == "holiday"
    assert body["classes"] == {"cat": 4, "dog": 2}
    assert body["images"] == 6
    assert body["skipped"] == {
        "hidden or system file": 4,
        "truncated image": 1,
        "not decodable as an image": 1,
    }
    root = data_dir(db_client) / "datasets" / "uploads"
    stored = files_under(root)
    assert sorted(p.parent.name for p in stored) == ["cat"] * 4 + ["dog"] * 2
    # Named by what they are: the PNG sent as photo.jpeg is kept as a .png.
    assert sorted(p.suffix for p in stored) == [".jpg", ".jpg", ".png", ".png", ".png", ".png"]
    assert body["bytes"] == sum(p.stat().st_size for p in stored)
    # The kept pixels are the sent ones.
    sent = sorted(np.asarray(Image.open(io.BytesIO(b))).tobytes() for b in kept.values())
    got = sorted(np.asarray(Image.open(p)).tobytes() for p in stored)
    assert got == sent
    folder = next(iter(stored)).parent.parent
    assert folder.relative_to(root).parts[1] == str(body["id"])


def test_a_loose_file_beside_the_class_folders_is_skipped_for_what_it_is(db_client) -> None:
    entries = [
        *(
            (f"set/{c}/{i}.png", image_bytes(10 * n + i))
            for n, c in enumerate("ab")
            for i in range(2)
        ),
        ("set/README.txt", b"my pictures"),
        ("set/cover.png", image_bytes(99)),
    ]
    body = upload(db_client, make_zip(entries)).json()
    assert body["classes"] == {"a": 2, "b": 2}
    assert body["skipped"] == {
        "not an image file": 1,
        "image outside any class folder": 1,
    }


def test_the_list_and_one_data_set_are_the_callers_own(db_client, tmp_path: Path) -> None:
    first = upload(db_client, classes_zip({"a": 2, "b": 2}), name="Mine").json()
    listed = db_client.get("/api/datasets").json()
    assert [(d["id"], d["name"], d["classes"]) for d in listed] == [
        (first["id"], "Mine", {"a": 2, "b": 2})
    ]
    assert db_client.get(f"/api/datasets/{first['id']}").json()["images"] == 4
    with TestClient(db_client.app) as other:
        assert other.get("/api/datasets").json() == []
        assert other.get(f"/api/datasets/{first['id']}").status_code == 404
        assert other.delete(f"/api/datasets/{first['id']}").status_code == 404
    assert len(files_under(data_dir(db_client) / "datasets")) == 4


def test_delete_removes_the_row_and_the_files(db_client) -> None:
    body = upload(db_client, classes_zip({"a": 2, "b": 3})).json()
    uploads = data_dir(db_client) / "datasets" / "uploads"
    assert len(files_under(uploads)) == 5
    assert db_client.delete(f"/api/datasets/{body['id']}").status_code == 204
    assert files_under(uploads) == set()
    assert db_client.get("/api/datasets").json() == []
    assert db_client.delete(f"/api/datasets/{body['id']}").status_code == 404


def test_train_and_val_folders_keep_their_split(db_client) -> None:
    entries = [
        (f"{split}/{c}/{i}.png", image_bytes(100 * n + 10 * ord(c) + i))
        for split, n in (("train", 3), ("val", 1))
        for c in ("x", "y")
        for i in range(n)
    ] + [("test/x/0.png", image_bytes(7))]
    body = upload(db_client, make_zip(entries)).json()
    assert body["classes"] == {"x": 4, "y": 4}
    assert body["skipped"] == {"split folder not used for training (e.g. test/)": 1}
    stored = files_under(data_dir(db_client) / "datasets" / "uploads")
    assert sorted({p.parent.parent.name for p in stored}) == ["train", "val"]


def test_a_nested_zip_is_skipped_not_expanded(db_client) -> None:
    inner = make_zip([("huge.bin", bytes(20_000_000))])
    entries = [
        *[(f"a/{i}.png", image_bytes(i)) for i in range(2)],
        *[(f"b/{i}.png", image_bytes(10 + i)) for i in range(2)],
        ("a/more.zip", inner),
        ("b/looks-like.png", inner),  # a zip by its bytes, whatever its name
    ]
    response = upload(db_client, make_zip(entries, compression=zipfile.ZIP_STORED))
    assert response.status_code == 201, response.text
    assert response.json()["skipped"] == {"archive inside the archive (not expanded)": 2}
    stored = files_under(data_dir(db_client) / "datasets")
    assert len(stored) == 4 and sum(p.stat().st_size for p in stored) < 10_000


def test_a_guests_data_sets_move_into_the_account_it_logs_in_to(db_client) -> None:
    with TestClient(db_client.app) as elsewhere:
        assert register(elsewhere, "grace").status_code == 303
    guest = upload(db_client, classes_zip({"a": 2, "b": 2})).json()  # a guest's first save
    assert login(db_client, "grace").status_code == 303
    moved = db_client.get("/api/datasets").json()
    assert [d["id"] for d in moved] == [guest["id"]]
    # Its files stay where they were written, and the account can train on it and delete it.
    run = db_client.post("/api/runs", json={"dataset_id": guest["id"], "epochs": 1})
    assert run.status_code == 202, run.text
    db_client.delete(f"/api/runs/{run.json()['id']}")
    assert db_client.delete(f"/api/datasets/{guest['id']}").status_code == 204
    assert files_under(data_dir(db_client) / "datasets") == set()


def test_leftovers_of_a_killed_upload_are_swept_a_day_later(db_client) -> None:
    uploads = data_dir(db_client) / "datasets" / "uploads"
    old_zip = uploads / ".incoming" / "0123.zip"
    old_partial = uploads / "77" / ".partial-dead"
    fresh_zip = uploads / ".incoming" / "4567.zip"  # an upload still arriving
    for path in (old_zip, fresh_zip, old_partial / "a" / "000001.png"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
    two_days_ago = time.time() - 2 * 24 * 3600
    os.utime(old_zip, (two_days_ago, two_days_ago))
    os.utime(old_partial, (two_days_ago, two_days_ago))
    assert upload(db_client, classes_zip({"a": 2, "b": 2})).status_code == 201
    assert not old_zip.exists() and not (uploads / "77").exists()
    assert fresh_zip.exists()
    # The only file left in .incoming being stale, the folder stays for the upload that swept.
    fresh_zip.unlink()
    old_zip.write_bytes(b"x")
    os.utime(old_zip, (two_days_ago, two_days_ago))
    assert upload(db_client, classes_zip({"c": 2, "d": 2})).status_code == 201
    assert not old_zip.exists()


def test_one_class_name_in_both_unicode_forms_is_one_class(db_client) -> None:
    composed = unicodedata.normalize("NFC", "café")
    decomposed = unicodedata.normalize("NFD", "café")
    assert composed != decomposed  # macOS writes the second, other systems the first
    entries = [
        (f"{composed}/0.png", image_bytes(1)),
        (f"{decomposed}/1.png", image_bytes(2)),
        ("tea/0.png", image_bytes(3)),
        ("tea/1.png", image_bytes(4)),
    ]
    body = upload(db_client, make_zip(entries)).json()
    assert body["classes"] == {composed: 2, "tea": 2}
