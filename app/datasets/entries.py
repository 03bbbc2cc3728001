"""What an archive's directory may hold, checked before any entry is read: the names and types
of its entries, and the size of the directory itself. `InvalidInput` and `Caps` are shared by the
whole upload path.
"""

from __future__ import annotations

import re
import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path

from app.worker.errors import InvalidInput

CENTRAL_BYTES_PER_ENTRY = 1024  # directory bytes allowed per entry: a long path and extras
DRIVE = re.compile(r"[A-Za-z]:")
COMPRESSIONS = {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA}


@dataclass(frozen=True)
class Caps:
    """The limits one extraction runs under (bytes, entries, pixels)."""

    files: int
    total_bytes: int
    total_name: str  # the setting the byte cap comes from, for the message
    ratio: float
    pixels: int
    classes: int = 200  # DATASET_MAX_CLASSES
    total_pixels: int = 2_000_000_000  # DATASET_MAX_TOTAL_PIXELS
    decode_seconds: float = 60.0  # DATASET_MAX_DECODE_SECONDS


def shown(name: str) -> str:
    """An entry's name for a message: printable, at most 80 characters."""
    text = "".join(ch if ch.isprintable() else "?" for ch in name)
    return text if len(text) <= 80 else text[:77] + "..."


def check_entry(info: zipfile.ZipInfo) -> None:
    """Refuse an entry that could write outside the folder or is not a plain file or folder."""
    name = info.filename
    label = shown(name)
    # zipfile cuts a name at its first NUL; the name as stored (`orig_filename`) is checked.
    raw = getattr(info, "orig_filename", name)
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in name + raw):
        raise InvalidInput("file", f"entry '{label}' has a control character in its name")
    if "\\" in name:
        raise InvalidInput(
            "file", f"entry '{label}' uses backslashes in its path; zip paths use '/'"
        )
    if name.startswith("/"):
        raise InvalidInput("file", f"entry '{label}' has an absolute path")
    if DRIVE.match(name):
        raise InvalidInput("file", f"entry '{label}' starts with a drive letter")
    if ".." in name.split("/"):
        raise InvalidInput("file", f"entry '{label}' has a '..' part that would leave the folder")
    if any(len(part.encode()) > 255 for part in name.split("/")):
        raise InvalidInput("file", f"entry '{label}' has a name part longer than 255 bytes")
    kind = stat.S_IFMT(info.external_attr >> 16)
    if kind == stat.S_IFLNK:
        raise InvalidInput("file", f"entry '{label}' is a symbolic link; links are not accepted")
    if kind in (stat.S_IFCHR, stat.S_IFBLK, stat.S_IFIFO, stat.S_IFSOCK):
        raise InvalidInput("file", f"entry '{label}' is a device, FIFO or socket, not a file")
    if info.flag_bits & 0x1:
        raise InvalidInput(
            "file", f"entry '{label}' is encrypted; send an archive without a password"
        )
    if info.compress_type not in COMPRESSIONS:
        raise InvalidInput(
            "file",
            f"entry '{label}' uses compression method {info.compress_type}; "
            "use deflate (any zip tool's default)",
        )


def too_many(count: int, caps: Caps) -> InvalidInput:
    return InvalidInput(
        "file",
        f"the archive lists {count:,} entries, over the limit of {caps.files:,} "
        "(DATASET_MAX_FILES)",
        status=413,
    )


def check_directory(archive_path: Path, caps: Caps) -> None:
    """Refuse an archive whose central directory is too large, before zipfile parses it.

    zipfile reads the whole directory into ZipInfo objects at once; a directory of many tiny
    entries would cost memory before the entry cap could be applied. The end record gives the
    directory's size (at most CENTRAL_BYTES_PER_ENTRY per allowed entry), and its entry
    signatures are counted (an upper bound on the entries). An archive without an end record
    is left to zipfile, which refuses it.
    """
    with open(archive_path, "rb") as file:
        size = file.seek(0, 2)
        tail_length = min(size, 65_536 + 22)
        file.seek(size - tail_length)
        tail = file.read(tail_length)
        at = tail.rfind(b"PK\x05\x06")
        if at < 0 or tail_length - at < 22:
            return
        directory_size = int.from_bytes(tail[at + 12 : at + 16], "little")
        if directory_size > caps.files * CENTRAL_BYTES_PER_ENTRY:
            raise InvalidInput(
                "file",
                f"the archive's directory takes {directory_size:,} bytes, more than "
                f"{caps.files:,} entries (DATASET_MAX_FILES) need",
                status=413,
            )
        end = size - tail_length + at
        start = max(0, end - directory_size - 76)  # 76: the zip64 end record and locator
        file.seek(start)
        count = file.read(end - start).count(b"PK\x01\x02")
    if count > caps.files:
        raise too_many(count, caps)
