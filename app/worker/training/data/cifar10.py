"""CIFAR-10 from its python-version batches in DATA_DIR/datasets/cifar-10-batches-py/.

The files are the ones the CIFAR page distributes (Krizhevsky, 2009): five training batches
and one test batch, each a pickled dict with `data` (10000 × 3072 uint8, the 1024 red, then
green, then blue values of each 32×32 image) and `labels`; `batches.meta` names the classes.
The test batch is the validation split. They are unpickled with a restricted unpickler that
accepts numpy arrays and nothing else, so a planted file cannot run code.

The engine never downloads at run time; `cvprep data fetch cifar10` does, where the internet
can be reached (`fetch`).
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from app.worker.errors import InvalidInput
from app.worker.training.data.cache import TRAIN, VAL, Decoded, digest_files

FOLDER = "cifar-10-batches-py"
TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
VAL_FILE = "test_batch"
META_FILE = "batches.meta"
URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
MD5 = "c58f30108f718f92721af3b95e74349a"  # of the archive, as published with it
NATIVE_SIZE = 32

# What numpy arrays need to be rebuilt from a pickle; anything else is refused.
_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),
}


class _ArraysOnly(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(f"{module}.{name} is not allowed in a CIFAR batch")
        return super().find_class(module, name)


def folder(data_dir: Path) -> Path:
    """DATA_DIR/datasets/cifar-10-batches-py, where `fetch` unpacks the batches."""
    return data_dir / "datasets" / FOLDER


def check_present(data_dir: Path) -> Path:
    """The batches' folder; InvalidInput("dataset", ...) naming what is missing and the fix."""
    path = folder(data_dir)
    missing = [n for n in (*TRAIN_FILES, VAL_FILE, META_FILE) if not (path / n).is_file()]
    if missing:
        raise InvalidInput(
            "dataset",
            f"CIFAR-10 is not in {path} (missing {', '.join(missing)}); run "
            f"`cvprep data fetch cifar10` where the internet can be reached (it downloads {URL})",
        )
    return path


def _unpickle(path: Path) -> dict[Any, Any]:
    with path.open("rb") as handle:
        loaded = _ArraysOnly(handle, encoding="bytes").load()
    if not isinstance(loaded, dict):
        raise ValueError(f"{path.name}: not a CIFAR batch (a {type(loaded).__name__})")
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in loaded.items()}


def _batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    batch = _unpickle(path)
    data = np.asarray(batch["data"], dtype=np.uint8)
    labels = np.asarray(batch["labels"], dtype=np.int64)
    if data.ndim != 2 or data.shape[1] != 3 * NATIVE_SIZE * NATIVE_SIZE or len(data) != len(labels):
        raise ValueError(f"{path.name}: expected data of shape (N, 3072) and N labels")
    return data.reshape(-1, 3, NATIVE_SIZE, NATIVE_SIZE), labels


def key_parts(path: Path, size: int) -> dict[str, Any]:
    """The cache key's parts: the seven files' content and the image size."""
    files = [path / n for n in (META_FILE, *TRAIN_FILES, VAL_FILE)]
    return {"source": "cifar10", "size": size, "content": digest_files(files, path)}


def decode(path: Path, size: int) -> Decoded:
    """Every image of the six batches as (N, 3, size, size) uint8 (resized when size ≠ 32)."""
    meta = _unpickle(path / META_FILE)
    classes = [n.decode() if isinstance(n, bytes) else str(n) for n in meta["label_names"]]
    parts = [(*_batch(path / n), TRAIN) for n in TRAIN_FILES] + [(*_batch(path / VAL_FILE), VAL)]
    images = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    split = np.concatenate([np.full(len(p[1]), p[2], dtype=np.int8) for p in parts])
    if labels.min(initial=0) < 0 or labels.max(initial=0) >= len(classes):
        raise ValueError(f"labels outside the {len(classes)} classes of {META_FILE}")
    if size != NATIVE_SIZE:
        images = resize_uint8(images, size)
    return Decoded(images=images, labels=labels, classes=classes, split=split)


def resize_uint8(images: np.ndarray, size: int, chunk: int = 2048) -> np.ndarray:
    """Bilinear resize (antialiased when shrinking) of (N, C, H, W) uint8 to size × size."""
    out = np.empty((len(images), images.shape[1], size, size), dtype=np.uint8)
    for start in range(0, len(images), chunk):
        block = torch.from_numpy(images[start : start + chunk]).float()
        block = F.interpolate(block, size=(size, size), mode="bilinear", antialias=True)
        out[start : start + len(block)] = block.round().clamp(0, 255).to(torch.uint8).numpy()
    return out


def fetch(data_dir: Path, url: str = URL, md5: str | None = MD5) -> Path:
    """Download and unpack the archive into DATA_DIR/datasets/ (needs the internet).

    Uses torchvision's downloader, which checks the MD5; the archive is removed afterwards.
    Returns the batches' folder. Raises OSError/RuntimeError when the download fails.
    """
    from torchvision.datasets.utils import download_and_extract_archive

    target = data_dir / "datasets"
    target.mkdir(parents=True, exist_ok=True)
    name = url.rsplit("/", 1)[-1]
    download_and_extract_archive(url, str(target), filename=name, md5=md5, remove_finished=True)
    return check_present(data_dir)
