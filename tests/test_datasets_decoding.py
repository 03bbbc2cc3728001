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
        decoded = decoding.full_decode(path)
        expected = _pillow_verdict(path) if path != text else decoding.UNDECODABLE
        assert decoded.verdict == expected, (path.name, decoded)
    assert decoding.full_decode(cut).verdict == decoding.TRUNCATED
    assert len(_decoders()) == decoding.DECODES


def test_a_decode_reports_its_cpu_time_not_its_wait(tmp_path: Path) -> None:
    big = tmp_path / "big.png"
    big.write_bytes(palette_png(6000, 3))  # 36 MP in a few KB
    start = time.perf_counter()
    decoded = decoding.full_decode(big)
    wall = time.perf_counter() - start
    assert decoded.verdict is None
    assert 0 < decoded.cpu_seconds <= wall


def test_a_decoder_killed_mid_decode_costs_only_that_image(tmp_path: Path) -> None:
    big = tmp_path / "big.png"
    big.write_bytes(palette_png(6300, 1))
    small = tmp_path / "small.png"
    Image.new("L", (20, 20), 7).save(small)
    assert decoding.full_decode(small).verdict is None  # the pool is up
    victims = _decoders()
    before = [_cpu_ticks(pid) for pid in victims]
    results: list[decoding.Decoded] = []
    decode = threading.Thread(target=lambda: results.append(decoding.full_decode(big)))
    decode.start()
    deadline = time.monotonic() + 10
    while [_cpu_ticks(pid) for pid in victims] == before and time.monotonic() < deadline:
        time.sleep(0.002)  # until the decode is under way (a tick is 10 ms of CPU)
    for pid in victims:
        os.kill(pid, signal.SIGKILL)
    decode.join(60)
    assert results and results[0].verdict == decoding.UNDECODABLE, results
    # The next decode starts a new pool.
    assert decoding.full_decode(small).verdict is None
    assert _decoders() and not set(victims) & set(_decoders())
