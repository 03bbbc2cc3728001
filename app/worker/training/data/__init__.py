"""Data sets as uint8 tensors held in memory, on the device that trains (airbench's design).

`load_data(config, data_dir, device)` decodes the source once (or reads the decoded copy
from DATA_DIR/cache/), picks the classes, caps the images per class, splits train/val (the
source's own split, else a seeded split stratified by class), thins the training split into a
long tail when asked, and moves both splits to `device` as (N, 3, S, S) uint8. Where the
source has its own validation split (CIFAR-10's test batch, a folder's val/), the cap
`images_per_class` applies to the training split and the validation split is used whole. Converting
uint8 to float per batch is cheaper than storing floats, and keeps a 50,000-image CIFAR-10
at 150 MB.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from app.worker.errors import InvalidInput
from app.worker.training.config import RunConfig
from app.worker.training.data import cache, cifar10, digits, folder, shapes
from app.worker.training.data.cache import TRAIN, UNASSIGNED, VAL, Decoded

__all__ = ["ImageSet", "InvalidInput", "load_data", "preflight"]


@dataclass
class ImageSet:
    """Both splits of a data set, ready for the loop."""

    train_images: torch.Tensor  # (N, 3, S, S) uint8 on the training device
    train_labels: torch.Tensor  # (N,) int64
    val_images: torch.Tensor  # (M, 3, S, S) uint8
    val_labels: torch.Tensor  # (M,) int64
    classes: list[str]
    mean: tuple[float, ...]  # per channel, of the training split's pixels scaled to 0..1
    std: tuple[float, ...]
    hflip: bool  # may augmentation mirror images?
    info: dict[str, Any] = field(default_factory=dict)  # JSON-able counts, skips, cache

    @property
    def train_counts(self) -> list[int]:
        """Training images per class, in class order."""
        counts = torch.bincount(self.train_labels.cpu(), minlength=len(self.classes))
        return [int(c) for c in counts]


def preflight(config: RunConfig, data_dir: Path) -> None:
    """The checks that need only the file system: the folder or the CIFAR files exist.

    Raises InvalidInput naming the field; reads no image.
    """
    if config.dataset == "folder":
        assert config.folder is not None  # RunConfig.from_dict guarantees it
        folder.resolve_folder(data_dir, config.folder)
    elif config.dataset == "cifar10":
        cifar10.check_present(data_dir)


def _decoded(
    config: RunConfig, data_dir: Path, should_stop: Callable[[], bool] | None = None
) -> tuple[Decoded, bool, dict[str, int]]:
    """(decoded set, cache hit, files skipped before decoding) for the config's source;
    a folder's decoding asks `should_stop` between files (folder.DecodeStopped)."""
    cache_dir = data_dir / "cache"
    size = config.image_size
    build: Callable[[], Decoded]
    if config.dataset == "shapes":
        # The first_class skipped classes are drawn too, so a class's pixels do not depend on it.
        n_classes = config.first_class + (
            config.num_classes or len(shapes.CLASSES) - config.first_class
        )
        parts: dict[str, Any] = {
            "source": "shapes",
            "version": shapes.VERSION,
            "classes": n_classes,
            "per_class": config.images_per_class,
            "size": size,
            "seed": config.data_seed,
        }

        def build() -> Decoded:
            images, labels = shapes.generate(
                n_classes, config.images_per_class, size, config.data_seed
            )
            split = np.full(len(labels), UNASSIGNED, dtype=np.int8)
            return Decoded(images, labels, list(shapes.CLASSES[:n_classes]), split)

        decoded, hit = cache.load_or_build(cache_dir, "shapes", parts, build)
        return decoded, hit, {}
    if config.dataset == "digits":
        decoded, hit = cache.load_or_build(
            cache_dir, "digits", digits.key_parts(size), lambda: digits.decode(size)
        )
        return decoded, hit, {}
    if config.dataset == "cifar10":
        path = cifar10.check_present(data_dir)
        decoded, hit = cache.load_or_build(
            cache_dir, "cifar10", cifar10.key_parts(path, size), lambda: cifar10.decode(path, size)
        )
        return decoded, hit, {}
    assert config.folder is not None
    scan = folder.scan_folder(
        folder.resolve_folder(data_dir, config.folder), base=data_dir / "datasets"
    )
    threads = torch.get_num_threads()  # RUN_THREADS, through the engine's num_threads
    decoded, hit = cache.load_or_build(
        cache_dir,
        "folder",
        scan.key_parts(size),
        lambda: folder.decode_folder(scan, size, threads=threads, should_stop=should_stop),
    )
    folder.check_classes(decoded)
    return decoded, hit, dict(scan.skipped)


