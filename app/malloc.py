"""Large blocks of memory straight from the kernel, in the web process (glibc's malloc).

Decoding an image allocates its pixels in one go (40 MB for a palette image of 40 MP, 160 MB
at 4 bytes a pixel), and Pillow asks for them zeroed while it holds the interpreter lock. Once
glibc has seen a large block freed it raises its threshold for serving blocks by `mmap`
(up to 32 MB), so the next ones come from the heap and are zeroed by `memset`: ~20 ms with
the lock held for each image, during which no other request moves (an upload of 40 MP images
put /healthz's p99 at 8-10x its idle baseline). A fixed threshold keeps every block of
LARGE_BLOCK or more on `mmap`: the kernel hands over zeroed pages as they are first touched,
outside the lock, and takes them back as soon as the block is freed, so a burst of decodes
does not leave the process holding gigabytes afterwards.
"""

from __future__ import annotations

import ctypes
import sys

M_MMAP_THRESHOLD = -3  # mallopt's parameter number (malloc.h)
LARGE_BLOCK = 4 * 1024 * 1024


def large_blocks_from_the_kernel(threshold: int = LARGE_BLOCK) -> bool:
    """Serve blocks of `threshold` bytes or more by `mmap` from now on (glibc's `mallopt`);
    True when the C library took the setting, False elsewhere (other C libraries, other
    systems), where nothing changes."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, threshold) == 1)
