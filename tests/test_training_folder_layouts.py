"""Folders as their owners meant them, read the same on disk and from an uploaded zip: links,
files known by their content, split layouts, archive name encodings, float images. Each right
value comes from torchvision, Pillow or zipfile on the same input."""

from __future__ import annotations

import io
import unicodedata
import zipfile
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.datasets import ImageFolder

from app.datasets.entries import Caps
from app.datasets.extract import SKIPPED_NAMED, entry_name, extract_zip
from app.worker.errors import InvalidInput
from app.worker.training import RunConfig
from app.worker.training.data import load_data
from app.worker.training.data.cache import UNASSIGNED
from app.worker.training.data.folder import (
    HIDDEN,
    LINK_OUT,
    UNDECODABLE,
    UNUSED_SPLIT,
    decode_image,
    scan_folder,
)

SIZE = 8
CAPS = Caps(files=1000, total_bytes=50_000_000, total_name="TEST", ratio=1000.0, pixels=10**7)


def noise(seed: int, path: Path, fmt: str = "PNG") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (12, 12, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path, format=fmt)
    return path


def per_class(scan) -> dict[str, int]:  # type: ignore[no-untyped-def]
    counts = Counter(scan.classes[label] for _, label, _ in scan.files)
    return dict(sorted(counts.items()))


def zip_tree(root: Path, out: Path) -> Path:
    """The folder as a zip, the way `zip -r` stores it (every file, names relative)."""
    with zipfile.ZipFile(out, "w") as archive:
        for path in sorted(root.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(root).as_posix())
    return out


def test_links_inside_the_datasets_folder_are_followed_like_imagefolder_others_skipped(
    tmp_path: Path,
) -> None:
    datasets = tmp_path / "datasets"
    root = datasets / "pets"
    for i in range(2):
        noise(i, root / "cats" / f"{i}.png")
        noise(10 + i, root / "dogs" / f"{i}.png")
    for i in range(3):  # more cats kept elsewhere in DATA_DIR/datasets
        noise(20 + i, datasets / "extra" / "more-cats" / f"{i}.png")
    (root / "cats" / "more").symlink_to(datasets / "extra" / "more-cats")
    (root / "dogs" / "one.png").symlink_to(datasets / "extra" / "more-cats" / "0.png")
    reference = ImageFolder(str(root))  # follows links: os.walk(followlinks=True)
    scan = scan_folder(root, base=datasets)
    assert scan.classes == reference.classes
    assert per_class(scan) == dict(
        sorted(Counter(reference.classes[t] for t in reference.targets).items())
    )
    assert scan.skipped[LINK_OUT] == 0

    outside = tmp_path / "elsewhere"
    for i in range(2):
        noise(30 + i, outside / f"{i}.png")
    (root / "cats" / "outside-folder").symlink_to(outside)
    (root / "dogs" / "outside-file.png").symlink_to(outside / "0.png")
    (root / "birds").symlink_to(outside)  # a class folder that is a link out
    scan = scan_folder(root, base=datasets)
    assert scan.classes == ["cats", "dogs"]
    assert per_class(scan) == {"cats": 5, "dogs": 3}
    assert scan.skipped[LINK_OUT] == 3


def test_a_jfif_or_extensionless_jpeg_is_read_by_what_pillow_says_it_is(tmp_path: Path) -> None:
    root = tmp_path / "datasets" / "web"
    jfif = noise(1, root / "cats" / "photo.jfif", fmt="JPEG")
    bare = noise(2, root / "cats" / "download", fmt="JPEG")
    noise(3, root / "dogs" / "a.png")
    noise(4, root / "dogs" / "b.png")
    (root / "dogs" / "notes.txt").write_text("not a picture")
    with Image.open(jfif) as a, Image.open(bare) as b:
        assert (a.format, b.format) == ("JPEG", "JPEG")
    data = load_data(
        RunConfig.from_dict({"dataset": "folder", "folder": "web", "image_size": SIZE}),
        tmp_path,
        torch.device("cpu"),
    )
    total = {c: data.info["train_counts"][c] + data.info["val_counts"][c] for c in data.classes}
    assert total == {"cats": 2, "dogs": 2}
    assert data.info["skipped"] == {UNDECODABLE: 1}
    same = tmp_path / "same.jpg"
    same.write_bytes(jfif.read_bytes())
    assert np.array_equal(decode_image(jfif, SIZE), decode_image(same, SIZE))  # type: ignore[arg-type]
    extracted = extract_zip(zip_tree(root, tmp_path / "web.zip"), tmp_path / "out", CAPS)
    assert extracted.classes == {"cats": 2, "dogs": 2}
    assert extracted.skipped == {UNDECODABLE: 1}
    assert extracted.skipped_names == {UNDECODABLE: ["dogs/notes.txt"]}


