"""The presets: one place that defines each "Run it" experiment.

A preset names its question, states the claim in the answer's words, says how its design
tests that claim, lists its arms (a shared base config plus each arm's changes), how big it is
at each size, how its verdict is read (`rules.py`, by the protocol in `verdict.py`) and which
charts show the evidence (`evidence.py`).

Every arm runs once per seed; seed i sets both the model's `seed` and the data's `data_seed`
to i, so the arms of one seed are paired (same images, same split) and the seeds vary every
source of noise the engine has. An arm marked `once` (transfer's pretraining run) trains a
single time, before the others, and is never another preset's or another experiment's run.
The runs of an experiment are queued seed by seed, arm after arm (A₀ B₀ A₁ B₁ …), so a
worker that takes the oldest first interleaves the arms and slow drifts of the machine's load
fall on every arm alike.

Sizes: `default` finishes within about three minutes on a quiet 2-core CPU (measured by
`make bench`, whose table the README keeps); `full` runs the same design with more data,
epochs and seeds, for a GPU or a patient learner; `test` is the smallest that runs every code
path, for the test suite.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from app.experiments import rules
from app.experiments.verdict import Verdict

# Every preset starts from this: deterministic, a GPU where the worker has one, small outputs.
# fp32 at the default and test sizes: their nets are so small that bf16 autocast's casts cost
# more than they save on a CPU, and the README's figures stay comparable; `full` uses auto.
BASE: dict[str, Any] = {
    "dataset": "shapes",
    "device": "auto",
    "precision": "fp32",
    "max_misclassified": 8,
}
FULL = {"precision": "auto"}
PRETRAIN = "run:{pretrain}"  # in an arm's changes: start from the experiment's own `once` arm


@dataclass(frozen=True)
class Arm:
    """One condition of the experiment, trained once per seed (or once, with `once`)."""

    key: str  # stable name inside the preset (what the experiment row stores)
    label: str  # how the page names it
    changes: dict[str, Any] = field(default_factory=dict)
    series: str = ""  # sweeps: the curve the arm belongs to ("batch norm")
    x: float | None = None  # sweeps: its position on the x axis (the learning rate)
    once: bool = False  # trained a single time, before the others (a pretraining run)


@dataclass(frozen=True)
class Size:
    """How big a preset runs: seeds, changes over the design, the arms kept (None = all)."""

    seeds: int
    changes: dict[str, Any] = field(default_factory=dict)
    arms: tuple[str, ...] | None = None
    # Expected wall time on a 2-core CPU, one training thread as the local worker has: the
    # figures `python -m benchmarks.experiments` printed on 2026-12-06 on a quiet machine.
    minutes: float | None = None


@dataclass(frozen=True)
class Cell:
    """One run of an experiment: an arm at a seed (None for a `once` arm)."""

    arm: str
    seed: int | None


@dataclass(frozen=True)
class Preset:
    name: str
    question: str  # the question's slug
    title: str
    claim: str  # the claim as the answer states it, in the same words
    design: str  # how the arms test it, and what this size cannot show
    notice: str  # what to look at on the page
    base: dict[str, Any]
    arms: tuple[Arm, ...]
    rule: Callable[[rules.Evidence], Verdict]
    sizes: dict[str, Size]
    charts: tuple[str, ...] = ()  # evidence.CHARTS names, in order

    def arm(self, key: str) -> Arm:
        """The arm called `key`; KeyError for another name."""
        for arm in self.arms:
            if arm.key == key:
                return arm
        raise KeyError(key)

    def arms_at(self, size: str) -> list[Arm]:
        """The arms a size keeps, in the preset's order."""
        keep = self.sizes[size].arms
        return [a for a in self.arms if keep is None or a.key in keep]

    def plan(self, size: str = "default", first_seed: int = 0) -> list[Cell]:
        """Every run in queueing order: `once` arms first, then seed by seed, arm after arm.

        The seeds are first_seed, first_seed + 1, ...: "Run it again" takes the next ones, so
        a learner sees the noise rather than the same numbers twice."""
        arms = self.arms_at(size)
        cells = [Cell(a.key, None) for a in arms if a.once]
        for seed in range(first_seed, first_seed + self.sizes[size].seeds):
            cells += [Cell(a.key, seed) for a in arms if not a.once]
        return cells

    def config(self, cell: Cell, size: str = "default") -> dict[str, Any]:
        """The run config of one cell (before PRETRAIN is replaced by the run's id)."""
        seed = cell.seed or 0
        values = {**BASE, **self.base, **self.sizes[size].changes, "seed": seed}
        values["data_seed"] = seed
        return {**values, **self.arm(cell.arm).changes}

    def to_dict(self, size: str = "default") -> dict[str, Any]:
        """The preset as the API lists it."""
        cells = self.plan(size)
        return {
            "name": self.name,
            "question": self.question,
            "title": self.title,
            "claim": self.claim,
            "design": self.design,
            "notice": self.notice,
            "arms": [
                {"key": a.key, "label": a.label, "once": a.once, "series": a.series, "x": a.x}
                for a in self.arms_at(size)
            ],
            "seeds": self.sizes[size].seeds,
            "runs": len(cells),
            "minutes": self.sizes[size].minutes,
            "sizes": {
                name: {"seeds": s.seeds, "runs": len(self.plan(name)), "minutes": s.minutes}
                for name, s in self.sizes.items()
                if name != "test"
            },
            "configs": [self.config(cell, size) for cell in cells],
        }


