"""The `digits` data set: scikit-learn's 1,797 bundled 8×8 handwritten digits.

Pixel values 0..16 are scaled to 0..255, upsampled bilinearly to the image size and repeated
into three channels, so every model takes them as it takes photos. A mirrored digit is not
the same digit, so horizontal flips are off for this set. scikit-learn is imported only when
the set is decoded; a cached copy needs no scikit-learn at all.
"""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from app.worker.training.data.cache import UNASSIGNED, Decoded


def _source_file() -> Path | None:
    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "datasets/data/digits.csv.gz"
    return path if path.is_file() else None


def key_parts(size: int) -> dict[str, Any]:
    """The bundled file's hash, found without importing scikit-learn (which takes ~1 s)."""
    source = _source_file()
    if source is not None:
        content = hashlib.blake2b(source.read_bytes(), digest_size=20).hexdigest()
    else:
        images, labels = _load()
        content = hashlib.blake2b(images.tobytes() + labels.tobytes(), digest_size=20).hexdigest()
    return {"source": "digits", "size": size, "content": content}


def _load() -> tuple[np.ndarray, np.ndarray]:
    try:
        from sklearn.datasets import load_digits
    except ImportError as error:  # the GPU boxes may run without it
        raise RuntimeError("dataset digits needs scikit-learn installed") from error
    digits = load_digits()
    return np.asarray(digits.images), np.asarray(digits.target, dtype=np.int64)


def decode(size: int) -> Decoded:
    """All 1,797 digits as (N, 3, size, size) uint8, classes "0".."9"."""
    images, labels = _load()
    pixels = torch.from_numpy(images).float().mul(255.0 / 16.0).unsqueeze(1)
    if size != pixels.shape[-1]:
        pixels = F.interpolate(pixels, size=(size, size), mode="bilinear", align_corners=False)
    rgb = pixels.round().clamp(0, 255).to(torch.uint8).expand(-1, 3, -1, -1).contiguous()
    return Decoded(
        images=rgb.numpy(),
        labels=labels,
        classes=[str(d) for d in range(10)],
        split=np.full(len(labels), UNASSIGNED, dtype=np.int8),
        hflip=False,
    )
