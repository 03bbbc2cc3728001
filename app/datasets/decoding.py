"""Full image decodes of uploads, done in a separate process rather than in the web process.

An upload's images are each read (header, then every pixel) once (`read_images`, a batch a
call), to keep only files that training can read; nothing of an image is parsed in the web
process. A decode is pure CPU and memory: up to DATASET_MAX_PIXELS pixels at up to
4 bytes a pixel (160 MB for an image of 40 MP). In a thread of the web process it competes
with the event loop for the interpreter lock, the heap and, on a machine of 2 cores, the CPU:
a stream of the heaviest uploads the caps admit put `/healthz`'s p99 at 2.5-3.4x its idle
figure (`python -m benchmarks.capacity`). Here decodes run in a pool of DECODES processes:

- forked from multiprocessing's fork server, a fresh interpreter that has imported Pillow,
  this module and the server's main module (`app.cli`: settings, no torch), so no lock of the
  threaded web process is copied into a child, and a new pool after `shutdown` starts in
  milliseconds rather than an interpreter's start-up;
- scheduled as SCHED_IDLE where Linux offers it (else at nice 19): a decode gets a core only
  when no request wants it. Training runs at nice 10 and leaves the web process a core
  (RUN_THREADS=0), so a decode still moves while a run trains;
- each watching the web process and leaving when it ends, so a killed server leaves no
  decoder behind (the fork server leaves once the last of them has gone).

What crosses the process boundary is paths, limits, and per image a short verdict, the
header's size and format and its CPU seconds,
which DATASET_MAX_DECODE_SECONDS counts (a decode waiting for the CPU is not charged for the
wait; under a busy CPU a decode takes longer in wall time, not in budget). A decode is given
what is left of its archive's budget and stopped there, not after: one small crafted image
(a progressive JPEG of many scans) cannot hold a decoder for minutes. A decoding process
that dies in a decode for another reason (a crash in a codec, a kill, the kernel's
out-of-memory killer) is replaced and the image tried once more; an image that ends two is
skipped as not decodable.
"""

from __future__ import annotations

import contextlib
import os
import re
import select
import signal
import threading
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import get_context
from multiprocessing.context import BaseContext
from pathlib import Path
from typing import NamedTuple

