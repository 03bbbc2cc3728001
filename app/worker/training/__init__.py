"""The training engine: `run(config, on_event, should_stop, ...)` and its parts.

Pure torch/torchvision/numpy at import time; Pillow, PyYAML and scikit-learn are imported
only where a data set or an output needs them, so a GPU box can run it with torch,
torchvision and numpy alone. Read the modules in this order: config, events, data, augment,
models, losses, loop, metrics, checkpoint, outputs, preflight, engine (and tutorial,
the baseline loop the bench compares with).
"""

from app.worker.training.config import FieldSpec, RunConfig
from app.worker.training.engine import RunResult, run
from app.worker.training.events import (
    EVENT_TYPES,
    EpochEnd,
    Event,
    Failed,
    Finished,
    Started,
    StepProgress,
)
from app.worker.training.loop import evaluate, train_one_epoch
from app.worker.training.preflight import check_config

__all__ = [
    "EVENT_TYPES",
    "EpochEnd",
    "Event",
    "Failed",
    "FieldSpec",
    "Finished",
    "RunConfig",
    "RunResult",
    "Started",
    "StepProgress",
    "check_config",
    "evaluate",
    "run",
    "train_one_epoch",
]
