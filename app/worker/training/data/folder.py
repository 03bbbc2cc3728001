"""The `folder` data set: an ImageFolder under DATA_DIR/datasets/, as real folders come.

Layout: one sub-folder per class (split later by a seeded, stratified `val_fraction`), or
`train/` and `val/` (also `valid/`, `validation/`) each holding the class folders. Class names
are the folder names, sorted; images may sit deeper inside a class folder.

What real folders and unzipped archives hold, and what happens to it (see
docs/training.md, "Real users' image folders"):
- `__MACOSX/`, `.ipynb_checkpoints/`, hidden files, AppleDouble `._name.jpg` files, `Thumbs.db`:
  ignored and counted, never a class and never decoded;
- a single wrapping top folder (an archive of `myset/`): descended into, so the classes are
  what it holds, not one class named `myset`;
- extensions compared case-insensitively (`.JPG`, `.Png`);
- EXIF orientation applied; palette, transparent and RGBA images composited on white; 16-bit
  images scaled to 8 bits (65535 → 255), not clipped; CMYK converted to RGB;
- truncated or undecodable files (validated by a full decode, not `verify()`), and images past
  the pixel cap: skipped and counted by reason;
- fewer than two classes, a class without a usable image, or no images at all: a DataError
  naming the folder, before training starts.

Each image is resized so its shorter side is `size` px and centre-cropped to a square.
Pillow is imported only here, when a folder is read.
"""

from __future__ import annotations

import os
import unicodedata
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from app.worker.training.config import ConfigError
from app.worker.training.data.cache import TRAIN, UNASSIGNED, VAL, Decoded, digest_files

IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm", ".pbm"}
)
JUNK_DIRS = frozenset({"__MACOSX", "__pycache__", "$RECYCLE.BIN", "System Volume Information"})
JUNK_FILES = frozenset({"thumbs.db", "desktop.ini", "icon\r"})
VAL_NAMES = ("val", "valid", "validation")
MAX_PIXELS = 40_000_000  # larger images are skipped before decoding (~160 MB each)
DECODER = 1  # bump when decoding changes what is stored

# Skip reasons, as metrics.json and the pages show them.
HIDDEN = "hidden or system file"
NOT_IMAGE = "not an image file (extension)"
LOOSE = "image outside any class folder"
LINK_OUT = "link pointing outside the folder"
TRUNCATED = "truncated image"
UNDECODABLE = "not decodable as an image"
TOO_LARGE = f"more than {MAX_PIXELS:,} pixels"


class DataError(ValueError):
    """The data cannot make a training set; `str()` reads "field: reason" like ConfigError."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


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

    Raises ConfigError("folder", ...) for a path that leaves DATA_DIR/datasets (through '..'
    or a symbolic link) or does not exist.
    """
    base = (data_dir / "datasets").resolve()
    shown = folder if len(folder) <= 80 else folder[:77] + "..."
    try:
        path = (base / folder).resolve()
        inside = path.is_relative_to(base)
        exists = inside and path.is_dir()
    except (OSError, ValueError) as error:  # a name too long, a NUL byte: not a folder of ours
        raise ConfigError("folder", f"'{shown}' is not a usable folder name ({error})") from None
    if not inside:
        raise ConfigError("folder", f"'{shown}' is outside DATA_DIR/datasets ({base})")
    if not exists:
        raise ConfigError("folder", f"no folder '{shown}' in {base}")
    return path


def _is_junk(name: str) -> bool:
    return name.startswith(".") or name in JUNK_DIRS or name.lower() in JUNK_FILES


def _listing(folder: Path) -> tuple[list[Path], list[Path], int]:
    """(visible sub-folders, visible files, hidden entries) of one folder, sorted by name."""
    dirs, files, hidden = [], [], 0
    for entry in sorted(folder.iterdir(), key=lambda p: p.name):
        if _is_junk(entry.name):
            hidden += _count_files(entry) if entry.is_dir() else 1
        elif entry.is_dir():
            dirs.append(entry)
        else:
            files.append(entry)
    return dirs, files, hidden


def _count_files(folder: Path) -> int:
    return sum(len(files) for _, _, files in os.walk(folder))


def _class_files(folder: Path, root: Path, skipped: Counter[str]) -> list[Path]:
    """Image files anywhere under a class folder, in a fixed order; the rest counted."""
    found = []
    for current, dirs, files in os.walk(folder, followlinks=False):
        kept = sorted(d for d in dirs if not _is_junk(d))
        skipped[HIDDEN] += sum(_count_files(Path(current, d)) for d in dirs if _is_junk(d))
        dirs[:] = kept
        for name in sorted(files):
            path = Path(current, name)
            if _is_junk(name):
                skipped[HIDDEN] += 1
            elif path.suffix.lower() not in IMAGE_EXTENSIONS:
                skipped[NOT_IMAGE] += 1
            elif path.is_symlink() and not path.resolve().is_relative_to(root):
                skipped[LINK_OUT] += 1
            else:
                found.append(path)
    return found


