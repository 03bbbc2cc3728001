"""What a run reports, as typed events: the terminal and the web show the same numbers.

`run(config, on_event, should_stop)` calls `on_event` with, in order: one `Started`, then per
epoch some `StepProgress` (throttled, but the first step of the run and the last step of each
epoch are always sent) and one `EpochEnd`; finally `Finished` (status "succeeded" or
"cancelled") or `Failed`. Every event has `.kind` and `.to_dict()`, a JSON-able dict that
includes the kind.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar


@dataclass(frozen=True)
class Event:
    """Base of every event: a `kind` and a JSON-able `to_dict()`."""

    kind: ClassVar[str] = "event"

    def to_dict(self) -> dict[str, Any]:
        """The event's fields and its kind, as plain JSON values."""
        return {"kind": self.kind, **dataclasses.asdict(self)}


@dataclass(frozen=True)
class Started(Event):
    """Data loaded and the model built; training is about to start."""

    kind: ClassVar[str] = "started"
    epochs: int
    steps_per_epoch: int
    train_size: int  # images in the training split
    val_size: int
    classes: list[str]
    device: str  # "cpu", "cuda:0", ...
    precision: str  # "fp32" | "bf16" | "fp16"
    precision_reason: str = ""  # why that precision: asked for, or what "auto" found
    start_epoch: int = 1  # the epoch training starts in (counting from 1)
    resumed: bool = False  # continuing from a checkpoint
    data: dict[str, Any] = field(default_factory=dict)  # counts, skipped files, cache hit


@dataclass(frozen=True)
class StepProgress(Event):
    """A training step finished. `epoch` and `step` count from 1."""

    kind: ClassVar[str] = "step_progress"
    epoch: int
    epochs: int
    step: int
    steps: int  # steps per epoch
    loss: float  # this step's training loss
    images_per_s: float  # training throughput so far in this epoch
    eta_s: float  # seconds until the last epoch ends, at the current rate
    lr: float


@dataclass(frozen=True)
class EpochEnd(Event):
    """An epoch ended and the validation set was scored.

    `metrics` holds train_loss, train_accuracy, val_loss, val_accuracy, val_top5_accuracy
    (None with five classes or fewer), macro_f1, weighted_f1, ece, nll, lr, images_per_s,
    seconds, grad_norms ({layer group: mean L2 norm per step}), confusion_matrix and
    per_class (precision/recall/F1/support).
    """

    kind: ClassVar[str] = "epoch_end"
    epoch: int
    epochs: int
    metrics: dict[str, Any]


@dataclass(frozen=True)
class Finished(Event):
    """The run ended: "succeeded", or "cancelled" after saving what was done."""

    kind: ClassVar[str] = "finished"
    status: str
    epochs_completed: int
    summary: dict[str, Any]  # val_accuracy, macro_f1, ece, images_per_s, seconds, out_dir


@dataclass(frozen=True)
class Failed(Event):
    """The run raised; `message` says what went wrong. Files written so far are kept."""

    kind: ClassVar[str] = "failed"
    message: str


EVENT_TYPES: tuple[type[Event], ...] = (Started, StepProgress, EpochEnd, Finished, Failed)


class StepReporter:
    """Turns finished steps into StepProgress events, a few a second.

    Sends the run's first step (so a progress bar moves at once), the last step of every
    epoch, and otherwise at most one event per `interval_s`. Only then is the step's loss read,
    which is the one point where the CPU waits for the GPU. Images/s and the ETA are measured
    from the epoch's start in this process (`start_epoch`).
    """

    def __init__(
        self,
        emit: Callable[[Event], None],
        *,
        epochs: int,
        steps: int,
        interval_s: float,
        lr: Callable[[], float],
        run_began: float,
    ) -> None:
        self.emit, self.epochs, self.steps, self.interval_s = emit, epochs, steps, interval_s
        self.lr, self.run_began = lr, run_began
        self.first_step_s: float | None = None  # seconds from run() to the first report
        self.last_sent = 0.0
        self.epoch, self.began, self.seen_before, self.done_before = 0, run_began, 0, 0

    def start_epoch(self, epoch: int, seen: int, done: int) -> None:
        """`epoch` counts from 0; `seen`/`done` are what a resumed epoch already holds."""
        self.epoch, self.seen_before, self.done_before = epoch, seen, done
        self.began = time.perf_counter()

    def __call__(self, stats: Any, loss: Any) -> None:
        """on_step for train_one_epoch: `stats.done`/`stats.seen`, loss a 0-d tensor."""
        now = time.perf_counter()
        first = self.first_step_s is None
        if not (first or stats.done == self.steps or now - self.last_sent >= self.interval_s):
            return
        value = float(loss)  # waits for the device
        now = time.perf_counter()
        elapsed = max(now - self.began, 1e-9)
        per_step = elapsed / max(1, stats.done - self.done_before)
        remaining = (self.epochs - self.epoch - 1) * self.steps + (self.steps - stats.done)
        if first:
            self.first_step_s = now - self.run_began
        self.last_sent = now
        self.emit(
            StepProgress(
                epoch=self.epoch + 1,
                epochs=self.epochs,
                step=stats.done,
                steps=self.steps,
                loss=value,
                images_per_s=(stats.seen - self.seen_before) / elapsed,
                eta_s=remaining * per_step,
                lr=self.lr(),
            )
        )
