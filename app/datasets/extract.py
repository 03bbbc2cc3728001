"""A zip of class folders, read member by member into a folder the engine trains on.

Nothing in the archive is trusted: each entry's path, type and size is checked before a byte
of it is written, and bytes are counted as they are decompressed (the sizes in the headers
are never believed), so an archive that would expand past a cap is stopped at the cap.

InvalidInput, the whole archive (`InvalidInput`, field `file`): an entry whose path is absolute, has a
drive letter, a backslash or a `..` part or a control character; a symbolic link, a device,
FIFO or socket (the Unix mode in the entry's external attributes); an encrypted entry or an
unknown compression method; more entries than DATASET_MAX_FILES; an entry that expands more
than DATASET_MAX_RATIO times its compressed size (entries under RATIO_FLOOR are let through);
more bytes in all than the cap; an image over DATASET_MAX_PIXELS; images over
DATASET_MAX_TOTAL_PIXELS together, or taking over DATASET_MAX_DECODE_SECONDS to decode; a
damaged archive; fewer
than two class folders, or a class without a usable image.

Skipped and counted (the engine's own rules, app.worker.training.data.folder): `__MACOSX/`,
AppleDouble `._x` and other hidden or system files; files outside any class folder; files that
do not decode as an image (checked by a full decode, whatever the extension); truncated
images; an archive inside the archive (never expanded). The first SKIPPED_NAMED of them are
also named (their path inside the archive, as `shown`), hidden and system files last, so the
learner can find the file that did not count.

The layout is the folder reader's (`rules.split_layout`): class folders; train/ with val/;
train/ with test/ (test/ counted unused, validation held out of train/ later); anything else
named like a split, or images flat beside a CSV of labels, refused. Entry names are decoded as
the archiver meant them (`entry_name`).

What is kept: `<class>/<n>.<ext>` (or `train|val/<class>/<n>.<ext>` for an archive that holds
train/ and val/), named by the image's real format, so the stored folder holds nothing but
decodable images in class folders.
"""

from __future__ import annotations

import contextlib
import unicodedata
import zipfile
import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from app.datasets import budget, decoding
from app.datasets.entries import Caps, check_directory, check_entry, shown, too_many
from app.worker.errors import InvalidInput
from app.worker.training.data import folder as rules

CHUNK = 64 * 1024
RATIO_FLOOR = 64 * 1024  # an entry this small may expand any amount (a flat-colour BMP)
MAX_CLASS_NAME = 100
NESTED = "archive inside the archive (not expanded)"
UNUSED_SPLIT = rules.UNUSED_SPLIT
OTHER_FORMAT = rules.OTHER_FORMAT
UTF8_FLAG = 0x800  # general purpose bit 11: the name is UTF-8 (APPNOTE 6.3, appendix D)
# Pillow's format name (rules.READ_FORMATS) → the extension the stored file gets.
EXTENSIONS = {
    "DIB": ".bmp",
    "JPEG": ".jpg",
    "MPO": ".jpg",
    "PNG": ".png",
    "GIF": ".gif",
    "BMP": ".bmp",
    "WEBP": ".webp",
    "TIFF": ".tif",
    "PPM": ".ppm",
}
ARCHIVE_MAGIC = (b"PK\x03\x04", b"PK\x05\x06", b"\x1f\x8b", b"7z\xbc\xaf", b"Rar!", b"BZh")
# Images read per call to a decoding process: a round trip costs about what a small image's
# decode does, so they go in batches (a refusal stops the batch at its image).
BATCH = 64
# Skipped files named per data set, in all (the counts cover every one): enough to find the
# few that matter, small enough for a row and a page.
SKIPPED_NAMED = 50


@dataclass
class Extracted:
    """What an archive gave: usable images per class (sorted by name), skipped files by reason,
    the bytes kept on disk, and the first SKIPPED_NAMED skipped files' names by reason (paths
    inside the archive, printable, at most 80 characters each)."""

    classes: dict[str, int]
    skipped: dict[str, int]
    disk_bytes: int
    skipped_names: dict[str, list[str]] = field(default_factory=dict)


@dataclass
class Skips:
    """Skipped files: every one counted by reason, the first SKIPPED_NAMED of each reason named
    (memory stays bounded whatever the archive holds)."""

    counts: Counter[str] = field(default_factory=Counter)
    names: dict[str, list[str]] = field(default_factory=dict)

    def add(self, reason: str, name: str) -> None:
        """Count one skipped file; `name` is its path inside the archive."""
        self.counts[reason] += 1
        named = self.names.setdefault(reason, [])
        if len(named) < SKIPPED_NAMED:
            named.append(shown(name))

    def order(self) -> list[str]:
        """The reasons met, hidden and system files last, the rest by name."""
        return sorted(self.counts, key=lambda reason: (reason == rules.HIDDEN, reason))

    def named(self) -> dict[str, list[str]]:
        """At most SKIPPED_NAMED names in all, hidden and system files last (a macOS zip holds
        one `._x` per image, which would crowd out the file the learner is looking for)."""
        left, kept = SKIPPED_NAMED, {}
        for reason in self.order():
            if left and self.names.get(reason):
                kept[reason] = self.names[reason][:left]
                left -= len(kept[reason])
        return kept


