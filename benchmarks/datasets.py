"""Unpacking an uploaded data set: the checked extraction beside the unchecked one.

    PYTHONPATH=. python3 -m benchmarks.datasets [--images N] [--repeats N]

The same zip (two classes of 32 px JPEGs, a wrapping folder, a little Mac litter) is unpacked
two ways, each into a fresh folder:
- checked: `app.datasets.extract.extract_zip` (every entry's path, type and size checked,
  bytes counted while streaming, every image decoded in full, kept under generated names);
- baseline: `zipfile.ZipFile.extractall` and one `decode_image` per extracted image, the
  least a server must do to know the images are usable, with no other check.
Reported: the median seconds of each over the repeats and the ratio checked / baseline,
measured back to back in this run. Aim: the checks cost at most 1.5× the baseline.
"""

from __future__ import annotations

import argparse
import io
import shutil
import statistics
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

from app.datasets.entries import Caps
from app.datasets.extract import extract_zip
from app.worker.training.data.folder import IMAGE_EXTENSIONS, decode_image

AIM = 1.5


def build_zip(path: Path, images: int) -> None:
    """`images` noise JPEGs of 32 px in two classes, wrapped in one folder, with litter."""
    rng = np.random.default_rng(0)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for i in range(images):
            out = io.BytesIO()
            pixels = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(out, format="JPEG", quality=90)
            archive.writestr(f"set/{'ab'[i % 2]}/{i}.JPG", out.getvalue())
        archive.writestr("__MACOSX/set/a/._0.JPG", b"\x00\x05\x16\x07")
        archive.writestr("set/.DS_Store", b"\x00")


def checked(archive: Path, target: Path) -> int:
    caps = Caps(files=100_000, total_bytes=10**10, total_name="-", ratio=200, pixels=40_000_000)
    return sum(extract_zip(archive, target, caps).classes.values())


def baseline(archive: Path, target: Path) -> int:
    with zipfile.ZipFile(archive) as opened:
        opened.extractall(target)
    usable = 0
    for path in sorted(target.rglob("*")):
        if path.is_file() and path.suffix.lower() in IMAGE_EXTENSIONS:
            usable += not isinstance(decode_image(path, 8), str)
    return usable


def main(work_dir: Path, images: int = 2000, repeats: int = 5) -> None:
    work_dir.mkdir(parents=True, exist_ok=True)
    archive = work_dir / "upload.zip"
    build_zip(archive, images)
    times: dict[str, list[float]] = {"checked": [], "baseline": []}
    ratios = []
    for _ in range(repeats):
        pair = {}
        for name, unpack in (("checked", checked), ("baseline", baseline)):
            target = work_dir / name
            target.mkdir()
            start = time.perf_counter()
            count = unpack(archive, target)
            pair[name] = time.perf_counter() - start
            shutil.rmtree(target)
            assert count >= images, (name, count)
            times[name].append(pair[name])
        ratios.append(pair["checked"] / pair["baseline"])
    ratio = statistics.median(ratios)
    print(
        f"\nData set upload: unpacking {images} JPEGs of 32 px ({archive.stat().st_size:,} bytes)"
    )
    for name, samples in times.items():
        print(f"  {name:<9} {statistics.median(samples):.3f} s (median of {repeats})")
    verdict = "within" if ratio <= AIM else "OVER"
    print(
        f"  ratio checked/baseline: {ratio:.2f}x (median of back-to-back pairs; aim ≤ {AIM}x: {verdict})"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cvprep-bench-") as tmp:
        main(Path(tmp), args.images, args.repeats)
