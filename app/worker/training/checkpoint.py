"""checkpoint.pt: one plain dict, loadable with `torch.load(path, weights_only=True)`.

Keys (torchvision's reference trainer's, plus what an exact resume needs):
`model`, `optimizer`, `scheduler`, `scaler` (state dicts; `scaler` is {} without fp16),
`epoch` (epochs completed), `step` (steps done in the next epoch, > 0 after a mid-epoch stop),
`order` (that epoch's sample order, int64), `config` (RunConfig.to_dict()), `classes`,
`normalization` ({mean, std} the model was trained with), `versions`, `tutorial` (loop
"tutorial": its DataLoader's shuffling state, else {}), `rng` (the global torch
and CUDA generator states and the data and mixing generators'), `progress` (history, per-step
losses, the unfinished epoch's sums, the last validation report) and `status`.

Only tensors, dicts, lists, strings, numbers, booleans and None go in: since PyTorch 2.6
`torch.load` refuses anything else by default (its `weights_only=True`; PyTorch's `torch.load`
reference and its serialization notes, "weights_only"). The file is written beside its target
and renamed over it, so a crash never leaves half a checkpoint.
"""

from __future__ import annotations

import os
import platform
import threading
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torchvision

import app

FILENAME = "checkpoint.pt"
KEYS = (
    "model",
    "optimizer",
    "scheduler",
    "scaler",
    "epoch",
    "config",
    "classes",
    "versions",
    "rng",
)


def versions(device: torch.device) -> dict[str, str | None]:
    """Library versions and the device, for reproducing a run."""
    cuda = device.type == "cuda"
    return {
        "cvprep": app.__version__,
        "python": platform.python_version(),
        "torch": str(torch.__version__),  # a TorchVersion, which weights_only refuses
        "torchvision": str(torchvision.__version__),
        "numpy": str(np.__version__),
        "cuda": str(torch.version.cuda) if cuda else None,
        "cudnn": str(torch.backends.cudnn.version()) if cuda else None,
        "device": torch.cuda.get_device_name(device) if cuda else platform.processor() or "cpu",
    }


def rng_state(generator: torch.Generator, mix_generator: torch.Generator) -> dict[str, Any]:
    """Every generator a run draws from, as ByteTensors (what `restore_rng` puts back)."""
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else [],
        "data": generator.get_state(),
        "mix": mix_generator.get_state(),
    }


def restore_rng(
    state: dict[str, Any], generator: torch.Generator, mix_generator: torch.Generator
) -> None:
    """Put the generators back where `rng_state` found them, so the draws continue the same."""
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    generator.set_state(state["data"])
    mix_generator.set_state(state["mix"])


def save(path: Path, checkpoint: dict[str, Any]) -> None:
    """Write atomically: a temporary file in the same folder, then os.replace."""
    missing = [key for key in KEYS if key not in checkpoint]
    if missing:
        raise ValueError(f"checkpoint lacks {missing}")
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        torch.save(checkpoint, temporary)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


def load(path: Path) -> dict[str, Any]:
    """The checkpoint dict on the CPU (move what you need to the device yourself)."""
    checkpoint: dict[str, Any] = torch.load(path, map_location="cpu", weights_only=True)
    return checkpoint