@dataclass
class _Entry:
    info: zipfile.ZipInfo
    parts: tuple[str, ...]


@dataclass
class _Plan:
    items: list[tuple[zipfile.ZipInfo, tuple[str, ...]]] = field(default_factory=list)
    classes: list[str] = field(default_factory=list)
    skips: Skips = field(default_factory=Skips)


def entry_name(info: zipfile.ZipInfo) -> str:
    """The entry's name as its archiver meant it, in Unicode NFC.

    Without the UTF-8 flag, zipfile decodes a name as CP437, the format's old default; but
    macOS's Archive Utility (and other tools) write UTF-8 without setting the flag, so a
    name whose bytes are valid UTF-8 is read as UTF-8 (bytes of real CP437 text above 0x7F
    almost never form valid UTF-8). NFC: macOS stores names decomposed ("e" + U+0301), others
    composed ("é"); a class typed on both is one class, as the learner sees it.
    """
    name = info.filename
    if not info.flag_bits & UTF8_FLAG:
        with contextlib.suppress(UnicodeEncodeError, UnicodeDecodeError):
            name = name.encode("cp437").decode("utf-8")
    return unicodedata.normalize("NFC", name)


def budget_reason(error: BaseException) -> str:
    """An exception's text for a message; never empty (zipfile's EOFError has no text)."""
    if isinstance(error, EOFError) and not str(error).strip():
        return "the file ends before the entry's data does: it was cut short"
    return str(error).strip() or type(error).__name__


def _junk(parts: tuple[str, ...]) -> bool:
    return any(rules._is_junk(part) for part in parts)


def plan(entries: list[zipfile.ZipInfo]) -> _Plan:
    """Which entry goes to which class folder, from the names alone (nothing is read yet).

    A single wrapping folder is descended into (loose non-image files beside it are skipped);
    `train/` with `val/` (or `valid/`, `validation/`) keeps its split. Raises InvalidInput for an
    unsafe entry, or when the layout has fewer than two class folders.
    """
    result = _Plan()
    files: list[_Entry] = []
    folders: list[tuple[str, ...]] = []
    for info in entries:
        check_entry(info)
        name = entry_name(info)
        parts = tuple(p for p in PurePosixPath(name).parts if p not in ("", "."))
        if not parts:
            continue
        if _junk(parts):
            if not info.is_dir():
                result.skips.add(rules.HIDDEN, name)
        elif info.is_dir():
            folders.append(parts)
        else:
            files.append(_Entry(info, parts))
    depth, wrapper = 0, ""
    while True:
        loose = [e for e in files if len(e.parts) == depth + 1]
        tops = {e.parts[depth] for e in files if len(e.parts) > depth + 1}
        tops |= {p[depth] for p in folders if len(p) > depth}
        if len(tops) != 1 or any(rules.image_named(e.parts[-1]) for e in loose):
            break
        for entry in loose:
            result.skips.add(rules.NOT_IMAGE, entry_name(entry.info))
        files = [e for e in files if len(e.parts) > depth + 1]
        wrapper = next(iter(tops))
        depth += 1
    files = [_Entry(e.info, e.parts[depth:]) for e in files]
    folders = [p[depth:] for p in folders if len(p) > depth]
    names = sorted({e.parts[0] for e in files if len(e.parts) > 1} | {p[0] for p in folders})
    loose_names = [e.parts[0] for e in files if len(e.parts) == 1]
    try:  # the folder reader's own rule for splits and label files
        train, val, _ = rules.split_layout(names, loose_names, "file")
    except rules.InvalidInput as error:
        raise InvalidInput("file", error.message) from None
    splits = [train, val] if train is not None else None
    classes: set[str] = set()
    for entry in files:
        path = entry_name(entry.info)
        if len(entry.parts) == 1:
            image_name = rules.image_named(entry.parts[0])
            result.skips.add(rules.LOOSE if image_name else rules.NOT_IMAGE, path)
        elif splits is None:
            classes.add(entry.parts[0])
            result.items.append((entry.info, (entry.parts[0],)))
        elif entry.parts[0] not in splits:
            result.skips.add(UNUSED_SPLIT, path)
        elif len(entry.parts) == 2:
            result.skips.add(rules.LOOSE, path)
        elif val is None:  # train/ and test/: validation is held out of train/ later
            classes.add(entry.parts[1])
            result.items.append((entry.info, (entry.parts[1],)))
        else:
            split = "train" if entry.parts[0] == splits[0] else "val"
            classes.add(entry.parts[1])
            result.items.append((entry.info, (split, entry.parts[1])))
    if splits is None:
        classes |= {p[0] for p in folders}
    elif val is None:
        classes |= {p[1] for p in folders if len(p) > 1 and p[0] == train}
    else:
        classes |= {p[1] for p in folders if len(p) > 1 and p[0] in splits}
        trained = {c for info, dest in result.items if dest[0] == "train" for c in dest[1:]}
        trained |= {p[1] for p in folders if len(p) > 1 and p[0] == splits[0]}
        for name in sorted(classes - trained):
            raise InvalidInput(
                "file", f"class '{shown(name)}' is in {splits[1]}/ but not in train/"
            )
    for name in classes:
        if len(name) > MAX_CLASS_NAME:
            raise InvalidInput(
                "file", f"class folder '{shown(name)}' has a name over 100 characters"
            )
    result.classes = sorted(classes)
    if not result.classes and wrapper and result.skips.counts[rules.LOOSE]:
        result.classes = [wrapper]  # images in one folder: that folder is the only class
    if not result.classes:
        raise InvalidInput(
            "file",
            "no class folders in the archive: put one folder of images per class in the zip",
        )
    if len(result.classes) < 2:
        raise InvalidInput(
            "file",
            f"found one class ('{shown(result.classes[0])}'); a classifier needs at least two "
            "class folders",
        )
    return result


