"""Full decodes of uploaded images in decoding processes (app.datasets.decoding): the verdict
Pillow gives in this process, the CPU time the decode took, the lowest CPU priority, and a
decoder killed mid-decode costing only its image."""

from __future__ import annotations

import contextlib
import io
import os
import signal
import threading
import time
from pathlib import Path

import pytest
from PIL import Image

from app.datasets import decoding
from tests.test_capacity_uploads import _descendants, palette_png

pytestmark = pytest.mark.skipif(not hasattr(os, "SCHED_IDLE"), reason="Linux: /proc, SCHED_IDLE")


def full_decode(
    path: Path,
    cpu_limit: float | None = None,
    *,
    max_pixels: int | None = None,
    formats: frozenset[str] | None = None,
) -> decoding.Decoded:
    """One image through `read_images`; past `cpu_limit` the verdict is OVER_BUDGET, with the
    CPU seconds it had used."""
    try:
        (seen,) = decoding.read_images(
            [path], decoding.Limits(cpu_limit, max_pixels, None, formats)
        )
    except decoding.OverBudget as over:
        return decoding.Decoded(decoding.OVER_BUDGET, over.cpu_seconds)
    return seen


def _pillow_verdict(path: Path) -> str | None:
    try:
        with Image.open(path) as image:
            image.load()
    except OSError as error:
        return decoding.TRUNCATED if "truncated" in str(error).lower() else decoding.UNDECODABLE
    return None


def _cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_bytes().rsplit(b")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def _parent(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_bytes().rsplit(b")", 1)[1].split()[1])


def _decoders() -> list[int]:
    """This process's decoders: SCHED_IDLE children of its own children (its fork server),
    not those of a server a test started."""
    me = os.getpid()
    found = []
    for pid in _descendants(me):
        with contextlib.suppress(OSError):
            if _parent(_parent(pid)) == me and os.sched_getscheduler(pid) == os.SCHED_IDLE:
                found.append(pid)
    return found


