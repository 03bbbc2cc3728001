"""Checks of a config against this machine, before any data is read: `check_config`.

What `RunConfig.from_dict` cannot know: is there a GPU, is the folder or CIFAR-10 there, are
the ImageNet weights in the torch cache, does the earlier run to start from exist and fit,
and, when resuming, is there a checkpoint trained with this very config. Each failure is a
InvalidInput naming the field, so a form or the CLI can show it before anything is trained.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from app.worker.errors import InvalidInput
from app.worker.training import checkpoint
from app.worker.training.config import RunConfig
from app.worker.training.data import preflight
from app.worker.training.loop import Precision, resolve_precision
from app.worker.training.models import (
    check_imagenet,
    read_init_checkpoint,
    resolve_init_checkpoint,
    stage_count,
)


@dataclass
class Plan:
    """What `check_config` resolved: where and how the run trains, and what it starts from."""

    device: torch.device
    precision: Precision
    init_checkpoint: dict[str, Any] | None = None
    resume_checkpoint: dict[str, Any] | None = None


def resolve_device(requested: str) -> torch.device:
    """auto: the current CUDA device when there is one, else the CPU.

    Creates no CUDA context (`torch.cuda.is_available()` does not; `current_device()` would):
    a process that only checks configs, such as the web server, must stay able to fork.
    """
    if requested == "cuda" or (requested == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise InvalidInput("device", "CUDA is not available on this machine; use auto or cpu")
        return torch.device("cuda")
    return torch.device("cpu")


def check_config(
    config: RunConfig,
    *,
    data_dir: Path,
    runs_dir: Path | None = None,
    resume_dir: Path | None = None,
) -> Plan:
    """Everything about the config that this machine decides, before any data is read.

    Raises InvalidInput for: CUDA asked for but absent; fp16 on the CPU; more stages to
    unfreeze than the model has; a missing folder or CIFAR-10; ImageNet weights not in the
    torch cache (naming the path and URL); an init run or checkpoint that is missing or of
    another architecture; and, with `resume_dir`, a missing checkpoint or a config that
    differs from the one it was trained with.
    """
    device = resolve_device(config.device)
    precision = resolve_precision(config.precision, device)
    stages = stage_count(config)
    if config.strategy == "last_n" and config.unfreeze_stages > stages:
        raise InvalidInput(
            "unfreeze_stages",
            f"{config.model} has {stages} backbone stages; expected 1 to {stages}",
        )
    preflight(config, data_dir)
    plan = Plan(device, precision)
    if resume_dir is not None:
        path = resume_dir / checkpoint.FILENAME
        if not path.is_file():
            raise InvalidInput("resume", f"no {checkpoint.FILENAME} in {resume_dir} to resume from")
        try:
            plan.resume_checkpoint = checkpoint.load(path)
        except Exception as error:
            raise InvalidInput("resume", f"cannot read {path}: {error}") from error
        saved = plan.resume_checkpoint["config"]
        for key, value in config.to_dict().items():
            if saved.get(key) != value:
                raise InvalidInput(
                    key,
                    f"is {value!r} here but {saved.get(key)!r} in the checkpoint; a resumed run keeps its config",
                )
        return plan
    if config.init_kind == "imagenet":
        check_imagenet(config.model)
    elif config.init_kind in ("run", "path"):
        path = resolve_init_checkpoint(config, runs_dir)
        plan.init_checkpoint = read_init_checkpoint(config, path)
    return plan
