"""What the New-run form offers a learner: plain labels, the fields shown first, the data sets
by name, and which choices this server can run.

The engine's names stay beside every label (they are what a config file and `cvprep train`
use). The data set is one choice: a built-in set, one of the learner's uploads by name
(`upload:<id>`), or a folder on the server (`folder:<path>`); `read_choice` turns it back into
the engine's `dataset`, `folder` and the web's `dataset_id`. A choice this machine cannot run
(CIFAR-10 without its files, ImageNet weights missing from the torch cache, CUDA without a GPU)
is offered disabled, with the reason beside it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from app.models.datasets import Dataset
from app.settings import Settings

# Shown first, in this order; everything else is under "More settings".
BASIC = ("dataset", "model", "init", "epochs", "batch_size", "lr", "augment")

LABELS = {
    "dataset": "Data set",
    "folder": "Folder on the server",
    "dataset_id": "Uploaded data set",
    "image_size": "Image size",
    "images_per_class": "Images per class",
    "num_classes": "Number of classes",
    "first_class": "First class",
    "imbalance_ratio": "Imbalance ratio",
    "val_fraction": "Validation share",
    "data_seed": "Data seed",
    "model": "Model",
    "batch_norm": "Batch normalisation",
    "residual": "Residual connections",
    "depth": "Blocks per stage",
    "width": "Width",
    "downsample": "Downsampling",
    "init": "Starting weights",
    "strategy": "What trains",
    "unfreeze_stages": "Stages to unfreeze",
    "backbone_lr_mult": "Backbone learning-rate factor",
    "loss": "Loss",
    "focal_gamma": "Focal γ",
    "focal_alpha": "Focal α",
    "label_smoothing": "Label smoothing",
    "sampler": "Sampling",
    "augment": "Augmentation",
    "mixup_alpha": "MixUp α",
    "cutmix_alpha": "CutMix α",
    "optimizer": "Optimiser",
    "lr": "Learning rate",
    "momentum": "Momentum",
    "nesterov": "Nesterov momentum",
    "weight_decay": "Weight decay",
    "warmup_epochs": "Warm-up epochs",
    "epochs": "Epochs",
    "batch_size": "Batch size",
    "grad_clip": "Gradient clipping",
    "seed": "Seed",
    "loop": "Training loop",
    "precision": "Precision",
    "device": "Device",
    "max_misclassified": "Mistakes kept",
    "eval_train": "Score the training split",
}

# Shorter words than the engine's help where the choices already say it (the first fields).
HINTS = {
    "dataset": "What each holds is in its name",
    "init": "Where the weights start",
}

# What each built-in set is: (label, what it holds).
BUILT_IN = {
    "shapes": ("Shapes", "10 classes of drawn shapes, generated here: 500 per class by default"),
    "digits": ("Digits", "handwritten 0–9 from scikit-learn: 1,797 images of 8×8 px"),
    "cifar10": ("CIFAR-10", "10 classes of small photos: 60,000 images of 32×32 px"),
}
UPLOAD = "upload:"
FOLDER = "folder:"


@dataclass
class Option:
    value: str
    label: str
    disabled: str | None = None  # the reason it cannot run here
    name: str = ""  # a short name for the reason's sentence (the label's start by default)

    @property
    def short(self) -> str:
        return self.name or self.label.split(":")[0]


def label(name: str) -> str:
    """The plain label of an engine field (its own name when there is none)."""
    return LABELS.get(name, name.replace("_", " ").capitalize())


def _cifar_present(settings: Settings) -> bool:
    from app.worker.training.data import cifar10

    try:
        cifar10.check_present(settings.data_dir)
    except Exception:
        return False
    return True


def server_folders(settings: Settings) -> list[str]:
    """Folders under DATA_DIR/datasets a run may train on: not uploads/, not CIFAR-10's."""
    from app.worker.training.data import cifar10

    root = settings.data_dir / "datasets"
    skip = {settings.uploads_dir.resolve(), cifar10.folder(settings.data_dir).resolve()}
    try:
        found = sorted(p for p in root.iterdir() if p.is_dir() and p.resolve() not in skip)
    except OSError:
        return []
    return [p.name for p in found[:50]]


def dataset_options(
    settings: Settings, uploads: list[Dataset], current: str | None = None
) -> list[Option]:
    """The data set choice: built-in sets, the learner's uploads by name, server folders."""
    options = []
    for key, (name, what) in BUILT_IN.items():
        reason = None
        if key == "cifar10" and not _cifar_present(settings):
            reason = "its files are not on this server"
        options.append(Option(key, f"{name}: {what}", reason))
    for row in uploads:
        options.append(
            Option(
                f"{UPLOAD}{row.id}",
                f"{row.name}: your upload, {len(row.classes)} classes, {row.images:,} images",
            )
        )
    folders = server_folders(settings)
    for name in folders:
        options.append(Option(f"{FOLDER}{name}", f"{name}: a folder on this server"))
    if not uploads and not folders:
        options.append(
            Option(
                "folder",
                "Your own images",
                "upload a zip of class folders under Data sets first",
                "Your own images",
            )
        )
    if current and current not in {o.value for o in options}:
        shown = current.removeprefix(FOLDER)
        if current.startswith(UPLOAD) or shown.startswith("uploads/"):
            label = "An upload that is gone (deleted, or not yours)"
        else:
            label = f"{shown}: a folder on this server"
        options.append(Option(current, label))
    for option in options:  # the current value stays choosable, so its message is shown
        if option.value == current:
            option.disabled = None
    return options


def cached_imagenet() -> list[str]:
    """The architectures whose ImageNet weights are in this machine's torch cache."""
    from app.worker.training.models import imagenet_path

    found = []
    for arch in ("resnet18", "mobilenet_v3_small", "efficientnet_b0"):
        try:
            if imagenet_path(arch)[0].is_file():
                found.append(arch)
        except Exception:
            continue
    return found


def runtime_reasons() -> dict[tuple[str, str], str]:
    """(field, value) → why this machine cannot run it."""
    import torch

    reasons: dict[tuple[str, str], str] = {}
    if not torch.cuda.is_available():
        reasons[("device", "cuda")] = "no GPU on this server"
        reasons[("precision", "fp16")] = "fp16 needs a GPU; there is none on this server"
    return reasons


def choice_value(values: Mapping[str, Any], uploads: list[Dataset]) -> str:
    """The data set choice that shows `values` (engine names) in the form."""
    dataset = str(values.get("dataset") or "")
    if dataset != "folder":
        return dataset
    chosen = str(values.get("dataset_id") or "").strip()
    if chosen:
        return f"{UPLOAD}{chosen}"
    folder = str(values.get("folder") or "")
    for row in uploads:
        if row.folder == folder:
            return f"{UPLOAD}{row.id}"
    return f"{FOLDER}{folder}" if folder else "folder"


def read_choice(form: Mapping[str, Any]) -> dict[str, Any]:
    """The form with its data set choice turned back into the engine's fields."""
    out = dict(form)
    value = out.get("dataset")
    if isinstance(value, str) and value.startswith(UPLOAD):
        out.update(dataset="folder", dataset_id=value.removeprefix(UPLOAD), folder="")
    elif isinstance(value, str) and value.startswith(FOLDER):
        out.update(dataset="folder", folder=value.removeprefix(FOLDER), dataset_id="")
    return out


def upload_names(uploads: list[Dataset]) -> dict[str, str]:
    """folder → the learner's name for it, for titles and configs."""
    return {row.folder: row.name for row in uploads}
