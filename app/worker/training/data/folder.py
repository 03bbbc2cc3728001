"""The `folder` data set: an ImageFolder under DATA_DIR/datasets/, as real folders come.

Layout (`split_layout`, the one rule for a folder on disk and an uploaded zip): one sub-folder
per class (split later by a seeded, stratified `val_fraction`); `train/` and `val/` (also
`valid/`, `validation/`) each holding the class folders; or `train/` and `test/` without a
validation split, where the validation images are held out of `train/` and `test/` is counted
as an unused split. Any other folder named like a split (`train/` alone, `val/` without
`train/`, ...) or images lying flat beside a label file (`labels.csv`) is refused with a
InvalidInput naming the layout seen. Class names are the folder names, sorted; images may sit
deeper inside a class folder.

Links (one rule, as torchvision's ImageFolder follows them): a symbolic link, to a file or a
folder, anywhere in the data set is followed when its target lies inside DATA_DIR/datasets,
and skipped and counted otherwise; a folder reached twice through links is read once.

A file in a class folder is an image when Pillow says so, whatever its extension (`.jfif`,
none at all): every one is decoded, and what Pillow cannot identify is skipped as "not
decodable", formats outside READ_FORMATS as such, in a folder as in a zip. Extensions only
decide, before anything is opened, whether a file beside the class folders is a stray image.

What real folders and unzipped archives hold, and what happens to it:
- `__MACOSX/`, `.ipynb_checkpoints/`, hidden files, AppleDouble `._name.jpg` files, `Thumbs.db`:
  ignored and counted, never a class and never decoded;
- a single wrapping top folder (an archive of `myset/`): descended into, so the classes are
  what it holds, not one class named `myset`;
- extensions compared case-insensitively (`.JPG`, `.Png`);
- EXIF orientation applied; palette, transparent and RGBA images composited on white; CMYK
  converted to RGB; integer and float images scaled by one fixed rule per type, never by an
  image's own range (`_to_rgb`): 16- and 32-bit integers as 16-bit data (65535 → 255), float
  as 0–255 data clipped, as Pillow's own `convert("L")` reads it;
- truncated or undecodable files (validated by a full decode, not `verify()`), and images past
  the pixel cap: skipped and counted by reason;
- fewer than two classes, a class without a usable image, or no images at all: a InvalidInput
  naming the folder, before training starts.

Each image is resized so its shorter side is `size` px and centre-cropped to a square.
Pillow is imported only here, when a folder is read.
"""

from __future__ import annotations

import os
import unicodedata
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from app.worker.errors import InvalidInput
from app.worker.training.data.cache import TRAIN, UNASSIGNED, VAL, Decoded, digest_files

# Extensions that make a file outside the class folders a stray image (never opened).
IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".jpe", ".jfif", ".jif", ".jfi", ".png", ".apng", ".bmp", ".dib", ".gif"}
    | {".webp", ".tif", ".tiff", ".ppm", ".pgm", ".pbm", ".pnm"}
)
# Pillow's format names that training reads (a zip keeps these, a folder decodes these).
READ_FORMATS = frozenset({"JPEG", "MPO", "PNG", "GIF", "BMP", "DIB", "WEBP", "TIFF", "PPM"})
TRAIN_NAMES = ("train", "training")
TEST_NAMES = ("test", "testing")
SPLIT_NAMES = frozenset({*TRAIN_NAMES, "val", "valid", "validation", *TEST_NAMES})
LABEL_FILE_SUFFIXES = (".csv", ".tsv")
JUNK_DIRS = frozenset({"__MACOSX", "__pycache__", "$RECYCLE.BIN", "System Volume Information"})
JUNK_FILES = frozenset({"thumbs.db", "desktop.ini", "icon\r"})
VAL_NAMES = ("val", "valid", "validation")
MAX_PIXELS = 40_000_000  # larger images are skipped before decoding (~160 MB each)
DECODER = 2  # bump when decoding changes what is stored

# Skip reasons, as metrics.json and the pages show them.
HIDDEN = "hidden or system file"
NOT_IMAGE = "not an image file"
LOOSE = "image outside any class folder"
LINK_OUT = "link pointing outside DATA_DIR/datasets"
UNUSED_SPLIT = "split folder not used for training (e.g. test/)"
OTHER_FORMAT = "image format training does not read"
TRUNCATED = "truncated image"
UNDECODABLE = "not decodable as an image"
TOO_LARGE = f"more than {MAX_PIXELS:,} pixels"