def _sweep(lrs: Sequence[float]) -> tuple[Arm, ...]:
    arms = []
    for series, key, bn in (("batch norm", "bn", True), ("no batch norm", "plain", False)):
        for lr in lrs:
            arms.append(
                Arm(
                    f"{key}@{lr:g}",
                    f"{series}, lr {lr:g}",
                    {"batch_norm": bn, "lr": lr},
                    series,
                    lr,
                )
            )
    return tuple(arms)


LEARNING_RATES = (0.01, 0.0316, 0.1, 0.316, 1.0)  # log-spaced, ×√10 a step

PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset(
            name="batchnorm",
            question="batch-normalization",
            title="A learning-rate sweep with and without batch norm",
            claim="With batch normalization the same network still trains at larger learning "
            "rates than without it (SGD, equal weight decay).",
            design="The same small CNN with and without batch norm, each trained at five "
            "log-spaced learning rates (0.01 to 1) with SGD and Nesterov momentum, no warm-up "
            "and weight decay 0 for both, on sklearn's digits. A net 'trains' at a rate when "
            "its validation accuracy ends 15 points above chance with a finite loss. Per seed, "
            "the largest rate at which each net trains is compared (in steps of the sweep); the "
            "best accuracy over the sweep is shown beside it.",
            notice="Read the chart of validation accuracy against learning rate: where each "
            "net's curve falls to chance is its limit. Both nets should train at the small "
            "rates; the question is how far to the right each one keeps training.",
            base={
                "dataset": "digits",
                "image_size": 16,
                "width": 8,
                "depth": 1,
                "val_fraction": 0.3,
                "augment": "none",
                "optimizer": "sgd",
                "momentum": 0.9,
                "nesterov": True,
                "weight_decay": 0.0,
                "warmup_epochs": 0.0,
                "batch_size": 32,
                "epochs": 8,
            },
            arms=_sweep(LEARNING_RATES),
            rule=rules.batchnorm,
            sizes={
                "default": Size(3, minutes=1.2),
                "full": Size(5, {**FULL, "epochs": 20, "image_size": 24, "width": 16}),
                "test": Size(
                    3,
                    {"epochs": 1, "images_per_class": 12, "image_size": 8, "width": 4},
                    arms=("bn@0.01", "bn@1", "plain@0.01", "plain@1"),
                ),
            },
            charts=("accuracy_vs_lr", "val_accuracy"),
        ),
        Preset(
            name="residual",
            question="residual-connections",
            title="Shallow plain vs deep plain vs deep residual: the degradation problem",
            claim="With batch normalization in both nets, a deeper plain stack ends with a "
            "higher training loss than a shallower one (the degradation problem), while the same "
            "deep stack with identity skip connections trains to a lower training loss than the "
            "plain one of its depth.",
            design="Three nets with batch norm, trained alike with SGD on sklearn's digits: a "
            "plain net of 7 convs, a plain net of 25 convs and the same 25 convs with identity "
            "skips (each residual branch starts at zero, as the field does). The evidence is "
            "the loss on the un-augmented training images at the end: optimisation, not "
            "overfitting. Beside it, how much of the gradient reaches the first layer: the "
            "stem's gradient norm over the head's, inside each net, per epoch.",
            notice="Compare the training loss of the three nets, then the gradient ratio on "
            "its log scale: in the deep plain net a smaller share of the gradient reaches the "
            "stem. He et al. saw this with batch norm, so the gradient did not vanish: the deep "
            "plain net is harder to optimise.",
            base={
                "dataset": "digits",
                "image_size": 16,
                "width": 8,
                "val_fraction": 0.3,
                "augment": "none",
                "batch_norm": True,
                "optimizer": "sgd",
                "lr": 0.05,
                "weight_decay": 5e-4,
                "warmup_epochs": 0.5,
                "batch_size": 32,
                "epochs": 8,
                "eval_train": True,
            },
            arms=(
                Arm("shallow", "plain, 7 convs", {"depth": 1, "residual": False}),
                Arm("deep", "plain, 25 convs", {"depth": 4, "residual": False}),
                Arm("residual", "residual, 25 convs", {"depth": 4, "residual": True}),
            ),
            rule=rules.residual,
            sizes={
                "default": Size(3, minutes=1.1),
                "full": Size(
                    5, {**FULL, "epochs": 20, "image_size": 24, "width": 16}, minutes=None
                ),
                "test": Size(3, {"epochs": 1, "images_per_class": 12, "image_size": 8, "width": 4}),
            },
            charts=("train_loss", "grad_ratio"),
        ),
        Preset(
            name="pooling",
            question="pooling",
            title="Max pool vs average pool vs Strided-CNN vs All-CNN",
            claim="Replacing each pooling layer by an extra 3×3 convolution with stride 2 "
            "(Springenberg et al.'s All-CNN) trains a network as accurate as the same network "
            "with max or average pooling; striding the existing convolution instead (their "
            "Strided-CNN) can lose accuracy.",
            design="One small CNN whose two downsampling steps are 2×2 max pooling, 2×2 average "
            "pooling, the stage's first conv with stride 2 (Strided-CNN: no extra layer) or an "
            "extra 3×3 stride-2 conv (All-CNN), trained alike until the training accuracy "
            "levels off on the shapes. The All-CNN arm is compared with each pooling arm on its "
            "own, seed by seed: 'as accurate' means the 95 % interval of the paired difference "
            "lies above −3 points. Parameters, multiply-adds and images/s are shown beside.",
            notice="Look at the paired differences, not the best run: All-CNN against max "
            "pooling and against average pooling, per seed. The Strided-CNN row is there to "
            "show what the claim does not cover.",
            base={
                "num_classes": 5,
                "images_per_class": 400,
                "val_fraction": 0.5,
                "image_size": 16,
                "width": 16,
                "depth": 1,
                "augment": "standard",
                "optimizer": "sgd",
                "lr": 0.05,
                "weight_decay": 5e-4,
                "warmup_epochs": 0.5,
                "batch_size": 32,
                "epochs": 20,
                "eval_train": True,
            },
            arms=(
                Arm("maxpool", "max pool", {"downsample": "maxpool"}),
                Arm("avgpool", "average pool", {"downsample": "avgpool"}),
                Arm("strided", "Strided-CNN (strided first conv)", {"downsample": "strided"}),
                Arm("allcnn", "All-CNN (extra stride-2 conv)", {"downsample": "conv"}),
            ),
            rule=rules.pooling,
            sizes={
                "default": Size(3, minutes=2.2),
                "full": Size(
                    5, {"epochs": 40, "image_size": 32, "width": 32, "images_per_class": 1000}
                ),
                "test": Size(3, {"epochs": 1, "images_per_class": 12, "image_size": 8, "width": 4}),
            },
            charts=("val_accuracy", "train_accuracy"),
        ),
        Preset(
            name="transfer",
            question="transfer-learning",
            title="From scratch vs a frozen backbone vs fine-tuning, with few images",
            claim="With few labelled images per class, starting from a backbone pretrained on "
            "other classes beats training from scratch; freezing that backbone trains far fewer "
            "parameters per step, fine-tuning it lets it adapt.",
            design="This experiment first trains its own backbone on shapes 0-4 (once, shown "
            "as the first run: never a run made elsewhere). Then, per seed, three nets learn "
            "shapes 5-9 from 20 training images per class: from scratch (its own learning "
            "rate), the backbone frozen with a new head, and the backbone fine-tuned. Each "
            "transfer arm is compared with scratch on its own; trainable parameters and "
            "seconds per run stand beside the accuracy.",
            notice="The backbone never saw classes 5-9. Compare each transfer arm with scratch "
            "seed by seed, and the cost columns: the frozen arm trains only the head.",
            base={
                "num_classes": 5,
                "first_class": 5,
                "images_per_class": 220,
                "val_fraction": 0.9,
                "image_size": 16,
                "width": 16,
                "depth": 1,
                "augment": "standard",
                "batch_size": 16,
                "epochs": 20,
            },
            arms=(
                Arm(
                    "pretrain",
                    "backbone: trained on shapes 0-4",
                    {
                        "first_class": 0,
                        "images_per_class": 400,
                        "val_fraction": 0.2,
                        "epochs": 10,
                        "batch_size": 32,
                    },
                    once=True,
                ),
                Arm("scratch", "from scratch", {"init": "scratch"}),
                Arm("frozen", "frozen backbone", {"init": PRETRAIN, "strategy": "frozen"}),
                Arm(
                    "finetuned",
                    "fine-tuned backbone",
                    {"init": PRETRAIN, "strategy": "full", "lr": 1e-3, "warmup_epochs": 0},
                ),
            ),
            rule=rules.transfer,
            sizes={
                "default": Size(3, minutes=0.6),
                "full": Size(5, {**FULL, "image_size": 32, "width": 32, "epochs": 40}),
                "test": Size(3, {"epochs": 1, "images_per_class": 24, "image_size": 8, "width": 4}),
            },
            charts=("val_accuracy",),
        ),
        Preset(
            name="imbalance",
            question="class-imbalance",
            title="Cross-entropy vs weighted CE vs focal loss vs balanced sampling on a 1:20 tail",
            # (digits: ten classes, the last the rarest)
            claim="On a long-tailed training set, re-weighting the loss, focal loss or balanced "
            "sampling raises the rare class's recall over plain cross-entropy; a remedy helps "
            "only where the macro-F1 rises too.",
            design="sklearn's ten digits with the training images thinned to a long tail "
            "(about 125 for the first digit down to 6 for the last: 1:20); the validation set "
            "stays balanced (about 54 a digit). Each remedy is compared with plain cross-entropy "
            "on its own, seed by seed: on the rare digit's recall (with McNemar's test on its "
            "images) and on the macro-F1. A remedy counts only where both rise; the rare "
            "digit's precision is shown beside its recall.",
            notice="A remedy that predicts the rare class more often raises its recall and "
            "lowers its precision: read the macro-F1 row before the recall row.",
            base={
                "dataset": "digits",
                "val_fraction": 0.3,
                "imbalance_ratio": 20.0,
                "image_size": 16,
                "width": 8,
                "depth": 1,
                "augment": "none",
                "optimizer": "sgd",
                "lr": 0.05,
                "weight_decay": 5e-4,
                "warmup_epochs": 0.5,
                "batch_size": 32,
                "epochs": 20,
            },
            arms=(
                Arm("ce", "cross-entropy", {"loss": "ce"}),
                Arm("weighted", "weighted CE", {"loss": "weighted_ce"}),
                Arm("focal", "focal loss (γ 2)", {"loss": "focal", "focal_gamma": 2.0}),
                Arm("sampler", "balanced sampler", {"sampler": "balanced"}),
            ),
            rule=rules.imbalance,
            sizes={
                "default": Size(3, minutes=0.6),
                "full": Size(5, {**FULL, "image_size": 32, "width": 16, "epochs": 60}),
                "test": Size(3, {"epochs": 1, "images_per_class": 40, "image_size": 8, "width": 4}),
            },
            charts=("val_accuracy",),
        ),
        Preset(
            name="augmentation",
            question="data-augmentation",
            title="No vs standard vs strong augmentation on a small training set",
            claim="On a small training set, augmentation narrows the gap between training and "
            "validation accuracy without lowering validation accuracy; an augmentation too "
            "strong for a small network can lower both.",
            design="60 training images per shape class, 200 for validation, trained long "
            "enough to overfit without augmentation. Each run scores its un-augmented training "
            "images every epoch. Each augmentation is compared with none on its own: it counts "
            "only where the gap narrows and the validation accuracy does not fall by more than "
            "2 points (the 95 % interval of the paired difference above −2).",
            notice="A narrower gap from a lower training accuracy is underfitting, not less "
            "overfitting: read the validation accuracy row first.",
            base={
                "num_classes": 5,
                "images_per_class": 260,
                "val_fraction": 0.77,
                "image_size": 16,
                "width": 16,
                "depth": 1,
                "batch_size": 32,
                "epochs": 30,
                "eval_train": True,
            },
            arms=(
                Arm("none", "none", {"augment": "none"}),
                Arm("standard", "standard (flip, translate)", {"augment": "standard"}),
                Arm("strong", "strong (+ crop, colour)", {"augment": "strong"}),
            ),
            rule=rules.augmentation,
            sizes={
                "default": Size(3, minutes=1.0),
                "full": Size(5, {**FULL, "image_size": 32, "width": 32, "epochs": 60}),
                "test": Size(3, {"epochs": 1, "images_per_class": 20, "image_size": 8, "width": 4}),
            },
            charts=("gap",),
        ),
        Preset(
            name="training-loop",
            question="training-loop",
            title="The tutorial loop vs the engine: a data-bound and a compute-bound model",
            claim="When decoding and augmenting images is the bottleneck, a loop fed from a "
            "uint8 tensor with batched augmentation trains more images per second than a "
            "DataLoader decoding image files, at the same accuracy; when the model's compute "
            "dominates, the two run at about the same speed.",
            design="Two models on sklearn's digits at 32 px, each trained by both loops with the same "
            "step, seed and recipe: a tiny CNN (the data path is the bottleneck) and a wide one "
            "(its compute dominates). The tutorial loop decodes PNGs with ImageFolder in a "
            "DataLoader with 2 worker processes. The runs alternate loop by loop, so load from "
            "elsewhere on the machine falls on both; the images/s of each pair are compared as "
            "a ratio, seed by seed.",
            notice="Read the ratio of images/s per pair. On a GPU the data-bound gap grows by an "
            "order of magnitude; on a 2-core CPU the decode workers compete with training for "
            "the same cores.",
            base={
                "dataset": "digits",
                "val_fraction": 0.3,
                "image_size": 32,
                "depth": 1,
                "augment": "standard",
                "batch_size": 64,
                "epochs": 3,
            },
            arms=(
                Arm("tutorial-small", "tutorial loop, tiny CNN", {"loop": "tutorial", "width": 4}),
                Arm("engine-small", "engine, tiny CNN", {"loop": "engine", "width": 4}),
                Arm("tutorial-wide", "tutorial loop, wide CNN", {"loop": "tutorial", "width": 32}),
                Arm("engine-wide", "engine, wide CNN", {"loop": "engine", "width": 32}),
            ),
            rule=rules.training_loop,
            sizes={
                "default": Size(3, minutes=1.9),
                "full": Size(5, {**FULL, "epochs": 10}),
                "test": Size(3, {"epochs": 1, "images_per_class": 12, "image_size": 8}),
            },
            charts=("images_per_s",),
        ),
    )
}


# In the order of their questions (Q2, Q3, Q5, Q6, Q7, Q9, Q11).
ORDER = (
    "pooling",
    "residual",
    "transfer",
    "batchnorm",
    "augmentation",
    "imbalance",
    "training-loop",
)
PRESETS = {name: PRESETS[name] for name in ORDER}