# Decoding processes (one per two cores).
DECODES = max(1, (os.cpu_count() or 2) // 2)
# The nice value where SCHED_IDLE is not offered: the lowest priority there is.
NICE = 19
# How often a decoding process checks that the web process is still there, in seconds.
WATCH_S = 1.0
# How often a decode with a CPU limit checks the CPU time it has used, in seconds.
CPU_CHECK_S = 0.02
# The decoding process's verdicts; the caller words them (the folder reader's reasons).
TOO_LARGE, UNDECODABLE, TRUNCATED = "too large", "undecodable", "truncated"
# The decode was stopped at its CPU limit (the decoding process ended for it).
OVER_BUDGET = "over budget"
# Only the header was read: its size or format is outside the limits the caller gave.
NOT_DECODED = "not decoded"
# Beside an image, while its decoder ends for the CPU limit: the CPU seconds it had used.
OVER_BUDGET_SUFFIX = ".over-cpu-budget"

_pool: ProcessPoolExecutor | None = None
_pool_lock = threading.Lock()


class Decoded(NamedTuple):
    """One image read in a decoding process. `verdict`: None when every pixel decoded, else
    TOO_LARGE, UNDECODABLE, TRUNCATED, OVER_BUDGET, or NOT_DECODED (the header alone was
    read: the caller's limits refuse the image). `cpu_seconds`: the CPU time it took there,
    header included (s). From the header, when it could be read: `width` and `height` (px)
    and Pillow's `format`; `pixels` is Pillow's count when it refused the header as a
    decompression bomb (TOO_LARGE with width 0), else width × height."""

    verdict: str | None
    cpu_seconds: float
    width: int = 0
    height: int = 0
    format: str = ""
    pixels: int = 0


def lowest_priority() -> str:
    """Make the calling process the last served for the CPU: "SCHED_IDLE" (Linux), else
    "nice 19", else "unchanged" where the system allows neither."""
    idle = getattr(os, "SCHED_IDLE", None)
    if idle is not None:
        with contextlib.suppress(OSError):
            os.sched_setscheduler(0, idle, os.sched_param(0))
            return "SCHED_IDLE"
    with contextlib.suppress(OSError):
        os.nice(NICE - os.nice(0))
        return f"nice {NICE}"
    return "unchanged"


def _context() -> BaseContext:
    context = get_context("forkserver")
    context.set_forkserver_preload(["app.datasets.decoding", "app.malloc", "PIL.Image"])
    return context


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rsplit(b")", 1)[1].split()[0] in (b"Z", b"X")
    except FileNotFoundError:
        return True
    except OSError:  # no /proc: only whether the pid still exists
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        except OSError:
            pass
        return False


def _leave_with(web: int) -> None:
    """Wait for the web process `web` to end (a pidfd where Linux has one, else a poll of
    WATCH_S), then end this process."""
    try:
        handle = os.pidfd_open(web)
    except (AttributeError, OSError):
        while not _gone(web):
            time.sleep(WATCH_S)
    else:
        select.select([handle], [], [])
    os._exit(0)


def _start_child(web: int) -> None:
    """In each decoding process, once: the CPU watch (`_watch_cpu`); the lowest CPU priority
    for the thread that decodes (and the threads it starts); large blocks from the kernel,
    so a decode's pixels go back as soon as they are freed (app.malloc); and a watch on the
    web process `web` (its pid), ending this process when that one ends."""
    _start_watch()  # before the priority drops: the watch keeps the process's first one
    lowest_priority()
    # Ctrl-C in the server's terminal reaches its whole process group: the web process
    # stops, and its decoders end with it (_leave_with) rather than in a traceback.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    from app.malloc import large_blocks_from_the_kernel

    large_blocks_from_the_kernel()
    threading.Thread(target=_leave_with, args=(web,), daemon=True).start()


class Limits(NamedTuple):
    """What one call of `read_images` is held to, each None for no limit: `cpu_seconds`, the
    CPU time all its images may take (s); `max_pixels`, an image's pixels; `pixels_left`,
    the pixels of all the images that count (a readable header within `max_pixels`, in one
    of `formats`); `formats`, Pillow's format names that are decoded (others: NOT_DECODED)."""

    cpu_seconds: float | None = None
    max_pixels: int | None = None
    pixels_left: int | None = None
    formats: frozenset[str] | None = None


class OverBudget(Exception):
    """The images up to `paths[index]` used `cpu_seconds` (s), more than Limits.cpu_seconds:
    the decoding process was stopped there."""

    def __init__(self, index: int, cpu_seconds: float) -> None:
        super().__init__(index, cpu_seconds)
        self.index, self.cpu_seconds = index, cpu_seconds


def counts(seen: Decoded, limits: Limits) -> bool:
    """Whether `seen` counts against Limits.pixels_left: a header within max_pixels, in one of
    the formats."""
    return bool(
        seen.width
        and (limits.max_pixels is None or seen.pixels <= limits.max_pixels)
        and (limits.formats is None or seen.format in limits.formats)
    )


def ends_the_batch(seen: Decoded, limits: Limits, pixels_left: int | None) -> bool:
    """Whether `seen` refuses its archive (a header Pillow refuses as a bomb, over
    max_pixels, or past the pixels left), so the images after it are not read."""
    if seen.verdict == TOO_LARGE and not seen.width:
        return True
    if limits.max_pixels is not None and seen.pixels > limits.max_pixels:
        return True
    return pixels_left is not None and counts(seen, limits) and seen.pixels > pixels_left


class _Batch:
    """The batch a decoding process is reading, for its CPU watch: the CPU time it started at
    (`time.process_time`, s), its limit (None: none, or no batch), and the image being read."""

    start: float = 0.0
    limit: float | None = None
    path: str = ""


_batch = _Batch()
_batch_running = threading.Event()
_batch_lock = threading.Lock()
_watch_lock = threading.Lock()
_watching = False


def _watch_cpu() -> None:
    """While a batch with a CPU limit runs, check every CPU_CHECK_S whether this process has
    used more since it started; if so leave the CPU seconds beside the image being read and
    end the process. Runs for the process's life, at the priority the process had when it
    started (not SCHED_IDLE: a starved watch would let the decode run on)."""
    while True:
        _batch_running.wait()
        time.sleep(CPU_CHECK_S)
        # Under the lock the batch cannot end meanwhile: either it ended first (nothing is
        # written) or its result is never sent (the caller finds the figure).
        with _batch_lock:
            if _batch.limit is None or not _batch_running.is_set():
                continue
            used = time.process_time() - _batch.start
            if used > _batch.limit:
                with contextlib.suppress(OSError):
                    Path(_batch.path + OVER_BUDGET_SUFFIX).write_text(repr(used))
                os._exit(3)


def _start_watch() -> None:
    global _watching
    with _watch_lock:
        if not _watching:
            threading.Thread(target=_watch_cpu, daemon=True, name="cpu-watch").start()
            _watching = True


def read_one(path: str, max_pixels: int | None, formats: frozenset[str] | None) -> Decoded:
    """Read the header of the image at `path`, then, unless it has more than `max_pixels` or
    a format outside `formats` (NOT_DECODED), decode every pixel in its own mode (at most 4
    bytes a pixel)."""
    from PIL import Image, UnidentifiedImageError

    start = time.process_time()
    width = height = 0
    kind = ""
    verdict: str | None = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as opened:
                width, height, kind = opened.width, opened.height, opened.format or ""
                too_many = max_pixels is not None and width * height > max_pixels
                if too_many or (formats is not None and kind not in formats):
                    verdict = NOT_DECODED
                else:
                    opened.load()
    except Image.DecompressionBombError as error:
        found = re.search(r"\((\d+) pixels\)", str(error))
        return Decoded(TOO_LARGE, time.process_time() - start, pixels=int(found[1]) if found else 0)
    except UnidentifiedImageError:
        verdict = UNDECODABLE
    except OSError as error:
        verdict = TRUNCATED if "truncated" in str(error).lower() else UNDECODABLE
    except (ValueError, TypeError, SyntaxError, IndexError, KeyError, EOFError):
        verdict = UNDECODABLE
    return Decoded(verdict, time.process_time() - start, width, height, kind, width * height)


def read_in_child(paths: list[str], limits: Limits) -> list[Decoded]:
    """`read_one` for each path in order, in a decoding process, stopping after an image that
    `ends_the_batch`; the pixels left go down by each image that `counts`. With
    Limits.cpu_seconds the process ends once the batch has used more (a decoder deep in C
    code cannot be interrupted short of that), leaving the figure beside the image being
    read, for `read_images` to raise as OverBudget."""
    _start_watch()  # started with the process (_start_child) unless called elsewhere
    if limits.max_pixels is not None:  # Pillow's own bomb guard, never below the cap
        from PIL import Image

        Image.MAX_IMAGE_PIXELS = max(Image.MAX_IMAGE_PIXELS or 0, limits.max_pixels)
    with _batch_lock:
        _batch.start, _batch.limit = time.process_time(), limits.cpu_seconds
        _batch.path = paths[0] if paths else ""
        _batch_running.set()
    left = limits.pixels_left
    results: list[Decoded] = []
    try:
        for path in paths:
            _batch.path = path
            cap = limits.max_pixels if left is None else min(limits.max_pixels or left, left)
            seen = read_one(path, cap, limits.formats)
            results.append(seen)
            if ends_the_batch(seen, limits, left):
                break
            if left is not None and counts(seen, limits):
                left -= seen.pixels
    finally:
        with _batch_lock:
            _batch_running.clear()
            _batch.limit = None
    return results


def _executor() -> ProcessPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ProcessPoolExecutor(
                max_workers=DECODES,
                mp_context=_context(),
                initializer=_start_child,
                initargs=(os.getpid(),),
            )
        return _pool


def _discard(pool: ProcessPoolExecutor) -> None:
    global _pool
    with _pool_lock:
        if _pool is pool:
            _pool = None
    pool.shutdown(wait=False, cancel_futures=True)


def _over_budget(path: Path) -> float | None:
    marker = Path(str(path) + OVER_BUDGET_SUFFIX)
    try:
        used = float(marker.read_text())
    except (OSError, ValueError):
        return None
    marker.unlink(missing_ok=True)
    return used


def _raise_over_budget(paths: list[Path]) -> None:
    """OverBudget where the CPU watch left its figure beside one of `paths` (removed)."""
    for index, path in enumerate(paths):
        used = _over_budget(path)
        if used is not None:
            raise OverBudget(index, used)


def _submit_twice(paths: list[Path], limits: Limits) -> list[Decoded]:
    for attempt in range(2):
        pool = _executor()
        try:
            results = pool.submit(read_in_child, [str(p) for p in paths], limits).result()
        except BrokenProcessPool:
            _discard(pool)
            _raise_over_budget(paths)
            if attempt:
                raise
        else:
            # The watch may have passed the limit as the batch ended, its figure written but
            # the process not yet gone: the batch is over budget all the same.
            _raise_over_budget(paths)
            return results
    raise AssertionError("unreachable")


def read_images(paths: list[Path], limits: Limits) -> list[Decoded]:
    """Read the images at `paths` in order in a decoding process (`read_in_child`): one
    result each, up to and including the first that ends the batch. Blocking: call it from a
    thread; the caller bounds how many run at once (app.datasets.budget.decoding).

    Raises OverBudget past Limits.cpu_seconds. A decoding process that dies for another
    reason (killed, a crash in a codec, the pool stopped around it) costs a new pool and one
    more try; a batch that ends two decoders is read in halves, so only an image that ends
    two decoders on its own is lost (UNDECODABLE). Raises what a decode raised outside
    Pillow's errors (MemoryError, say)."""
    try:
        return _submit_twice(paths, limits)
    except BrokenProcessPool:
        if len(paths) <= 1:
            return [Decoded(UNDECODABLE, 0.0)] * len(paths)
    half = len(paths) // 2
    first = read_images(paths[:half], limits)
    taken = sum(seen.pixels for seen in first[:-1] if counts(seen, limits))
    left = None if limits.pixels_left is None else limits.pixels_left - taken
    if len(first) < half or ends_the_batch(first[-1], limits, left):
        return first
    used = sum(seen.cpu_seconds for seen in first)
    taken += first[-1].pixels if counts(first[-1], limits) else 0
    rest = limits._replace(
        cpu_seconds=None if limits.cpu_seconds is None else limits.cpu_seconds - used,
        pixels_left=None if limits.pixels_left is None else limits.pixels_left - taken,
    )
    try:
        return first + read_images(paths[half:], rest)
    except OverBudget as over:
        raise OverBudget(half + over.index, used + over.cpu_seconds) from None


def shutdown() -> None:
    """Stop the decoding processes, after a decode in progress (the next decode starts new
    ones)."""
    global _pool
    with _pool_lock:
        pool, _pool = _pool, None
    if pool is not None:
        pool.shutdown(wait=True, cancel_futures=True)