def class_name(folder: Path) -> str:
    """A class folder's name in Unicode NFC: macOS writes names decomposed ("e" + U+0301),
    other systems composed ("é"), so the same typed name from both is one class."""
    return unicodedata.normalize("NFC", folder.name)


def scan_folder(path: Path, name: str = "folder") -> FolderScan:
    """Find the classes and image files of an ImageFolder, descending a wrapping folder.

    Raises DataError when there are no class folders, or fewer than two.
    """
    root = path.resolve()
    skipped: Counter[str] = Counter()
    while True:
        dirs, files, hidden = _listing(path)
        skipped[HIDDEN] += hidden
        has_images = any(f.suffix.lower() in IMAGE_EXTENSIONS for f in files)
        if len(dirs) == 1 and not has_images:
            skipped[NOT_IMAGE] += len(files)
            path = dirs[0]  # a wrapping folder: what it holds is the data set
            continue
        break
    for loose in files:
        skipped[LOOSE if loose.suffix.lower() in IMAGE_EXTENSIONS else NOT_IMAGE] += 1

    by_name = {d.name.lower(): d for d in dirs}
    val_dir = next((by_name[n] for n in VAL_NAMES if n in by_name), None)
    if "train" in by_name and val_dir is not None:
        splits = [(by_name["train"], TRAIN), (val_dir, VAL)]
        for extra in dirs:
            if extra not in (by_name["train"], val_dir):
                skipped[NOT_IMAGE] += _count_files(extra)  # e.g. test/: not used
    else:
        splits = [(path, UNASSIGNED)]

    scan = FolderScan(root=root, classes=[], skipped=skipped)
    split_classes: list[list[Path]] = []
    for split_dir, _ in splits:
        class_dirs, stray, hidden = _listing(split_dir)
        if split_dir is not path:
            skipped[HIDDEN] += hidden
            skipped[LOOSE] += len(stray)
        split_classes.append(class_dirs)
    scan.classes = sorted({class_name(d) for d in split_classes[0]})
    if not scan.classes and skipped[LOOSE] and path != root:
        raise DataError(
            name, f"found one class ('{path.name}'); a classifier needs at least two class folders"
        )
    if not scan.classes:
        raise DataError(
            name,
            f"no class folders in {path}: expected one sub-folder of images per class (or train/ and val/ holding them)",
        )
    if len(scan.classes) < 2:
        raise DataError(
            name,
            f"found one class ('{scan.classes[0]}') in {path}; a classifier needs at least two class folders",
        )
    index = {c: i for i, c in enumerate(scan.classes)}
    for (_, split), class_dirs in zip(splits, split_classes, strict=True):
        for class_dir in class_dirs:
            label = class_name(class_dir)
            if label not in index:
                raise DataError(
                    name,
                    f"class '{label}' is in {class_dir.parent.name}/ but not in train/",
                )
            for file in _class_files(class_dir, root, skipped):
                scan.files.append((file, index[label], split))
    if not scan.files:
        raise DataError(name, f"no image files in the class folders of {path}")
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
        values = np.asarray(image, dtype=np.float64)
        if mode.startswith("I;16"):
            top = 65535.0
        elif mode == "F" and values.max(initial=0.0) <= 1.0:
            top = 1.0
        else:  # 32-bit integers, usually 16-bit data; anything larger scaled by its maximum
            top = max(65535.0, float(values.max(initial=0.0))) if mode == "I" else values.max()
        scaled = np.clip(values / max(top, 1e-12) * 255.0, 0, 255).round().astype(np.uint8)
        return Image.fromarray(scaled).convert("RGB")
    return image if mode == "RGB" else image.convert("RGB")


def decode_image(path: Path, size: int) -> np.ndarray | str:
    """One file as (3, size, size) uint8, or the reason it was skipped."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with Image.open(path) as opened:
            if opened.width * opened.height > MAX_PIXELS:
                return TOO_LARGE
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


def decode_folder(scan: FolderScan, size: int, threads: int | None = None) -> Decoded:
    """Decode every scanned file (threads: Pillow releases the GIL while decoding)."""
    workers = threads or min(8, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(lambda item: decode_image(item[0], size), scan.files))
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
    """Raise DataError when a class ended up without any usable image."""
    counts = np.bincount(decoded.labels, minlength=len(decoded.classes))
    if counts.sum() == 0:
        reasons = ", ".join(f"{r}: {n}" for r, n in decoded.skipped.items())
        raise DataError(name, f"no usable images ({reasons or 'none found'})")
    empty = [decoded.classes[i] for i in np.flatnonzero(counts == 0)]
    if empty:
        listed = ", ".join(f"'{c}'" for c in empty)
        raise DataError(
            name, f"class {listed} has no usable images; every class folder needs at least one"
        )
