"""What a run reports, as typed events: the terminal and the web show the same numbers.

`run(config, on_event, should_stop)` calls `on_event` with, in order: one `Started`, then per
epoch some `StepProgress` (throttled, but the first step of the run and the last step of each
epoch are always sent) and one `EpochEnd`; finally `Finished` (status "succeeded" or
"cancelled") or `Failed`. Every event has `.kind` and `.to_dict()`, a JSON-able dict that
includes the kind.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar


@dataclass(frozen=True)
class Event:
    kind: ClassVar[str] = "event"

    def to_dict(self) -> dict[str, Any]:
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