def test_verdicts_are_pillows_and_the_decoder_runs_at_the_lowest_priority(tmp_path: Path) -> None:
    whole = tmp_path / "whole.png"
    Image.new("RGB", (300, 200), (10, 200, 30)).save(whole)
    noisy = io.BytesIO()
    Image.effect_noise((300, 200), 64).save(noisy, format="PNG")
    cut = tmp_path / "cut.png"
    cut.write_bytes(noisy.getvalue()[: len(noisy.getvalue()) // 2])
    text = tmp_path / "text.png"
    text.write_bytes(b"not an image at all")

    for path in (whole, cut, text):
        decoded = full_decode(path)
        expected = _pillow_verdict(path) if path != text else decoding.UNDECODABLE
        assert decoded.verdict == expected, (path.name, decoded)
    assert full_decode(cut).verdict == decoding.TRUNCATED
    assert len(_decoders()) == decoding.DECODES


def test_a_decode_reports_its_cpu_time_not_its_wait(tmp_path: Path) -> None:
    big = tmp_path / "big.png"
    big.write_bytes(palette_png(6000, 3))  # 36 MP in a few KB
    start = time.perf_counter()
    decoded = full_decode(big)
    wall = time.perf_counter() - start
    assert decoded.verdict is None
    assert 0 < decoded.cpu_seconds <= wall


def _signal_while_decoding(
    sig: int, rounds: int, path: Path, *more: Path
) -> list[decoding.Decoded]:
    """Decode `path` (with `more`: read them all as one batch) in a thread; `rounds` times,
    wait until a decoder not signalled yet has used 20 ms of CPU (its decode, or its start
    under way) and send it `sig`."""
    results: list[decoding.Decoded] = []

    def read() -> None:
        if more:
            results.extend(decoding.read_images([path, *more], decoding.Limits()))
        else:
            results.append(full_decode(path))

    decode = threading.Thread(target=read)
    signalled: set[int] = set()
    seen: dict[int, int] = {pid: _cpu_ticks(pid) for pid in _decoders()}
    decode.start()
    deadline = time.monotonic() + 20
    while len(signalled) < rounds and decode.is_alive() and time.monotonic() < deadline:
        for pid in _decoders():
            with contextlib.suppress(OSError):
                ticks = _cpu_ticks(pid)
                if pid not in signalled and ticks >= seen.setdefault(pid, ticks) + 2:
                    os.kill(pid, sig)
                    signalled.add(pid)
        time.sleep(0.002)
    decode.join(60)
    assert len(signalled) == rounds, signalled
    return results


def test_a_decoder_killed_mid_decode_is_replaced_and_the_image_tried_again(
    tmp_path: Path,
) -> None:
    big = tmp_path / "big.png"
    big.write_bytes(palette_png(6300, 1))
    small = tmp_path / "small.png"
    Image.new("L", (20, 20), 7).save(small)
    assert full_decode(small).verdict is None  # the pool is up
    first = _decoders()
    # Killed once: the image is decoded by a new decoder.
    (once,) = _signal_while_decoding(signal.SIGKILL, 1, big)
    assert once.verdict is None, once
    assert _decoders() and not set(first) & set(_decoders())
    # Killed in both tries: the image is skipped as not decodable, and the next one decodes.
    (twice,) = _signal_while_decoding(signal.SIGKILL, 2, big)
    assert twice.verdict == decoding.UNDECODABLE, twice
    assert full_decode(small).verdict is None


def test_a_batch_that_ends_two_decoders_is_read_in_halves_and_loses_nothing(
    tmp_path: Path,
) -> None:
    paths = []
    for i in range(4):
        paths.append(tmp_path / f"{i}.png")
        paths[-1].write_bytes(palette_png(4000, i))
    assert full_decode(paths[0]).verdict is None  # the pool is up
    read = _signal_while_decoding(signal.SIGKILL, 2, *paths)
    assert [seen.verdict for seen in read] == [None] * 4, read
    assert [seen.pixels for seen in read] == [4000 * 4000] * 4


def test_a_decoder_that_died_idle_costs_no_image(tmp_path: Path) -> None:
    small = tmp_path / "small.png"
    Image.new("L", (20, 20), 7).save(small)
    assert full_decode(small).verdict is None
    for pid in _decoders():
        os.kill(pid, signal.SIGKILL)
    time.sleep(0.3)  # the pool has seen it die
    assert full_decode(small).verdict is None


def test_ctrl_c_in_the_terminal_does_not_stop_a_decode(tmp_path: Path) -> None:
    """SIGINT goes to the server's whole process group: a decoder ignores it (and ends with
    the web process instead), so the decode in progress finishes."""
    big = tmp_path / "big.png"
    big.write_bytes(palette_png(6300, 2))
    assert full_decode(big).verdict is None  # the pool is up
    (decoded,) = _signal_while_decoding(signal.SIGINT, 1, big)
    assert decoded.verdict is None, decoded


def test_a_decode_is_stopped_at_its_cpu_limit_not_after(tmp_path: Path) -> None:
    big = tmp_path / "big.png"
    big.write_bytes(palette_png(6300, 4))
    whole = full_decode(big)
    assert whole.verdict is None
    limit = whole.cpu_seconds / 5
    start = time.perf_counter()
    stopped = full_decode(big, cpu_limit=limit)
    assert stopped.verdict == decoding.OVER_BUDGET, (stopped, whole)
    assert limit < stopped.cpu_seconds < whole.cpu_seconds, (stopped, whole)
    assert time.perf_counter() - start < whole.cpu_seconds * 5
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.png"]  # no marker left
    # Within its limit the same decode is not stopped, and the pool is back.
    assert full_decode(big, cpu_limit=whole.cpu_seconds * 10).verdict is None


def test_the_header_is_read_in_the_decoder_within_the_cpu_limit(tmp_path: Path) -> None:
    """A JPEG of 200,000 empty APP1 segments before its frame: Pillow walks them one by one
    in Python (a quarter second or so). That walk happens in the decoding process, counted
    against the CPU limit and stopped there, not in the web process's threads."""
    small = io.BytesIO()
    Image.new("RGB", (16, 16), (200, 10, 10)).save(small, format="JPEG")
    body = small.getvalue()
    plain = tmp_path / "plain.jpg"
    plain.write_bytes(body)
    crafted = tmp_path / "markers.jpg"
    crafted.write_bytes(body[:2] + b"\xff\xe1\x00\x02" * 200_000 + body[2:])
    with Image.open(crafted) as opened:  # Pillow reads the same header here
        assert opened.size == (16, 16)

    baseline = full_decode(plain)
    read = full_decode(crafted, max_pixels=100, formats=frozenset({"PNG"}))
    assert read.verdict == decoding.NOT_DECODED and (read.width, read.format) == (16, "JPEG")
    assert read.cpu_seconds > 10 * baseline.cpu_seconds, (read, baseline)  # the walk counted
    stopped = full_decode(crafted, cpu_limit=read.cpu_seconds / 5)
    assert stopped.verdict == decoding.OVER_BUDGET and stopped.width == 0, (stopped, read)


def test_a_batch_stops_at_the_image_that_ends_its_archive(tmp_path: Path) -> None:
    """Images are read in batches (one round trip each): the pixels left go down image by
    image, and the batch stops at the first image past them, the later ones unread."""
    paths = []
    for i, side in enumerate((10, 10, 30, 10)):
        path = tmp_path / f"{i}.png"
        Image.new("RGB", (side, side), (i, 0, 0)).save(path)
        paths.append(path)
    text = tmp_path / "4.txt"
    text.write_bytes(b"no image")
    limits = decoding.Limits(max_pixels=1_000, pixels_left=500, formats=frozenset({"PNG"}))

    read = decoding.read_images([paths[0], text, *paths[1:]], limits)
    assert [seen.verdict for seen in read] == [
        None,
        decoding.UNDECODABLE,
        None,
        decoding.NOT_DECODED,
    ]
    assert read[-1].pixels == 900 and decoding.ends_the_batch(read[-1], limits, 500 - 200)
    everything = decoding.read_images(paths, limits._replace(pixels_left=None))
    assert [seen.pixels for seen in everything] == [100, 100, 900, 100]


def test_pillows_bomb_guard_never_refuses_an_image_within_the_cap(tmp_path: Path) -> None:
    """DATASET_MAX_PIXELS may be set above Pillow's own guard (twice MAX_IMAGE_PIXELS): the
    header of an image within the cap is read and held to the cap, not refused by Pillow."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    width, height = 20_000, 10_000  # 200 MP, past Pillow's default guard of ~179 MP
    header = chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
    png = tmp_path / "huge.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + header + chunk(b"IEND", b""))
    with pytest.raises(Image.DecompressionBombError):  # Pillow's guard, as it stands here
        Image.open(png)

    (within,) = decoding.read_images(
        [png], decoding.Limits(max_pixels=300_000_000, formats=frozenset())
    )
    assert within.verdict == decoding.NOT_DECODED and within.pixels == width * height
    (past,) = decoding.read_images([png], decoding.Limits(max_pixels=40_000_000))
    assert past.verdict == decoding.NOT_DECODED and past.pixels == width * height
