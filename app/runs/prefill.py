"""What the New-run form starts from: defaults, a question's experiment, or an earlier run.

A question's front matter names its experiments (`experiments: [imbalance]`); each name here
is one run of that experiment, small enough to finish in about a minute on a laptop CPU,
with a line on what to change for the comparison that answers the question's claim.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app.models import Run


@dataclass(frozen=True)
class Experiment:
    name: str
    title: str
    config: dict[str, Any]  # the fields that differ from the defaults
    compare: str  # what to run next, and what to look at


EXPERIMENTS = {
    e.name: e
    for e in (
        Experiment(
            "pooling",
            "Max vs average pooling vs a strided conv",
            {"downsample": "avgpool", "epochs": 5},
            "Run it once for each downsample (maxpool, avgpool, strided) and compare the "
            "validation accuracy and the images/s.",
        ),
        Experiment(
            "residual",
            "A deep net with and without skip connections",
            {"depth": 4, "residual": True, "batch_norm": False, "epochs": 5},
            "Run it again with residual off: compare the gradient norms of the early layers "
            "(stem, stage1) and the first epochs' loss.",
        ),
        Experiment(
            "transfer",
            "Transfer learning: frozen ImageNet backbone",
            {
                "model": "resnet18",
                "init": "imagenet",
                "strategy": "frozen",
                "image_size": 64,
                "images_per_class": 100,
                "epochs": 3,
                "lr": 0.001,
            },
            "Compare with strategy full (fine-tuning) and with init scratch. The ImageNet "
            "weights must be in the torch cache (`cvprep weights fetch resnet18`).",
        ),
        Experiment(
            "batchnorm",
            "Batch norm at a high learning rate",
            {"optimizer": "sgd", "lr": 0.4, "batch_norm": True, "epochs": 5},
            "Run it again with batch norm off at the same learning rate and compare the loss "
            "curves.",
        ),
        Experiment(
            "augmentation",
            "Augmentation on a small training set",
            {"augment": "strong", "images_per_class": 60, "epochs": 10},
            "Run it again with augment none: compare the gap between train and validation "
            "accuracy.",
        ),
        Experiment(
            "imbalance",
            "A long-tailed training set with focal loss",
            {"imbalance_ratio": 20.0, "loss": "focal", "epochs": 5},
            "Compare with loss ce, with weighted_ce and with sampler balanced: look at the "
            "last classes' recall, the macro F1 and the ECE.",
        ),
        Experiment(
            "training-loop",
            "The training loop of the answer, on the shapes",
            {"epochs": 3},
            "Watch the loss per step, the images/s and the ETA; then change the batch size or "
            "the learning rate and compare.",
        ),
    )
}


def run_again(run: Run) -> dict[str, Any]:
    """The run's own config."""
    return dict(run.config)


def fine_tune_from(run: Run) -> dict[str, Any]:
    """Start from the run's weights (init run:<id>) with a tenth of its learning rate and no
    warm-up: the usual recipe for continuing from trained weights."""
    config = dict(run.config)
    config.update(
        init=f"run:{run.id}",
        lr=float(config.get("lr", 3e-3)) / 10,
        warmup_epochs=0.0,
    )
    return config