@dataclass
class FolderScan:
    """What a folder holds, before any image is decoded."""

    root: Path  # after descending through a wrapping folder
    classes: list[str]
    files: list[tuple[Path, int, int]] = field(default_factory=list)  # (path, class, split)
    skipped: Counter[str] = field(default_factory=Counter)

    def key_parts(self, size: int) -> dict[str, Any]:
        """The cache key's parts: classes, splits, every file's path and bytes, the size."""
        return {
            "source": "folder",
            "decoder": DECODER,
            "size": size,
            "classes": self.classes,
            "splits": [split for _, _, split in self.files],
            "content": digest_files((path for path, _, _ in self.files), self.root),
        }


def resolve_folder(data_dir: Path, folder: str) -> Path:
    """DATA_DIR/datasets/<folder>, refused unless it is an existing folder inside it.

    Raises InvalidInput("folder", ...) for a path that leaves DATA_DIR/datasets (through '..'
    or a symbolic link) or does not exist.
    """
    base = (data_dir / "datasets").resolve()
    shown = folder if len(folder) <= 80 else folder[:77] + "..."
    try:
        path = (base / folder).resolve()
        inside = path.is_relative_to(base)
        exists = inside and path.is_dir()
    except (OSError, ValueError) as error:  # a name too long, a NUL byte: not a folder of ours
        raise InvalidInput("folder", f"'{shown}' is not a usable folder name ({error})") from None
    if not inside:
        raise InvalidInput("folder", f"'{shown}' is outside DATA_DIR/datasets ({base})")
    if not exists:
        raise InvalidInput("folder", f"no folder '{shown}' in {base}")
    return path


def _is_junk(name: str) -> bool:
    return name.startswith(".") or name in JUNK_DIRS or name.lower() in JUNK_FILES


def image_named(name: str) -> bool:
    """Whether a file name has an image's extension (for files outside class folders)."""
    return Path(name).suffix.lower() in IMAGE_EXTENSIONS


def split_layout(
    dirs: list[str], loose: list[str], name: str = "folder"
) -> tuple[str | None, str | None, list[str]]:
    """The data set's layout from its top level: (train folder, val folder, unused folders).

    (None, None, []) for one folder per class; ("train", "val", [...]) for train/ with val/
    (or valid/, validation/); ("train", None, ["test", ...]) for train/ with test/ and no
    validation split (validation is then held out of train/). Raises InvalidInput naming what
    it saw for another folder named like a split, or images flat beside a label file. `dirs`
    and `loose` are the names of the top level's folders and files.
    """
    labels = [f for f in loose if f.lower().endswith(LABEL_FILE_SUFFIXES)]
    flat = [f for f in loose if image_named(f)]
    if labels and flat:
        raise InvalidInput(
            name,
            f"found {len(flat)} images flat beside the label file '{labels[0]}' (a CSV of "
            "labels); training reads one folder of images per class, e.g. cats/1.jpg, dogs/2.jpg",
        )
    lower = {d.lower(): d for d in dirs}
    train = next((lower[n] for n in TRAIN_NAMES if n in lower), None)
    val = next((lower[n] for n in VAL_NAMES if n in lower), None)
    test = next((lower[n] for n in TEST_NAMES if n in lower), None)
    if train is not None and (val is not None or test is not None):
        return train, val, [d for d in dirs if d not in (train, val)]
    splits = [d for d in dirs if d.lower() in SPLIT_NAMES]
    if splits:
        seen = ", ".join(f"{d}/" for d in sorted(dirs)[:8])
        raise InvalidInput(
            name,
            f"the top level holds {seen}: {', '.join(s + '/' for s in splits)} looks like a "
            "split, but the splits read are train/ with val/ (or valid/, validation/), or "
            "train/ with test/; otherwise one folder per class",
        )
    return None, None, []


def _inside(path: Path, base: Path) -> bool:
    try:
        return path.resolve().is_relative_to(base)
    except (OSError, RuntimeError):  # a loop of links, a name too long
        return False


def _listing(folder: Path, base: Path, skipped: Counter[str]) -> tuple[list[Path], list[Path]]:
    """(visible sub-folders, visible files) of one folder, sorted by name; hidden entries and
    links leaving `base` counted in `skipped`."""
    dirs, files = [], []
    for entry in sorted(folder.iterdir(), key=lambda p: p.name):
        if _is_junk(entry.name):
            skipped[HIDDEN] += _count_files(entry) if entry.is_dir() else 1
        elif entry.is_symlink() and not _inside(entry, base):
            skipped[LINK_OUT] += 1
        elif entry.is_dir():
            dirs.append(entry)
        else:
            files.append(entry)
    return dirs, files


