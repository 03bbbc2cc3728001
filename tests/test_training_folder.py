"""ImageFolders as real users make them, built here with Pillow: each messy case handled."""

from __future__ import annotations

import io
import unicodedata
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from app.worker.errors import InvalidInput
from app.worker.training import RunConfig
from app.worker.training.data import folder as folder_data
from app.worker.training.data import load_data
from app.worker.training.data.folder import (
    HIDDEN,
    LOOSE,
    TRUNCATED,
    UNDECODABLE,
    decode_image,
    resolve_folder,
    scan_folder,
)

SIZE = 8


def solid(
    colour: int | tuple[int, ...], mode: str = "RGB", size: tuple[int, int] = (12, 12)
) -> Image.Image:
    return Image.new(mode, size, colour)


def save(image: Image.Image, path: Path, **params: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, **params)
    return path


def class_folder(
    root: Path,
    name: str,
    count: int = 3,
    colour: tuple[int, int, int] = (200, 30, 30),
    ext: str = ".png",
) -> None:
    for i in range(count):
        save(solid(colour), root / name / f"img{i}{ext}")


def config_for(folder: str, **extra: object) -> RunConfig:
    return RunConfig.from_dict({"dataset": "folder", "folder": folder, "image_size": SIZE, **extra})


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A DATA_DIR of the test's own with an empty datasets/, where each test lays out its
    folder."""
    (tmp_path / "datasets").mkdir()
    return tmp_path


def decoded(path: Path) -> np.ndarray:
    result = decode_image(path, SIZE)
    assert not isinstance(result, str), result
    return result


# ---------------------------------------------------------------- layout


def test_junk_is_ignored_and_a_wrapping_folder_is_descended(data_dir: Path) -> None:
    root = data_dir / "datasets" / "upload" / "my-pets"  # what unzipping "my-pets.zip" gives
    class_folder(root, "cats", 3, (10, 10, 10))
    class_folder(root, "dogs", 2, (250, 250, 250), ext=".JPG")  # upper-case extension
    (root / "cats" / "._img0.png").write_bytes(b"\x00\x05\x16\x07AppleDouble junk")
    (root / "cats" / ".DS_Store").write_bytes(b"junk")
    (root / "dogs" / "notes.txt").write_text("not an image")
    save(solid((0, 0, 255)), data_dir / "datasets" / "upload" / "__MACOSX" / "my-pets" / "._x.png")
    (root / ".ipynb_checkpoints").mkdir()
    save(solid((1, 2, 3)), root / ".ipynb_checkpoints" / "stray.png")
    save(solid((1, 2, 3)), root / "loose.png")  # beside the class folders: no class

    scan = scan_folder(resolve_folder(data_dir, "upload"))
    assert scan.root.name == "upload"
    assert scan.classes == ["cats", "dogs"]
    assert scan.skipped[HIDDEN] == 4  # ._img0.png, .DS_Store, __MACOSX/…, .ipynb_checkpoints/…
    assert len(scan.files) == 6  # notes.txt too: Pillow, not its name, decides what it is
    assert scan.skipped[LOOSE] == 1

    data = load_data(config_for("upload", val_fraction=0.34), data_dir, _cpu())
    assert data.classes == ["cats", "dogs"]
    assert data.info["skipped"] == {HIDDEN: 4, UNDECODABLE: 1, LOOSE: 1}
    total = {c: data.info["train_counts"][c] + data.info["val_counts"][c] for c in data.classes}
    assert total == {"cats": 3, "dogs": 2}
    assert all(data.info["val_counts"][c] >= 1 for c in data.classes)  # stratified


def test_train_and_val_folders_are_used_as_the_split(data_dir: Path) -> None:
    root = data_dir / "datasets" / "split"
    for part, count in (("train", 4), ("val", 2)):
        class_folder(root / part, "a", count, (0, 0, 0))
        class_folder(root / part, "b", count, (255, 255, 255))
    save(solid((9, 9, 9)), root / "test" / "a" / "x.png")  # a test/ split is left alone
    data = load_data(config_for("split"), data_dir, _cpu())
    assert data.info["train_counts"] == {"a": 4, "b": 4}
    assert data.info["val_counts"] == {"a": 2, "b": 2}
    # Every val image is black or white, as its folder says.
    means = data.val_images.float().mean(dim=(1, 2, 3))
    assert [round(float(m)) for m in means] == [0 if c == 0 else 255 for c in data.val_labels]


def test_nested_images_inside_a_class_folder_count_for_that_class(data_dir: Path) -> None:
    root = data_dir / "datasets" / "nested"
    class_folder(root, "a", 2)
    save(solid((0, 0, 0)), root / "a" / "2024" / "deep.png")
    class_folder(root, "b", 3)
    scan = scan_folder(resolve_folder(data_dir, "nested"))
    assert [label for _, label, _ in scan.files].count(0) == 3


# ---------------------------------------------------------------- pixels


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    # 4 wide × 2 tall, left half red, right half blue; EXIF 6 says "rotate 90° clockwise".
    image = Image.new("RGB", (4, 2), (255, 0, 0))
    image.paste((0, 0, 255), (2, 0, 4, 2))
    exif = Image.Exif()
    exif[0x0112] = 6
    path = save(image, tmp_path / "phone.png", exif=exif)
    pixels = decode_image(path, 2)
    assert not isinstance(pixels, str)
    # Rotated clockwise, red is on top and blue at the bottom (not left/right).
    assert pixels[:, 0, :].mean(axis=1).tolist() == pytest.approx([255, 0, 0], abs=2)
    assert pixels[:, 1, :].mean(axis=1).tolist() == pytest.approx([0, 0, 255], abs=2)


def test_transparency_is_composited_on_white(tmp_path: Path) -> None:
    rgba = save(solid((255, 0, 0, 0), "RGBA"), tmp_path / "clear.png")  # fully transparent red
    half = save(solid((0, 0, 0, 128), "RGBA"), tmp_path / "half.png")  # half-transparent black
    assert decoded(rgba).min() == 255  # white, not red and not black
    assert decoded(half).mean() == pytest.approx(127, abs=2)
    palette = Image.new("P", (12, 12), 0)
    palette.putpalette([0, 255, 0] + [0, 0, 0] * 255)
    path = save(palette, tmp_path / "palette.png", transparency=0)
    assert decoded(path).min() == 255  # the transparent palette entry becomes white
    grey = decoded(save(solid(128, "L"), tmp_path / "grey.png"))
    assert grey.tolist() == np.full((3, SIZE, SIZE), 128).tolist()


def test_sixteen_bit_images_are_scaled_not_clipped(tmp_path: Path) -> None:
    values = np.full((12, 12), 32768, dtype=np.uint16)
    values[:, 6:] = 65535
    path = save(Image.fromarray(values), tmp_path / "deep.png")
    assert Image.open(path).mode.startswith("I")
    pixels = decoded(path)
    assert pixels[0, :, 0].tolist() == [128] * SIZE  # 32768 / 65535 · 255 = 127.5 → 128
    assert pixels[0, :, -1].tolist() == [255] * SIZE


def test_cmyk_is_converted_to_rgb(tmp_path: Path) -> None:
    path = save(solid((0, 255, 255, 0), "CMYK"), tmp_path / "print.jpg", quality=95)
    pixels = decoded(path).mean(axis=(1, 2))
    assert pixels == pytest.approx([255, 0, 0], abs=8)  # no cyan, full magenta and yellow: red


def test_truncated_and_undecodable_files_are_skipped_by_reason(data_dir: Path) -> None:
    root = data_dir / "datasets" / "broken"
    class_folder(root, "a", 3)
    class_folder(root, "b", 3)
    noise = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    full = io.BytesIO()
    Image.fromarray(noise).save(full, format="JPEG", quality=90)
    (root / "a" / "cut.jpg").write_bytes(full.getvalue()[: len(full.getvalue()) // 2])
    (root / "b" / "fake.png").write_bytes(b"this is not a png at all")
    assert decode_image(root / "a" / "cut.jpg", SIZE) == TRUNCATED
    assert decode_image(root / "b" / "fake.png", SIZE) == UNDECODABLE
    data = load_data(config_for("broken"), data_dir, _cpu())
    assert data.info["skipped"] == {TRUNCATED: 1, UNDECODABLE: 1}
    assert len(data.train_labels) + len(data.val_labels) == 6


# ---------------------------------------------------------------- refusals


def test_a_folder_with_one_class_is_refused(data_dir: Path) -> None:
    class_folder(data_dir / "datasets" / "one", "only", 4)
    with pytest.raises(InvalidInput, match="one class") as error:
        load_data(config_for("one"), data_dir, _cpu())
    assert error.value.field == "folder"


def test_a_folder_of_loose_images_is_refused_as_one_class(data_dir: Path) -> None:
    for i in range(3):
        save(solid((5, 5, 5)), data_dir / "datasets" / "wrapped" / "cats" / f"{i}.png")
    with pytest.raises(InvalidInput, match="one class"):
        scan_folder(resolve_folder(data_dir, "wrapped"))


def test_an_empty_class_is_refused(data_dir: Path) -> None:
    root = data_dir / "datasets" / "gap"
    class_folder(root, "a", 3)
    class_folder(root, "b", 3)
    (root / "empty").mkdir()
    with pytest.raises(InvalidInput, match="'empty' has no usable images"):
        load_data(config_for("gap"), data_dir, _cpu())


def test_a_class_of_only_broken_files_is_refused(data_dir: Path) -> None:
    root = data_dir / "datasets" / "allbad"
    class_folder(root, "a", 3)
    (root / "b").mkdir()
    (root / "b" / "x.jpg").write_bytes(b"garbage")
    with pytest.raises(InvalidInput, match="'b' has no usable images"):
        load_data(config_for("allbad"), data_dir, _cpu())


def test_no_images_at_all_is_refused(data_dir: Path) -> None:
    root = data_dir / "datasets" / "texts"
    for name in ("a", "b"):
        (root / name).mkdir(parents=True)
        (root / name / "readme.txt").write_text("no pictures")
    with pytest.raises(InvalidInput, match=r"no usable images .not decodable as an image: 2."):
        load_data(config_for("texts"), data_dir, _cpu())
    (data_dir / "datasets" / "void").mkdir()
    with pytest.raises(InvalidInput, match="no class folders"):
        load_data(config_for("void"), data_dir, _cpu())


def test_paths_outside_the_datasets_folder_are_refused(data_dir: Path, tmp_path: Path) -> None:
    for bad in ("../secrets", "/etc", "a/../../x"):
        with pytest.raises(InvalidInput) as error:
            config_for(bad)
        assert error.value.field == "folder"
    outside = tmp_path / "outside"
    class_folder(outside, "a")
    class_folder(outside, "b")
    (data_dir / "datasets" / "link").symlink_to(outside)
    with pytest.raises(InvalidInput, match="outside DATA_DIR/datasets"):
        resolve_folder(data_dir, "link")
    with pytest.raises(InvalidInput, match="no folder 'missing'"):
        resolve_folder(data_dir, "missing")


def test_the_cache_is_keyed_by_content(data_dir: Path) -> None:
    root = data_dir / "datasets" / "cached"
    class_folder(root, "a", 3, (0, 0, 0))
    class_folder(root, "b", 3, (255, 255, 255))
    first = load_data(config_for("cached"), data_dir, _cpu())
    again = load_data(config_for("cached"), data_dir, _cpu())
    assert (first.info["cache"], again.info["cache"]) == ("decoded", "hit")
    assert again.train_images.equal(first.train_images)
    save(solid((0, 255, 0)), root / "a" / "img0.png")  # same name and size, new pixels
    changed = load_data(config_for("cached"), data_dir, _cpu())
    assert changed.info["cache"] == "decoded"
    assert not changed.train_images.equal(first.train_images) or not changed.val_images.equal(
        first.val_images
    )
    assert len(list((data_dir / "cache").iterdir())) == 2


def _cpu() -> torch.device:
    return torch.device("cpu")


def test_module_reads_pillow_only_when_decoding() -> None:
    source = Path(folder_data.__file__).read_text()
    assert "\nfrom PIL" not in source and "\nimport PIL" not in source


def test_one_class_name_in_both_unicode_forms_is_one_class(data_dir: Path) -> None:
    composed = unicodedata.normalize("NFC", "café")
    decomposed = unicodedata.normalize("NFD", "café")
    root = data_dir / "datasets" / "mixed"
    class_folder(root, composed, count=2)
    class_folder(root, decomposed, count=3, colour=(10, 200, 10))
    class_folder(root, "tea", count=2, colour=(10, 10, 200))
    scan = scan_folder(root)
    assert scan.classes == [composed, "tea"]
    labels = [label for _, label, _ in scan.files]
    assert labels.count(0) == 5 and labels.count(1) == 2