# The decoding process's verdicts in the folder reader's words.
DECODE_REASONS = {
    decoding.TOO_LARGE: rules.TOO_LARGE,
    decoding.UNDECODABLE: rules.UNDECODABLE,
    decoding.TRUNCATED: rules.TRUNCATED,
}


def _image_extension(
    seen: decoding.Decoded,
    pixels: int,
    label: str,
    pixel_budget: budget.PixelBudget,
    decode_budget: budget.DecodeBudget,
) -> str:
    """The kept file's extension for an image read in a decoding process, or the reason to
    skip it; InvalidInput over the pixel cap, the archive's pixels or past its decode time."""
    if seen.verdict == decoding.TOO_LARGE and not seen.width:  # Pillow would not open it
        size = f"{seen.pixels:,}" if seen.pixels else "too many"
        raise InvalidInput(
            "file",
            f"image '{label}' has {size} pixels, over the limit of {pixels:,} (DATASET_MAX_PIXELS)",
        )
    if not seen.width and seen.verdict is not None:  # not even a header
        decode_budget.spend(seen.cpu_seconds, label)
        return rules.UNDECODABLE
    if seen.pixels > pixels:
        raise InvalidInput(
            "file",
            f"image '{label}' has {seen.pixels:,} pixels, over the limit of {pixels:,} "
            "(DATASET_MAX_PIXELS)",
        )
    if seen.format not in rules.READ_FORMATS:
        return OTHER_FORMAT
    pixel_budget.take(seen.pixels, label)  # counted from the header, before the full decode
    decode_budget.spend(seen.cpu_seconds, label)
    return EXTENSIONS[seen.format] if seen.verdict is None else DECODE_REASONS[seen.verdict]


def _copy(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, dest: Path, caps: Caps, written: int
) -> int | None:
    """Stream one entry into `dest`; the bytes written, or None for a nested archive (nothing
    written). `written` is the archive's total so far, for the total cap."""
    label = shown(info.filename)
    allowed = max(RATIO_FLOOR, caps.ratio * info.compress_size)
    count = 0
    with archive.open(info) as source:
        chunk = source.read(CHUNK)
        if chunk.startswith(ARCHIVE_MAGIC):
            return None
        with open(dest, "xb") as out:
            while chunk:
                count += len(chunk)
                if count > allowed:
                    raise InvalidInput(
                        "file",
                        f"entry '{label}' expands more than {caps.ratio:g} times its compressed "
                        f"size ({info.compress_size:,} bytes), the limit (DATASET_MAX_RATIO): "
                        "a zip bomb is refused",
                        status=413,
                    )
                if written + count > caps.total_bytes:
                    raise InvalidInput(
                        "file",
                        f"the archive expands past {caps.total_bytes:,} bytes, "
                        f"the limit ({caps.total_name})",
                        status=413,
                    )
                try:
                    out.write(chunk)
                except OSError as error:  # the server's disk, not the archive
                    raise InvalidInput(
                        "file", f"the server could not store the files ({error.strerror})", 507
                    ) from None
                chunk = source.read(CHUNK)
    return count