def _count_files(folder: Path) -> int:
    return sum(len(files) for _, _, files in os.walk(folder))


def _class_files(folder: Path, base: Path, skipped: Counter[str]) -> list[Path]:
    """Image files anywhere under a class folder, links inside `base` followed, in a fixed
    order; the rest counted. A folder reached twice (a link to a parent) is read once."""
    found: list[Path] = []
    seen: set[Path] = set()
    pending = [folder]
    while pending:
        current = pending.pop()
        real = current.resolve()
        if real in seen:
            continue
        seen.add(real)
        dirs, files = _listing(current, base, skipped)
        for path in files:  # whatever the extension: decoding asks Pillow what it is
            if path.exists():
                found.append(path)
            else:  # a dangling link
                skipped[UNDECODABLE] += 1
        pending.extend(reversed(dirs))
    return found


def class_name(folder: Path) -> str:
    """A class folder's name in Unicode NFC: macOS writes names decomposed ("e" + U+0301),
    other systems composed ("é"), so the same typed name from both is one class."""
    return unicodedata.normalize("NFC", folder.name)


def scan_folder(path: Path, name: str = "folder", base: Path | None = None) -> FolderScan:
    """Find the classes and image files of an ImageFolder, descending a wrapping folder.

    `base` is the folder links may point into (DATA_DIR/datasets; default `path` itself).
    Raises InvalidInput when there are no class folders, or fewer than two, or for a layout
    `split_layout` refuses.
    """
    root = path.resolve()
    base = base.resolve() if base is not None else root
    skipped: Counter[str] = Counter()
    while True:
        dirs, files = _listing(path, base, skipped)
        if len(dirs) == 1 and not any(image_named(f.name) for f in files):
            skipped[NOT_IMAGE] += len(files)
            path = dirs[0]  # a wrapping folder: what it holds is the data set
            continue
        break
    train, val, unused = split_layout([d.name for d in dirs], [f.name for f in files], name)
    for loose in files:
        skipped[LOOSE if image_named(loose.name) else NOT_IMAGE] += 1
    if train is not None:
        splits = [(path / train, TRAIN if val is not None else UNASSIGNED)]
        if val is not None:
            splits.append((path / val, VAL))
        for extra in unused:
            skipped[UNUSED_SPLIT] += _count_files(path / extra)
    else:
        splits = [(path, UNASSIGNED)]

    scan = FolderScan(root=root, classes=[], skipped=skipped)
    split_classes: list[list[Path]] = []
    for split_dir, _ in splits:
        if split_dir == path:
            class_dirs = dirs
        else:
            class_dirs, stray = _listing(split_dir, base, skipped)
            skipped[LOOSE] += len(stray)
        split_classes.append(class_dirs)
    scan.classes = sorted({class_name(d) for d in split_classes[0]})
    if not scan.classes and skipped[LOOSE] and path != root:
        raise InvalidInput(
            name, f"found one class ('{path.name}'); a classifier needs at least two class folders"
        )
    if not scan.classes:
        raise InvalidInput(
            name,
            f"no class folders in {path}: expected one sub-folder of images per class (or train/ and val/ holding them)",
        )
    if len(scan.classes) < 2:
        raise InvalidInput(
            name,
            f"found one class ('{scan.classes[0]}') in {path}; a classifier needs at least two class folders",
        )
    index = {c: i for i, c in enumerate(scan.classes)}
    for (_, split), class_dirs in zip(splits, split_classes, strict=True):
        for class_dir in class_dirs:
            label = class_name(class_dir)
            if label not in index:
                raise InvalidInput(
                    name,
                    f"class '{label}' is in {class_dir.parent.name}/ but not in train/",
                )
            for file in _class_files(class_dir, base, skipped):
                scan.files.append((file, index[label], split))
    if not scan.files:
        raise InvalidInput(name, f"no image files in the class folders of {path}")
    return scan


def _to_rgb(image: Any) -> Any:
    """Any Pillow mode as 8-bit RGB: alpha on white, 16-bit and float scaled, CMYK converted."""
    from PIL import Image

    mode = image.mode
    if mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
        mode = image.mode
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    if mode.startswith("I") or mode == "F":
        # One fixed rule per type, never an image's own maximum (two exposures of one scene
        # keep their difference): integers as 16-bit data, floats as 0-255 data, clipped.
        values = np.asarray(image, dtype=np.float64)
        scale = 1.0 if mode == "F" else 255.0 / 65535.0
        scaled = np.clip(np.nan_to_num(values * scale), 0, 255).round().astype(np.uint8)
        return Image.fromarray(scaled).convert("RGB")
    return image if mode == "RGB" else image.convert("RGB")


