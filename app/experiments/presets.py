"""The presets: for one question's claim, the runs that test it and how to read them.

Each preset names its question, states the claim as the answer makes it, says what to look
at, lists its runs (a shared base config plus each run's changes) and reads the finished
runs' figures into a finding: `shown` is True when this group showed the claimed effect, False
when it did not, None while runs are missing or failed; the summary gives the numbers. The
thresholds are fixed here once, from what the claim says, and never tuned to a result.

Sizes: shapes at 24 px with a small smallcnn, so a whole group trains in about a minute
on a 2-core CPU. `QUICK` shrinks any preset further for tests.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from app.experiments import findings

# A base every preset starts from: small, fast, deterministic.
BASE: dict[str, Any] = {
    "dataset": "shapes",
    "image_size": 24,
    "width": 16,
    "batch_size": 32,
    "warmup_epochs": 0.5,
    "seed": 0,
    "data_seed": 0,
    "device": "auto",  # a GPU where the worker has one; sized for a 2-core CPU
    "max_misclassified": 8,
}
# Applied over every run of a preset by the tests: a few seconds a run.
QUICK: dict[str, Any] = {"epochs": 1, "images_per_class": 30, "image_size": 16, "width": 8}


class RunLike(Protocol):
    """What a finding reads of a run (app.models.Run has it)."""

    id: int | None
    status: str
    config: dict[str, Any]
    metrics: dict[str, Any] | None
    history: list[Any]
    error: str | None


Finding = tuple[bool | None, str]


@dataclass(frozen=True)
class Variant:
    label: str  # how the comparison names the run
    changes: dict[str, Any]


@dataclass(frozen=True)
class Preset:
    name: str
    question: str  # the question's slug
    title: str
    claim: str  # the effect the answer claims
    notice: str  # what to look at in the comparison
    base: dict[str, Any]
    variants: tuple[Variant, ...]
    read: Callable[[Sequence[RunLike], Sequence[str]], Finding]
    # Transfer: the run the others start from; a learner's own matching run is reused.
    pretrain: Variant | None = None
    quick: dict[str, Any] = field(default_factory=dict)  # per-preset test-size changes

    def configs(self, *, quick: bool = False) -> list[dict[str, Any]]:
        """The variants' configs, in order (not the pretraining run's)."""
        extra = {**QUICK, **self.quick} if quick else {}
        return [{**BASE, **self.base, **v.changes, **extra} for v in self.variants]

    def pretrain_config(self, *, quick: bool = False) -> dict[str, Any] | None:
        if self.pretrain is None:
            return None
        extra = {**QUICK, **self.quick} if quick else {}
        return {**BASE, **self.base, **self.pretrain.changes, **extra}

    def labels(self) -> list[str]:
        """Labels of the runs in an experiment's order (the pretraining run first, if any)."""
        first = [self.pretrain.label] if self.pretrain else []
        return first + [v.label for v in self.variants]

    def finding(self, runs: Sequence[RunLike]) -> Finding:
        """(shown, summary) from the runs in the experiment's order; None until all succeeded."""
        waiting = findings.not_ready(runs, self.labels())
        if waiting is not None:
            return None, waiting
        return self.read(runs, self.labels())

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "question": self.question,
            "title": self.title,
            "claim": self.claim,
            "notice": self.notice,
            "runs": self.labels(),
            "configs": self.configs(),
            "pretrain": self.pretrain_config(),
        }


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset(
            name="transfer",
            question="transfer-learning",
            title="From scratch vs a frozen backbone vs fine-tuning, with few images",
            claim="With few images per class, starting from a network trained on other images "
            "beats training from scratch; the frozen backbone is the cheap choice, fine-tuning "
            "the flexible one.",
            notice="Compare the validation accuracy of the three runs on classes 5-9 (20 "
            "training images each). The backbone was trained on classes 0-4 only: it never saw "
            "these shapes.",
            base={
                "num_classes": 5,
                "first_class": 5,
                "images_per_class": 40,
                "val_fraction": 0.5,
                "epochs": 15,
                "batch_size": 16,
            },
            pretrain=Variant(
                "pretrained on classes 0-4",
                {
                    "first_class": 0,
                    "images_per_class": 300,
                    "val_fraction": 0.2,
                    "epochs": 8,
                    "batch_size": 32,
                },
            ),
            variants=(
                Variant("from scratch", {"init": "scratch"}),
                Variant("frozen backbone", {"init": "run:{pretrain}", "strategy": "frozen"}),
                Variant(
                    "fine-tuned",
                    {"init": "run:{pretrain}", "strategy": "full", "lr": 1e-3, "warmup_epochs": 0},
                ),
            ),
            read=findings.transfer,
            quick={"images_per_class": 10},
        ),
        Preset(
            name="imbalance",
            question="class-imbalance",
            title="Cross-entropy vs weighted CE vs focal loss vs balanced sampling on a 1:20 tail",
            claim="On a long-tailed training set plain cross-entropy neglects the rare classes; "
            "re-weighting the loss, focal loss or balanced sampling raise the rarest class's "
            "recall and the macro-F1.",
            notice="The validation set is balanced. Look at the last (rarest) class's recall and "
            "the macro-F1, not the accuracy.",
            base={
                "num_classes": 5,
                "images_per_class": 300,
                "imbalance_ratio": 20.0,
                "epochs": 10,
                "augment": "none",
            },
            variants=(
                Variant("cross-entropy", {"loss": "ce"}),
                Variant("weighted CE", {"loss": "weighted_ce"}),
                Variant("focal (γ 2, α 0.5)", {"loss": "focal", "focal_alpha": 0.5}),
                Variant("balanced sampler", {"sampler": "balanced"}),
            ),
            read=findings.imbalance,
            quick={"epochs": 4, "images_per_class": 200},
        ),
        Preset(
            name="augmentation",
            question="data-augmentation",
            title="No vs standard vs strong augmentation on a small training set",
            claim="On a small training set augmentation narrows the gap between training and "
            "validation accuracy (less overfitting).",
            notice="Each run scores its un-augmented training images every epoch: compare that "
            "accuracy with the validation accuracy (the gap), epoch by epoch.",
            base={
                "num_classes": 5,
                "images_per_class": 100,
                "val_fraction": 0.3,
                "epochs": 25,
                "eval_train": True,
            },
            variants=(
                Variant("none", {"augment": "none"}),
                Variant("standard", {"augment": "standard"}),
                Variant("strong", {"augment": "strong"}),
            ),
            read=findings.augmentation,
        ),
        Preset(
            name="batchnorm",
            question="batch-normalization",
            title="Batch norm on vs off at a high learning rate",
            claim="Batch normalization keeps training stable at a learning rate where the same "
            "network without it diverges or stalls.",
            notice="Compare the loss curves: without batch norm at lr 0.5 the loss jumps or "
            "sticks at chance (ln 5 ≈ 1.61); with it, it falls.",
            base={
                "num_classes": 5,
                "images_per_class": 200,
                "epochs": 8,
                "optimizer": "sgd",
                "lr": 0.5,
                "depth": 2,
            },
            variants=(
                Variant("batch norm", {"batch_norm": True}),
                Variant("no batch norm", {"batch_norm": False}),
            ),
            read=findings.batchnorm,
        ),
        Preset(
            name="residual",
            question="residual-connections",
            title="A deep plain net vs the same net with skip connections",
            claim="In a deep network without skip connections the gradient reaching the first "
            "layers vanishes; skip connections keep it alive.",
            notice="Compare the gradient norm of the stem (the first conv) per epoch: a log "
            "scale shows the plain net's orders of magnitude below the residual one's.",
            base={
                "num_classes": 5,
                "images_per_class": 100,
                "epochs": 3,
                "depth": 6,
                "width": 8,
                "batch_norm": False,
                "lr": 1e-3,
            },
            variants=(
                Variant("plain", {"residual": False}),
                Variant("residual", {"residual": True}),
            ),
            read=findings.residual,
            quick={"images_per_class": 20},
        ),
        Preset(
            name="pooling",
            question="pooling",
            title="Max pooling vs average pooling vs a strided conv",
            claim="A stride-2 convolution can replace pooling without losing accuracy "
            "(Springenberg et al., 2015): the network learns how to downsample.",
            notice="Compare the validation accuracy and the images/s. Here the first conv of a "
            "stage takes the stride, so all three nets have the same parameters.",
            base={"num_classes": 5, "images_per_class": 300, "epochs": 8},
            variants=(
                Variant("max pool", {"downsample": "maxpool"}),
                Variant("average pool", {"downsample": "avgpool"}),
                Variant("strided conv", {"downsample": "strided"}),
            ),
            read=findings.pooling,
        ),
        Preset(
            name="training-loop",
            question="training-loop",
            title="The tutorial loop vs the engine, on the same data",
            claim="Keeping the decoded images as tensors and augmenting whole batches trains "
            "several times more images per second than decoding files one by one in a "
            "DataLoader, for the same accuracy.",
            notice="Same model, step, seed and recipe; only the data path differs. Compare the "
            "images/s and the validation accuracy. The runs train one after the other, so "
            "anything else busy on the machine meanwhile moves the images/s.",
            base={"num_classes": 5, "images_per_class": 200, "epochs": 4, "augment": "standard"},
            variants=(
                Variant("tutorial loop", {"loop": "tutorial"}),
                Variant("engine", {"loop": "engine"}),
            ),
            read=findings.training_loop,
        ),
    )
}


def preset_or_none(name: str) -> Preset | None:
    return PRESETS.get(name)


def presets_for(question_slug: str) -> list[Preset]:
    """The presets that test a claim of this question, in PRESETS order."""
    return [p for p in PRESETS.values() if p.question == question_slug]