def test_skipped_files_are_named_up_to_the_cap_hidden_ones_last(tmp_path: Path) -> None:
    root = tmp_path / "mac"
    for c, name in enumerate(("cat", "dog")):
        for i in range(2):
            noise(10 * c + i, root / name / f"{i}.png")
    for i in range(SKIPPED_NAMED + 10):  # what macOS's Archive Utility adds beside each file
        (root / "__MACOSX" / f"._{i:03d}.png").parent.mkdir(parents=True, exist_ok=True)
        (root / "__MACOSX" / f"._{i:03d}.png").write_bytes(b"\x00\x05\x16\x07")
    (root / "dog" / "broken.png").write_bytes(b"\x89PNG not really")
    extracted = extract_zip(zip_tree(root, tmp_path / "mac.zip"), tmp_path / "out", CAPS)
    assert extracted.skipped == {HIDDEN: SKIPPED_NAMED + 10, UNDECODABLE: 1}
    names = extracted.skipped_names
    assert list(names) == [UNDECODABLE, HIDDEN]  # the file the learner looks for comes first
    assert names[UNDECODABLE] == ["dog/broken.png"]
    assert names[HIDDEN] == [f"__MACOSX/._{i:03d}.png" for i in range(SKIPPED_NAMED - 1)]


def test_train_and_test_without_val_hold_validation_out_of_train_the_same_in_a_zip(
    tmp_path: Path,
) -> None:
    root = tmp_path / "datasets" / "kaggle"
    for split, n in (("train", 4), ("test", 2)):
        for c, name in enumerate(("cat", "dog")):
            for i in range(n):
                noise(100 * c + 10 * len(split) + i, root / split / name / f"{i}.png")
    reference = ImageFolder(str(root / "train"))
    scan = scan_folder(root)
    assert scan.classes == reference.classes == ["cat", "dog"]
    assert len(scan.files) == len(reference)
    assert {split for _, _, split in scan.files} == {UNASSIGNED}  # val_fraction takes val
    assert scan.skipped[UNUSED_SPLIT] == 4
    extracted = extract_zip(zip_tree(root, tmp_path / "k.zip"), tmp_path / "out", CAPS)
    assert extracted.classes == {"cat": 4, "dog": 4}
    assert extracted.skipped == {UNUSED_SPLIT: 4}
    assert sorted(extracted.skipped_names[UNUSED_SPLIT]) == [
        f"test/{name}/{i}.png" for name in ("cat", "dog") for i in range(2)
    ]
    stored = scan_folder(tmp_path / "out")
    assert stored.classes == scan.classes and len(stored.files) == len(scan.files)


@pytest.mark.parametrize(
    ("layout", "said"),
    [
        ({"train/cat/0.png", "train/dog/0.png", "cat/1.png", "dog/1.png"}, "train/"),
        ({"val/cat/0.png", "val/dog/0.png", "cat/1.png", "dog/1.png"}, "val/"),
        ({"0.png", "1.png", "2.png", "labels.csv"}, "labels.csv"),
    ],
)
def test_other_split_or_label_file_layouts_are_refused_naming_what_was_seen(
    tmp_path: Path, layout: set[str], said: str
) -> None:
    root = tmp_path / "datasets" / "odd"
    for i, name in enumerate(sorted(layout)):
        if name.endswith(".csv"):
            (root / name).write_text("file,label\n0.png,cat\n")
        else:
            noise(i, root / name)
    with pytest.raises(InvalidInput) as error:
        scan_folder(root)
    assert said in error.value.message
    with pytest.raises(InvalidInput) as refused:
        extract_zip(zip_tree(root, tmp_path / "odd.zip"), tmp_path / "out", CAPS)
    assert refused.value.field == "file"
    assert str(refused.value).endswith(error.value.message) or error.value.message in str(
        refused.value
    )