def decode_image(path: Path, size: int, *, preview: bool = False) -> np.ndarray | str:
    """One file as (3, size, size) uint8, or the reason it was skipped.

    With `preview` the image is shrunk in its own mode before it is turned into RGB (Pillow's
    `thumbnail`: JPEG decoded at a reduced scale, the rest reduced by whole factors first), so
    a large image costs one decode at most 4 bytes a pixel and a fraction of the time; a mode
    `thumbnail` cannot shrink is decoded whole."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with Image.open(path) as opened:
            if opened.format not in READ_FORMATS:
                return OTHER_FORMAT
            if opened.width * opened.height > MAX_PIXELS:
                return TOO_LARGE
            if preview:
                try:
                    opened.thumbnail((2 * size, 2 * size), Image.Resampling.BILINEAR)
                except ValueError:  # a mode it cannot resample (e.g. 16-bit integers)
                    return decode_image(path, size)
            else:
                opened.draft(None, (size, size))  # JPEG: decode at a reduced scale, still ≥ size
                opened.load()  # a full decode: a truncated file fails here, not at open()
            image = _to_rgb(ImageOps.exif_transpose(opened))
            image = ImageOps.fit(image, (size, size), Image.Resampling.BILINEAR)
            return np.asarray(image, dtype=np.uint8).transpose(2, 0, 1).copy()
    except Image.DecompressionBombError:
        return TOO_LARGE
    except UnidentifiedImageError:
        return UNDECODABLE
    except OSError as error:
        return TRUNCATED if "truncated" in str(error).lower() else UNDECODABLE
    except (ValueError, TypeError, SyntaxError, IndexError, KeyError, EOFError):
        return UNDECODABLE


class DecodeStopped(Exception):
    """`should_stop()` turned true while a folder was being decoded (a cancel, a time limit)."""


_STOPPED = "stopped before decoding"


def _decode_unless_stopped(
    path: Path, size: int, should_stop: Callable[[], bool] | None
) -> np.ndarray | str:
    """decode_image, unless the run was asked to stop: then a marker, at once."""
    if should_stop is not None and should_stop():
        return _STOPPED
    return decode_image(path, size)


def decode_folder(
    scan: FolderScan,
    size: int,
    threads: int | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> Decoded:
    """Decode every scanned file (threads: Pillow releases the GIL while decoding).

    `threads` decode at once (default: the cores, at most 8; the engine passes torch's thread
    count, which follows RUN_THREADS). `should_stop` is asked before each file: once true the
    files left are not decoded and DecodeStopped is raised.
    """
    workers = threads or min(8, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(
            pool.map(lambda item: _decode_unless_stopped(item[0], size, should_stop), scan.files)
        )
    if any(isinstance(result, str) and result == _STOPPED for result in results):
        raise DecodeStopped("stopped while decoding the folder")
    images, labels, splits = [], [], []
    skipped: Counter[str] = Counter()
    for (_, label, split), result in zip(scan.files, results, strict=True):
        if isinstance(result, str):
            skipped[result] += 1
        else:
            images.append(result)
            labels.append(label)
            splits.append(split)
    stacked = np.stack(images) if images else np.zeros((0, 3, size, size), np.uint8)
    return Decoded(
        images=stacked,
        labels=np.asarray(labels, dtype=np.int64),
        classes=scan.classes,
        split=np.asarray(splits, dtype=np.int8),
        skipped=dict(skipped),
    )


def check_classes(decoded: Decoded, name: str = "folder") -> None:
    """Raise InvalidInput when a class ended up without any usable image."""
    counts = np.bincount(decoded.labels, minlength=len(decoded.classes))
    if counts.sum() == 0:
        reasons = ", ".join(f"{r}: {n}" for r, n in decoded.skipped.items())
        raise InvalidInput(name, f"no usable images ({reasons or 'none found'})")
    empty = [decoded.classes[i] for i in np.flatnonzero(counts == 0)]
    if empty:
        listed = ", ".join(f"'{c}'" for c in empty)
        raise InvalidInput(
            name, f"class {listed} has no usable images; every class folder needs at least one"
        )
