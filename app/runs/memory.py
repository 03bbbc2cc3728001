"""A run's peak memory, estimated before it is queued (RUN_MAX_MEMORY_MB refuses one above).

The worker holds the whole data set decoded in memory, the model with its gradients and
optimiser state, and one batch's activations; what dominates is

- data: N images × 3 × S² bytes (uint8), held twice while the train/validation copies are cut
  and once more while a folder is decoded (`DATA_COPIES`);
- model: P parameters × 4 bytes × 4 (weights, gradients, two optimiser moments);
- training step: batch × A × 4 bytes × `BACKWARD_FACTOR`, where A is the sum of the
  outputs of every layer for one image (saved for the backward pass, then their gradients);
- evaluation: up to EVAL_BATCH images × the largest layer output × 4 bytes × 3 live tensors;
- `BASE_MB` for the interpreter, torch and the allocator's slack.

A and P come from the real model built on PyTorch's "meta" device (shapes only, no memory, a
few milliseconds), so every architecture and image size is counted, not guessed. The sum is
meant as an upper bound of the worker's peak RSS (tests/test_capacity_runs.py measures one).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import lru_cache

from app.settings import Settings
from app.worker.errors import InvalidInput
from app.worker.training import RunConfig

logger = logging.getLogger("cvprep.runs")

BASE_MB = 900
DATA_COPIES = 4
BACKWARD_FACTOR = 2.0
EVAL_BATCH = 256  # app.worker.training.loop.EVAL_BATCH
CIFAR10_IMAGES = 60_000
DIGITS_IMAGES = 1_797
MB = 1024 * 1024


@dataclass(frozen=True)
class Estimate:
    """Bytes of each part of a run's peak memory."""

    data: int
    model: int
    step: int
    base: int = BASE_MB * MB

    @property
    def total(self) -> int:
        return self.base + self.data + self.model + self.step

    def describe(self) -> str:
        """E.g. "about 6,512 MB (data 2,709 MB, model 171 MB, one step 2,932 MB)"."""
        return (
            f"about {self.total // MB:,} MB (data {self.data // MB:,} MB, model "
            f"{self.model // MB:,} MB, one training step {self.step // MB:,} MB)"
        )


@lru_cache(maxsize=256)
def _model_shape(config: RunConfig, num_classes: int) -> tuple[int, int, int]:
    """(sum of layer outputs per image, largest layer output per image, parameters)."""
    import torch

    from app.worker.training.models import build

    with torch.device("meta"):
        net = build(config.replace(init="scratch"), num_classes)
    total, largest = 0, 0

    def count(_module: object, _inputs: object, output: object) -> None:
        nonlocal total, largest
        if isinstance(output, torch.Tensor):
            total += output.numel()
            largest = max(largest, output.numel())

    hooks = [
        module.register_forward_hook(count)
        for module in net.model.modules()
        if not any(True for _ in module.children())
    ]
    net.model.eval()  # the shapes are the same; batch norm takes a batch of one
    try:
        with torch.no_grad():
            size = config.image_size
            net.model(torch.empty(1, 3, size, size, device="meta"))
    finally:
        for hook in hooks:
            hook.remove()
    params = sum(p.numel() for p in net.model.parameters())
    return total, largest, params


def estimate(config: RunConfig, images: int, num_classes: int) -> Estimate:
    """The peak memory of a run of `config` on `images` images of `num_classes` classes."""
    per_image = 3 * config.image_size**2
    activations, largest, params = _model_shape(config, max(2, num_classes))
    step = max(
        int(config.batch_size * activations * 4 * BACKWARD_FACTOR),
        min(EVAL_BATCH, max(images, 1)) * largest * 4 * 3,
    )
    return Estimate(data=images * per_image * DATA_COPIES, model=params * 16, step=step)


def check_memory(
    config: RunConfig, images: int | None, num_classes: int, settings: Settings
) -> None:
    """InvalidInput (naming RUN_MAX_MEMORY_MB and the estimate) when a run of `config` would
    need more memory than a worker may use. `images` None: unknown (the data part is left out
    and the worker counts it once loaded)."""
    try:
        found = estimate(config, images or 0, num_classes)
    except (RuntimeError, ValueError) as error:  # a model the shape pass cannot run
        logger.warning("no memory estimate for %s: %s", config.model, error)
        return
    limit = settings.run_max_memory_mb * MB
    if found.total <= limit:
        return
    field = "image_size" if found.step + found.data > found.model else "model"
    if found.data > found.step and images:
        field = "dataset_id" if config.dataset == "folder" else "images_per_class"
    raise InvalidInput(
        field,
        f"this run would need {found.describe()}, more than the "
        f"{settings.run_max_memory_mb:,} MB a worker may use here (RUN_MAX_MEMORY_MB); use "
        "fewer or smaller images, a smaller batch_size or a smaller model",
    )


def images_and_classes(
    config: RunConfig, folder_images: tuple[int, int] | None
) -> tuple[int | None, int]:
    """(images the run loads, classes it trains on) from the config alone, or from
    `folder_images` ((images, classes) of the uploaded data set it names)."""
    if config.dataset == "shapes":
        classes = config.num_classes or 10 - config.first_class
        return config.images_per_class * classes, classes
    if config.dataset == "cifar10":
        return CIFAR10_IMAGES, config.num_classes or 10
    if config.dataset == "digits":
        return DIGITS_IMAGES, config.num_classes or 10
    if folder_images is not None:
        images, classes = folder_images
        return images, config.num_classes or classes
    return None, config.num_classes or 2