def extract_zip(archive_path: Path, target: Path, caps: Caps) -> Extracted:
    """Unpack the class folders of `archive_path` into the empty folder `target`.

    Raises InvalidInput (field `file`, 422 or 413). On a refusal `target` holds partial content:
    the caller removes it (it is a temporary folder). Blocking: call it from a thread.
    """
    budget.check_zip64_directory(archive_path, caps)
    check_directory(archive_path, caps)
    try:
        archive = zipfile.ZipFile(archive_path)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as error:
        raise InvalidInput("file", f"not a readable zip archive ({budget_reason(error)})") from None
    with archive:
        entries = archive.infolist()
        if len(entries) > caps.files:
            raise too_many(len(entries), caps)
        layout = plan(entries)
        budget.check_class_count(layout.classes, caps)
        pixel_budget = budget.PixelBudget(caps)
        decode_budget = budget.DecodeBudget(caps)
        skips = layout.skips
        counts = dict.fromkeys(layout.classes, 0)
        numbers: Counter[tuple[str, ...]] = Counter()
        written = disk = 0
        pending: list[tuple[zipfile.ZipInfo, tuple[str, ...], Path, int]] = []

        def read_pending() -> None:
            """Read the copied images in one call to a decoding process; keep or skip each."""
            nonlocal disk
            if not pending:
                return
            limits = decoding.Limits(
                cpu_seconds=decode_budget.remaining,
                max_pixels=caps.pixels,
                pixels_left=pixel_budget.limit - pixel_budget.used,
                formats=rules.READ_FORMATS,
            )
            with budget.decoding():  # every pixel, in a decoding process
                try:
                    results = decoding.read_images([entry[2] for entry in pending], limits)
                except decoding.OverBudget as over:  # stopped past the budget: a 413
                    decode_budget.used += over.cpu_seconds
                    decode_budget.refuse(shown(pending[over.index][0].filename))
            for (info, dest_dir, path, size), seen in zip(pending, results, strict=False):
                outcome = _image_extension(
                    seen, caps.pixels, shown(info.filename), pixel_budget, decode_budget
                )
                if not outcome.startswith("."):
                    path.unlink()
                    skips.add(outcome, entry_name(info))
                    continue
                path.rename(path.with_suffix(outcome))
                disk += size
                counts[dest_dir[-1]] += 1
            if len(results) < len(pending):
                raise AssertionError("the decoder stopped without a refusal")
            pending.clear()

        for info, dest_dir in layout.items:
            folder = target.joinpath(*dest_dir)
            folder.mkdir(parents=True, exist_ok=True)
            numbers[dest_dir] += 1
            path = folder / f"{numbers[dest_dir]:06d}"
            try:
                size = _copy(archive, info, path, caps, written)
            except (zipfile.BadZipFile, zlib.error, EOFError, OSError, RuntimeError) as error:
                raise InvalidInput(
                    "file",
                    f"the archive is damaged at '{shown(info.filename)}' ({budget_reason(error)})",
                ) from None
            except NotImplementedError as error:
                raise InvalidInput("file", f"'{shown(info.filename)}': {error}") from None
            if size is None:
                skips.add(NESTED, entry_name(info))
                continue
            written += size
            pending.append((info, dest_dir, path, size))
            if len(pending) >= BATCH:
                read_pending()
        read_pending()
    split = any(len(dest_dir) == 2 for _, dest_dir in layout.items)
    _check_counts(counts, skips.counts, split=split)
    return Extracted(
        classes=counts,
        skipped={k: skips.counts[k] for k in skips.order() if skips.counts[k]},
        disk_bytes=disk,
        skipped_names=skips.named(),
    )


def _check_counts(counts: dict[str, int], skipped: Counter[str], *, split: bool) -> None:
    """Refuse when no image, or some class, survived the checks, or when a class of a set
    without train/ and val/ keeps a single image: training holds at least one image of each
    class out for validation, so such a set could never train."""
    why = ", ".join(f"{reason}: {n}" for reason, n in sorted(skipped.items())) or "none found"
    if not any(counts.values()):
        raise InvalidInput("file", f"no usable images in the archive (skipped: {why})")
    empty = [name for name, n in counts.items() if n == 0]
    if empty:
        listed = ", ".join(f"'{shown(c)}'" for c in empty)
        raise InvalidInput(
            "file",
            f"class {listed} has no usable images; every class folder needs at least one "
            f"(skipped: {why})",
        )
    if not split:
        single = [name for name, n in counts.items() if n == 1]
        if single:
            listed = ", ".join(f"'{shown(c)}'" for c in single[:5])
            more = f" and {len(single) - 5} more" if len(single) > 5 else ""
            raise InvalidInput(
                "file",
                f"class {listed}{more} has only 1 usable image; each class needs at least 2, "
                "as one is held out for validation (or give train/ and val/ folders)",
            )