def test_a_macos_zip_with_utf8_names_without_the_flag_keeps_its_class_names(
    tmp_path: Path,
) -> None:
    real = unicodedata.normalize("NFD", "café")  # how macOS writes the name
    raw = real.encode("utf-8")  # b"cafe\xcc\x81"
    stand_in = "cafeXY"  # ASCII of the same length: written without the UTF-8 flag
    assert len(stand_in.encode()) == len(raw)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for c, name in enumerate((stand_in, "tea")):
            for i in range(2):
                image = io.BytesIO()
                noise_array = np.random.default_rng(10 * c + i).integers(0, 256, (12, 12, 3))
                Image.fromarray(noise_array.astype(np.uint8)).save(image, format="PNG")
                archive.writestr(f"{name}/{i}.png", image.getvalue())
    data = buffer.getvalue().replace(stand_in.encode() + b"/", raw + b"/")
    path = tmp_path / "mac.zip"
    path.write_bytes(data)
    with zipfile.ZipFile(path) as archive:
        infos = [i for i in archive.infolist() if i.filename.startswith("cafe")]
        assert infos and all(not i.flag_bits & 0x800 for i in infos)
        assert infos[0].filename.split("/")[0] == raw.decode("cp437")  # zipfile's reading
        assert entry_name(infos[0]).split("/")[0] == unicodedata.normalize("NFC", "café")
    extracted = extract_zip(path, tmp_path / "out", CAPS)
    assert extracted.classes == {"café": 2, "tea": 2}


def test_a_flagged_utf8_name_and_a_real_cp437_name_are_read_as_written(tmp_path: Path) -> None:
    info = zipfile.ZipInfo("naïve/0.png")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(info, b"x")
    with zipfile.ZipFile(io.BytesIO(buffer.getvalue())) as archive:
        flagged = archive.infolist()[0]
    assert flagged.flag_bits & 0x800 and entry_name(flagged) == "naïve/0.png"
    old = zipfile.ZipInfo("Ç/0.png".encode("cp437").decode("cp437"))  # 0x80: not UTF-8
    assert entry_name(old) == "Ç/0.png"


def test_float_tiffs_are_scaled_by_one_rule_so_two_exposures_stay_apart(tmp_path: Path) -> None:
    root = tmp_path / "datasets" / "microscope"
    paths = []
    for name, level in (("dim", 60.0), ("bright", 120.0)):
        for i in range(2):
            path = root / name / f"{i}.tif"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.full((12, 12), level + i, np.float32), mode="F").save(path)
            paths.append(path)
    for path in paths:
        with Image.open(path) as image:
            assert image.mode == "F"
            expected = np.asarray(image.convert("L"))  # Pillow's own reading of float data
        got = decode_image(path, SIZE)
        assert not isinstance(got, str)
        assert np.array_equal(got[0], expected[:SIZE, :SIZE])
    dim, bright = decode_image(paths[0], SIZE), decode_image(paths[2], SIZE)
    assert int(dim[0, 0, 0]) == 60 and int(bright[0, 0, 0]) == 120  # type: ignore[index]
    extract_zip(zip_tree(root, tmp_path / "f.zip"), tmp_path / "out", CAPS)
    stored = sorted((tmp_path / "out").rglob("*.tif"))
    assert sorted(int(decode_image(p, SIZE)[0, 0, 0]) for p in stored) == [60, 61, 120, 121]  # type: ignore[index]
