"""The loop every tutorial shows, kept as the baseline the engine is measured against.

Question 11's loop on an ImageFolder: `torchvision.datasets.ImageFolder` decodes each PNG or
JPEG with PIL in `DataLoader` worker processes, `transforms.v2` augments one image at a time
(the same recipe as the engine's `standard` preset: reflect-pad and random crop, horizontal
flip), the batches are collated, pinned and copied to the device; then the same step as the
engine's (zero_grad, autocast, scaled backward, step, per-step schedule). Same model, same
optimiser groups and schedule, same normalisation: only the data path differs, which is what
`make bench` and the question-11 experiment compare.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from app.worker.training.config import RunConfig
from app.worker.training.loop import build_optimizer, resolve_precision, warmup_cosine
from app.worker.training.models import build


@dataclass(frozen=True)
class TutorialResult:
    """What the bench reads off a tutorial-loop run."""

    images_per_s: float  # training images per second of training time (evaluation excluded)
    val_accuracy: float
    first_step_s: float  # from the call to the end of the first training step
    train_seconds: float
    epochs: int


def train_tutorial(
    root: Path,
    config: RunConfig,
    *,
    mean: tuple[float, ...],
    std: tuple[float, ...],
    device: torch.device,
    num_workers: int = 2,
) -> TutorialResult:
    """Train `config.model` on root/train and score it on root/val, the tutorial way.

    `root` holds `train/<class>/*` and `val/<class>/*`; images are expected at
    config.image_size already (as the bench writes them). Uses config.epochs, batch_size,
    lr, weight_decay, warmup_epochs, label_smoothing, seed and precision.
    """
    from torch.utils.data import DataLoader
    from torchvision.datasets import ImageFolder
    from torchvision.transforms import v2

    began = time.perf_counter()
    torch.manual_seed(config.seed)
    size = config.image_size
    pad = max(1, round(size / 8))
    to_float = [v2.ToDtype(torch.float32, scale=True), v2.Normalize(list(mean), list(std))]
    train_tf = v2.Compose(
        [
            v2.ToImage(),
            v2.RandomCrop(size, padding=pad, padding_mode="reflect"),
            v2.RandomHorizontalFlip(),
            *to_float,
        ]
    )
    eval_tf = v2.Compose([v2.ToImage(), v2.Resize(size), v2.CenterCrop(size), *to_float])
    train_set = ImageFolder(str(root / "train"), transform=train_tf)
    val_set = ImageFolder(str(root / "val"), transform=eval_tf)
    cuda = device.type == "cuda"
    persistent = num_workers > 0
    train_loader = DataLoader(
        train_set,
        batch_size=config.batch_size,
        shuffle=True,
        drop_last=True,
        generator=torch.Generator().manual_seed(config.seed),
        num_workers=num_workers,
        pin_memory=cuda,
        persistent_workers=persistent,
    )
    val_loader = DataLoader(
        val_set,
        batch_size=256,
        num_workers=num_workers,
        pin_memory=cuda,
        persistent_workers=persistent,
    )

    precision = resolve_precision(config.precision, device)
    net = build(config, len(train_set.classes))
    model = net.model.to(device)
    if cuda:  # as question 11's real-data setup does
        model = model.to(memory_format=torch.channels_last)
    optimizer = build_optimizer(net, config, device)
    steps = len(train_loader)
    schedule = warmup_cosine(round(config.warmup_epochs * steps), steps * config.epochs)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    scaler = torch.amp.GradScaler(device.type, enabled=precision.needs_scaler)

    first_step = None
    train_seconds, seen = 0.0, 0
    for _ in range(config.epochs):
        model.train()
        start = time.perf_counter()
        loss_sum = torch.zeros((), device=device)
        for images, targets in train_loader:
            images = images.to(device, non_blocking=True)
            targets = targets.to(device, non_blocking=True)
            optimizer.zero_grad(set_to_none=True)
            with precision.autocast():
                loss = F.cross_entropy(
                    model(images), targets, label_smoothing=config.label_smoothing
                )
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            loss_sum += loss.detach() * len(targets)  # stays on the device: no sync per step
            seen += len(targets)
            if first_step is None:
                first_step = time.perf_counter() - began
        loss_sum.item()  # wait for the device before reading the clock
        train_seconds += time.perf_counter() - start

    model.eval()
    correct, total = 0, 0
    with torch.inference_mode():
        for images, targets in val_loader:
            images, targets = images.to(device), targets.to(device)
            with precision.autocast():
                correct += int((model(images).argmax(1) == targets).sum())
            total += len(targets)
    return TutorialResult(
        seen / train_seconds, correct / total, first_step or 0.0, train_seconds, config.epochs
    )


# ---------------------------------------------------------------- inside the engine (loop "tutorial")


def write_image_folder(
    images: torch.Tensor, labels: torch.Tensor, classes: list[str], root: Path
) -> None:
    """Write uint8 images (N, 3, S, S) as root/<class>/<n>.png, the layout ImageFolder reads.

    Class folders are numbered ("000_circle") so ImageFolder's sorted order is the engine's.
    """
    from PIL import Image

    pixels = images.permute(0, 2, 3, 1).contiguous().cpu().numpy()
    folders = [root / f"{index:03d}_{name}" for index, name in enumerate(classes)]
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)
    for n, (image, label) in enumerate(zip(pixels, labels.cpu().tolist(), strict=True)):
        Image.fromarray(image).save(folders[label] / f"{n}.png", compress_level=1)


class TutorialBatches:
    """The engine's training batches, made the tutorial way: PNG files decoded by PIL in
    `ImageFolder`, per-image `transforms.v2` (none, or standard: reflect-pad + random crop and
    a horizontal flip), collated by a shuffling `DataLoader` with `drop_last`.

    Yields what `train_one_epoch` takes: (normalised images (B, 3, S, S) float32 on `device`,
    targets (B,) int64, the same labels). `num_workers=0` decodes in the training process:
    this project's workers are daemon processes, which may not start DataLoader workers.

    Resuming: `state()` is the DataLoader generator's state at the start of the current epoch
    (or, between epochs, now); `restore(state)` puts it back, and `epoch(start_step)` then
    draws the same shuffle and skips the first batches by their indices, without loading or
    augmenting them, so the global RNG the transforms draw from stays where the checkpoint
    left it and the resumed run equals the uninterrupted one.
    """

    def __init__(
        self,
        root: Path,
        *,
        augment: str,
        image_size: int,
        hflip: bool,
        mean: tuple[float, ...],
        std: tuple[float, ...],
        batch_size: int,
        seed: int,
        device: torch.device,
    ) -> None:
        from torch.utils.data import BatchSampler, DataLoader, RandomSampler
        from torchvision.datasets import ImageFolder
        from torchvision.transforms import v2

        steps: list[v2.Transform] = [v2.ToImage()]
        if augment == "standard":
            pad = max(1, round(image_size / 8))
            steps.append(v2.RandomCrop(image_size, padding=pad, padding_mode="reflect"))
            if hflip:
                steps.append(v2.RandomHorizontalFlip())
        steps += [v2.ToDtype(torch.float32, scale=True), v2.Normalize(list(mean), list(std))]
        dataset = ImageFolder(str(root), transform=v2.Compose(steps))
        self.device = device
        self.generator = torch.Generator().manual_seed(seed)
        self._epoch_start = self.generator.get_state()
        # What DataLoader(shuffle=True, drop_last=True, generator=g) builds, with a skip.
        self.batches = _SkippingBatchSampler(
            BatchSampler(
                RandomSampler(dataset, generator=self.generator),
                min(batch_size, len(dataset)),
                drop_last=True,
            )
        )
        self.loader = DataLoader(
            dataset,
            batch_sampler=self.batches,
            generator=self.generator,
            num_workers=0,
            pin_memory=device.type == "cuda",
        )

    def state(self, mid_epoch: bool) -> dict[str, Any]:
        """The shuffling state a checkpoint keeps: at the epoch's start when stopped inside
        it, else the generator's state now (the next epoch's start)."""
        return {"generator": self._epoch_start if mid_epoch else self.generator.get_state()}

    def restore(self, state: dict[str, Any]) -> None:
        """Put back what `state` saved."""
        self.generator.set_state(state["generator"])

    def epoch(
        self, start_step: int = 0
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """One epoch's batches from `start_step` on (a resumed epoch skips the first ones)."""
        self._epoch_start = self.generator.get_state()
        self.batches.skip = start_step
        return self._batches(iter(self.loader))

    def _batches(
        self, loader: Iterator[Any]
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        for images, targets in loader:
            x = images.to(self.device, non_blocking=True)
            y = targets.to(self.device, non_blocking=True)
            yield x, y, y


class _SkippingBatchSampler:
    """A BatchSampler whose next pass leaves out its first `skip` batches (their indices are
    drawn, so the shuffle is the same; their images are never loaded)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.skip = 0

    def __iter__(self) -> Iterator[list[int]]:
        skip, self.skip = self.skip, 0
        for step, batch in enumerate(self.inner):
            if step >= skip:
                yield batch

    def __len__(self) -> int:
        return len(self.inner)
