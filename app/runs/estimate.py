"""How long a run will take, before it is launched: an estimate, stated as one.

The speed is this server's, measured: the training images per second of wall-clock time
(evaluation and data loading included) of the learner's latest succeeded runs of the same
model, scaled to the new image size by the pixel count. Without such a run, a default per
model measured on a shared two-core CPU at 32 px (`DEFAULT_RATE`) stands in, and the text
says so.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.models import Run
from app.models.datasets import Dataset
from app.models.runs import SUCCEEDED
from app.runs.limits import shape_classes
from app.worker.training import RunConfig

# Training images per second of wall-clock time at 32×32 px, start-up and evaluation
# included: one epoch of 1,600 shapes images (images_per_class 200, the rest default) run by
# `app.worker.training.engine.run` with 2 threads on a two-core CPU shared with other work.
# A conservative stand-in: the learner's own runs replace it as soon as there is one.
DEFAULT_RATE = {
    "smallcnn": 36.0,
    "resnet18": 12.0,
    "mobilenet_v3_small": 25.0,
    "efficientnet_b0": 11.0,
}
BUILT_IN_IMAGES = {"digits": (1797, 10), "cifar10": (50000, 10)}


@dataclass
class Estimate:
    seconds: float
    train_images: int  # per epoch
    source: str  # where the speed comes from, in words


def train_images(config: RunConfig, uploads: list[Dataset]) -> int | None:
    """Training images per epoch, where the config and the learner's data sets tell."""
    keep = 1 - config.val_fraction
    if config.dataset == "shapes":
        return round(config.images_per_class * shape_classes(config) * keep)
    if config.dataset in BUILT_IN_IMAGES:
        images, classes = BUILT_IN_IMAGES[config.dataset]
        if config.dataset == "cifar10":
            keep = 1.0  # its own test batch is the validation split
        cap = config.images_per_class * classes if config.images_per_class else images
        return round(min(images, cap) * keep)
    for row in uploads:
        if row.folder == config.folder:
            cap = config.images_per_class * len(row.classes) or row.images
            return round(min(row.images, cap) * keep)
    return None


def measured_rate(config: RunConfig, runs: list[Run]) -> tuple[float, int] | None:
    """(images/s at 32 px, how many runs) from the learner's latest succeeded runs of the model."""
    rates = []
    for run in runs:  # newest first
        if run.status != SUCCEEDED or run.config.get("model") != config.model:
            continue
        history = [h for h in run.history or [] if isinstance(h, dict)]
        images = sum(int(h.get("train_images") or 0) for h in history)
        seconds = run.seconds
        if not images or not seconds:
            continue
        size = int(run.config.get("image_size") or 32)
        rates.append(images / seconds * (size / 32) ** 2)
        if len(rates) == 3:
            break
    if not rates:
        return None
    return sum(rates) / len(rates), len(rates)


def estimate(config: RunConfig, runs: list[Run], uploads: list[Dataset]) -> Estimate | None:
    """Seconds the run should take on this server; None when the image count is unknown."""
    images = train_images(config, uploads)
    if images is None:
        return None
    measured = measured_rate(config, runs)
    if measured is not None:
        rate, count = measured
        source = (
            f"at the speed of your last {count} {config.model} run{'s' if count != 1 else ''} here"
        )
    else:
        rate = DEFAULT_RATE.get(config.model, 100.0)
        source = (
            f"at a two-core CPU's speed for {config.model}: none of your runs of it to measure yet"
        )
    rate = rate / (config.image_size / 32) ** 2
    return Estimate(config.epochs * images / max(rate, 1e-6), images, source)