def _split(
    decoded: Decoded, config: RunConfig, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """(train indices, val indices) into the decoded arrays, each class's in a seeded order."""
    cap = config.images_per_class if config.dataset != "shapes" else 0
    train, val = [], []
    for label, name in enumerate(decoded.classes):
        mine = np.flatnonzero(decoded.labels == label)
        mine = mine[rng.permutation(len(mine))]
        fixed_train = mine[decoded.split[mine] == TRAIN]
        fixed_val = mine[decoded.split[mine] == VAL]
        loose = mine[decoded.split[mine] == UNASSIGNED]
        if len(loose):
            if cap:
                loose = loose[:cap]
            if len(loose) < 2:
                raise InvalidInput(
                    _source_field(config),
                    f"class '{name}' has {len(loose)} usable image; at least 2 are needed to hold one out for validation",
                )
            n_val = min(len(loose) - 1, max(1, round(len(loose) * config.val_fraction)))
            val.append(loose[:n_val])
            train.append(loose[n_val:])
        train.append(fixed_train[:cap] if cap else fixed_train)
        val.append(fixed_val)
    return np.concatenate(train), np.concatenate(val)


def _source_field(config: RunConfig) -> str:
    return "folder" if config.dataset == "folder" else "dataset"


def long_tail(labels: np.ndarray, num_classes: int, ratio: float) -> np.ndarray:
    """Indices keeping n_c · ratio^(−c/(C−1)) of class c (at least one): an exponential profile.

    The profile of Cui et al. (2019), "Class-Balanced Loss Based on Effective Number of
    Samples", used for CIFAR-10-LT: the first class keeps all, the last 1/ratio of its images.
    `labels` should be in a random order within each class; the first ones are kept.
    """
    keep = []
    for c in range(num_classes):
        mine = np.flatnonzero(labels == c)
        share = ratio ** (-c / max(1, num_classes - 1))
        keep.append(mine[: max(1, round(len(mine) * share))])
    return np.sort(np.concatenate(keep))


def channel_stats(
    images: torch.Tensor, chunk: int = 1024
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and standard deviation of uint8 (N, C, H, W) images, on the 0..1 scale.

    Chunks are summed in float32 (exact for a chunk of uint8 values this size) and the totals
    in float64, so memory stays at one float32 chunk (12 MB for 1024 images at 32 px).
    """
    total = torch.zeros(images.shape[1], dtype=torch.float64, device=images.device)
    squares = torch.zeros_like(total)
    for start in range(0, len(images), chunk):
        block = images[start : start + chunk].to(torch.float32)
        total += block.sum(dim=(0, 2, 3), dtype=torch.float64)
        squares += block.square_().sum(dim=(0, 2, 3), dtype=torch.float64)
    count = max(1, images.numel() // images.shape[1])
    mean = total / count
    variance = (squares / count - mean.square()).clamp_min(0.0)
    std = variance.sqrt() / 255.0
    return tuple(float(m) / 255.0 for m in mean), tuple(max(float(s), 1e-3) for s in std)


def load_data(
    config: RunConfig,
    data_dir: Path,
    device: torch.device,
    should_stop: Callable[[], bool] | None = None,
) -> ImageSet:
    """Decode (or read from the cache), select, split and move the config's data set.

    Decoding a folder asks `should_stop` between files and raises folder.DecodeStopped once
    it is true (a cancel or a time limit is honoured while the data loads).

    Raises InvalidInput for a missing source, InvalidInput when the data cannot make a training
    set (fewer than two classes, an empty class, no images, a class of one image).
    """
    decoded, hit, scan_skipped = _decoded(config, data_dir, should_stop)
    first = config.first_class
    n_classes = len(decoded.classes) - first
    if n_classes < 2:
        raise InvalidInput(
            "first_class",
            f"{config.dataset} has {len(decoded.classes)} classes; skipping {first} leaves "
            f"{max(0, n_classes)}, and a classifier needs 2",
        )
    if config.num_classes and config.dataset != "shapes":
        if config.num_classes > n_classes:
            raise InvalidInput(
                "num_classes",
                f"{config.dataset} has {n_classes} classes from class {first} on; "
                f"asked for {config.num_classes}",
            )
        n_classes = config.num_classes
    classes = decoded.classes[first : first + n_classes]
    rng = np.random.default_rng(config.data_seed)
    # Labels renumbered from 0 for the classes kept; the rest are never assigned a split.
    labels = decoded.labels.astype(np.int64) - first
    kept = (labels >= 0) & (labels < n_classes)
    picked = Decoded(
        images=decoded.images,
        labels=labels,
        classes=classes,
        split=np.where(kept, decoded.split, -2).astype(np.int8),
    )
    train_idx, val_idx = _split(picked, config, rng)
    if config.imbalance_ratio > 1:
        train_idx = train_idx[long_tail(labels[train_idx], n_classes, config.imbalance_ratio)]
    train_idx.sort()
    val_idx.sort()
    if not len(val_idx):
        raise InvalidInput(_source_field(config), "the validation split has no images")

    def to_device(array: np.ndarray) -> torch.Tensor:
        tensor = torch.from_numpy(np.ascontiguousarray(array))
        if device.type == "cuda":
            return tensor.pin_memory().to(device, non_blocking=True)
        return tensor

    train_images = to_device(decoded.images[train_idx])
    train_labels = to_device(labels[train_idx])
    val_images = to_device(decoded.images[val_idx])
    val_labels = to_device(labels[val_idx])
    mean, std = channel_stats(train_images)
    train_counts = np.bincount(labels[train_idx], minlength=n_classes)
    val_counts = np.bincount(labels[val_idx], minlength=n_classes)
    skipped = {**scan_skipped}
    for reason, count in decoded.skipped.items():
        skipped[reason] = skipped.get(reason, 0) + count
    info = {
        "dataset": config.dataset,
        "folder": config.folder,
        "image_size": config.image_size,
        "cache": "hit" if hit else "decoded",
        "train_size": len(train_idx),
        "val_size": len(val_idx),
        "train_counts": {c: int(n) for c, n in zip(classes, train_counts, strict=True)},
        "val_counts": {c: int(n) for c, n in zip(classes, val_counts, strict=True)},
        "skipped": {reason: n for reason, n in skipped.items() if n},
        "mean": list(mean),
        "std": list(std),
        "hflip": decoded.hflip,
    }
    return ImageSet(
        train_images, train_labels, val_images, val_labels, classes, mean, std, decoded.hflip, info
    )
