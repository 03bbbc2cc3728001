"""RunConfig: every choice of a training run, with its default, allowed values and help.

One dataclass, read top to bottom like nanoGPT's config: each field has a default and a
one-line help string, and the allowed values or range beside it. `RunConfig.from_dict` is the
only way a config enters the engine from outside (YAML file, `--set`, a web form, the JSON
API): it rejects an unknown key, a wrong type or a value out of range with a `InvalidInput`
whose `.field` names the field and whose message gives the allowed values. `RunConfig.fields()`
describes every field for a form to render.

Checks that need the file system (the folder exists, the ImageNet weights are in the torch
cache, an earlier run's checkpoint) live in `preflight.check_config`, which `run` calls before
any data is loaded.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import re
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any, ClassVar

from app.worker.errors import InvalidInput

DATASETS = ("shapes", "digits", "folder", "cifar10")
MODELS = ("smallcnn", "resnet18", "mobilenet_v3_small", "efficientnet_b0")
DOWNSAMPLES = ("maxpool", "avgpool", "strided", "conv")
STRATEGIES = ("full", "frozen", "last_n")
LOSSES = ("ce", "weighted_ce", "focal")
SAMPLERS = ("shuffle", "balanced")
AUGMENTS = ("none", "standard", "strong")
OPTIMIZERS = ("adamw", "sgd")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
DEVICES = ("auto", "cpu", "cuda")
LOOPS = ("engine", "tutorial")
MAX_SEED = 2**31 - 1
IMAGENET_MODELS = MODELS[1:]  # the torchvision models; smallcnn has no ImageNet weights
SHAPE_CLASSES = 10  # how many procedural shape classes exist (data/shapes.py)
INIT_FORMS = "scratch, imagenet, run:<id> or a path to a .pt checkpoint"
# Weight decay when the config names none, per optimiser: AdamW's decoupled decay (Loshchilov
# and Hutter, 2019; timm and torchvision's recipes use 0.05 for vision models), and SGD's L2
# term added to the gradient, in the usual 1e-4 to 5e-4 of the ResNet recipes.
WEIGHT_DECAY_DEFAULTS = {"adamw": 0.05, "sgd": 5e-4}
RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


@dataclass(frozen=True)
class FieldSpec:
    """What a form needs to render one config field."""

    name: str
    type: str  # "int" | "float" | "bool" | "str" | "str?" (a string or null)
    default: Any
    help: str
    group: str  # data | model | init | loss | augment | optim | runtime
    choices: tuple[str, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None
    # A default that depends on another field: (that field, {its value: this default}).
    # `default` is then the one for that field's own default.
    default_by: tuple[str, dict[str, Any]] | None = None

    def to_dict(self) -> dict[str, Any]:
        """The spec as JSON-able values (choices as a list)."""
        return {**dataclasses.asdict(self), "choices": list(self.choices) if self.choices else None}

    def default_for(self, values: Any) -> Any:
        """The default given the other fields' values (a mapping or a RunConfig)."""
        if self.default_by is None:
            return self.default
        other, defaults = self.default_by
        chosen = values.get(other) if isinstance(values, dict) else getattr(values, other, None)
        return defaults.get(str(chosen), self.default)

    def default_text(self) -> str:
        """The default in words: "0.05", or "per optimizer: adamw 0.05, sgd 0.0005"."""
        if self.default_by is None:
            return "none" if self.default is None else str(self.default)
        other, defaults = self.default_by
        return f"per {other}: " + ", ".join(f"{k} {_num(v)}" for k, v in defaults.items())

    def allowed(self) -> str:
        """The allowed values in words, as error messages give them."""
        if self.choices:
            return "one of " + ", ".join(self.choices)
        kind = {"int": "an integer", "float": "a number", "bool": "true or false"}.get(
            self.type, "a string"
        )
        if self.minimum is not None and self.maximum is not None:
            return f"{kind} from {_num(self.minimum)} to {_num(self.maximum)}"
        return kind


def _num(value: float) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _f(
    default: Any,
    help: str,
    *,
    group: str,
    choices: tuple[str, ...] | None = None,
    low: float | None = None,
    high: float | None = None,
) -> Any:
    return field(
        default=default,
        metadata={"help": help, "group": group, "choices": choices, "low": low, "high": high},
    )


_data = functools.partial(_f, group="data")
_model = functools.partial(_f, group="model")
_init = functools.partial(_f, group="init")
_loss = functools.partial(_f, group="loss")
_aug = functools.partial(_f, group="augment")
_optim = functools.partial(_f, group="optim")
_runtime = functools.partial(_f, group="runtime")


@dataclass(frozen=True)
class RunConfig:
    """Every choice of one training run. Build it with `from_dict`, which validates.

    Frozen, so a run's config cannot change under it; `to_dict()` is what config.yaml and the
    checkpoint hold, `replace(**changes)` a validated copy.
    """

    # --- data ---
    dataset: str = _data("shapes", "data set to train on", choices=DATASETS)
    folder: str | None = _data(None, "dataset folder: its path under DATA_DIR/datasets")
    image_size: int = _data(32, "side of the square images the model sees, px", low=8, high=512)
    images_per_class: int = _data(
        500, "shapes: drawn per class; others: at most (0 = all)", low=0, high=100_000
    )
    num_classes: int = _data(0, "the first N classes (0 = all; shapes has 10)", low=0, high=1000)
    first_class: int = _data(
        0,
        "skip the first K classes: use classes K to K+N−1 (transfer's other classes)",
        low=0,
        high=999,
    )
    imbalance_ratio: float = _data(
        1.0, "long tail: first class's / last class's train images", low=1.0, high=1000.0
    )
    val_fraction: float = _data(
        0.2, "share of each class held out (sets without a val split)", low=0.05, high=0.9
    )
    data_seed: int = _data(
        0, "seed of the shapes generator and the train/val split", low=0, high=MAX_SEED
    )
    # --- model ---
    model: str = _model("smallcnn", "network architecture", choices=MODELS)
    batch_norm: bool = _model(True, "smallcnn: batch norm after every conv")
    residual: bool = _model(
        False, "smallcnn: skip connection around every block (its branch starts at zero)"
    )
    depth: int = _model(1, "smallcnn: blocks (two 3×3 convs each) per stage", low=1, high=16)
    width: int = _model(
        32, "smallcnn: channels of the first stage, doubled per stage", low=4, high=256
    )
    downsample: str = _model(
        "maxpool",
        "smallcnn: how a stage halves the resolution: 2×2 max/avg pool; strided: its first "
        "conv takes stride 2; conv: an extra 3×3 stride-2 conv (All-CNN)",
        choices=DOWNSAMPLES,
    )
    # --- initialisation and strategy (Q5) ---
    init: str = _init("scratch", f"starting weights: {INIT_FORMS}")
    strategy: str = _init(
        "full", "train everything, only the head, or the last N stages too", choices=STRATEGIES
    )
    unfreeze_stages: int = _init(1, "last_n: backbone stages that train", low=1, high=16)
    backbone_lr_mult: float = _init(
        1.0, "backbone lr = lr × this (differential learning rates)", low=0.0, high=10.0
    )
    # --- loss and sampling (Q9) ---
    loss: str = _loss("ce", "cross-entropy, class-weighted CE or focal loss", choices=LOSSES)
    focal_gamma: float = _loss(2.0, "focal: γ in (1 − p_t)^γ", low=0.0, high=10.0)
    focal_alpha: float = _loss(
        0.0, "focal: α_t = 1 − a + a · class weight (0 = no α)", low=0.0, high=1.0
    )
    label_smoothing: float = _loss(
        0.0, "share of each target spread over all classes", low=0.0, high=0.5
    )
    sampler: str = _loss("shuffle", "shuffle, or draw every class equally often", choices=SAMPLERS)
    # --- augmentation (Q7) ---
    augment: str = _aug(
        "standard",
        "preset: none, standard (flip, translate), strong (+ crop, colour)",
        choices=AUGMENTS,
    )
    mixup_alpha: float = _aug(0.0, "MixUp Beta(α, α); 0 = off", low=0.0, high=10.0)
    cutmix_alpha: float = _aug(
        0.0, "CutMix Beta(α, α); 0 = off (with MixUp: one per batch)", low=0.0, high=10.0
    )
    # --- optimisation (Q11) ---
    optimizer: str = _optim("adamw", "AdamW, or SGD with momentum", choices=OPTIMIZERS)
    lr: float = _optim(
        3e-3, "peak learning rate, reached at the end of warm-up", low=1e-7, high=10.0
    )
    momentum: float = _optim(0.9, "SGD momentum (AdamW: β1)", low=0.0, high=0.999)
    nesterov: bool = _optim(True, "SGD: Nesterov momentum")
    weight_decay: float = _optim(
        WEIGHT_DECAY_DEFAULTS["adamw"],
        "AdamW: decoupled (w −= lr·λ·w); SGD: L2, λ·w added to the gradient; conv/linear "
        "weights only, never norms or biases; default per optimiser",
        low=0.0,
        high=1.0,
    )
    warmup_epochs: float = _optim(
        0.5, "linear warm-up, then cosine decay to 0, per step", low=0.0, high=100.0
    )
    epochs: int = _optim(5, "passes over the training set", low=1, high=1000)
    batch_size: int = _optim(64, "images per training step", low=1, high=8192)
    grad_clip: float = _optim(
        0.0, "clip the global gradient norm to this; 0 = off", low=0.0, high=1000.0
    )
    seed: int = _optim(
        0, "seed of the weights, the shuffling and the augmentation", low=0, high=MAX_SEED
    )
    loop: str = _optim(
        "engine",
        "engine: batches cut on the device; tutorial: PNGs via ImageFolder and a DataLoader",
        choices=LOOPS,
    )
    # --- runtime ---
    precision: str = _runtime(
        "auto",
        "auto: bf16 autocast where native (GPU or CPU); else fp16 on CUDA, fp32 on the CPU",
        choices=PRECISIONS,
    )
    device: str = _runtime("auto", "auto: CUDA when present, else the CPU", choices=DEVICES)
    max_misclassified: int = _runtime(32, "misclassified val images kept as PNGs", low=0, high=256)
    eval_train: bool = _runtime(
        False, "score the un-augmented training split each epoch (the train/val gap)"
    )

    _specs: ClassVar[dict[str, FieldSpec] | None] = None

    # ---------------------------------------------------------------- description

    @classmethod
    def fields(cls) -> list[FieldSpec]:
        """Every field in declaration order: type, default, allowed values, help, form group."""
        if cls._specs is None:
            specs = {}
            for f in dataclasses.fields(cls):
                meta = f.metadata
                specs[f.name] = FieldSpec(
                    name=f.name,
                    type=_type_name(f.type),
                    default=f.default,
                    help=meta["help"],
                    group=meta["group"],
                    choices=meta["choices"],
                    minimum=meta["low"],
                    maximum=meta["high"],
                    default_by=DEFAULTS_BY.get(f.name),
                )
            cls._specs = specs
        return list(cls._specs.values())

    @classmethod
    def spec(cls, name: str) -> FieldSpec:
        """One field's description; KeyError for an unknown name."""
        cls.fields()
        assert cls._specs is not None
        return cls._specs[name]

    # ---------------------------------------------------------------- in and out

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> RunConfig:
        """Validate a mapping (YAML, JSON, form) into a config; missing keys take defaults.

        Numbers may come as numeric strings ("1e-3", which YAML 1.1 reads as a string; form
        fields). Raises InvalidInput naming the first bad field: an unknown key (the known ones
        listed), a wrong type, a value outside its choices or range, or a combination that
        cannot run (e.g. dataset "folder" without `folder`). A field whose default depends on
        another (`weight_decay` on `optimizer`) takes that default when missing, null or "";
        an explicit value always wins.
        """
        if not isinstance(values, dict):
            raise InvalidInput("config", f"expected a mapping of field: value, got {_show(values)}")
        specs = {spec.name: spec for spec in cls.fields()}
        for key in values:
            if key not in specs:
                raise InvalidInput(
                    str(key), "unknown field; the fields are " + ", ".join(sorted(specs))
                )
        clean = {key: _coerce(specs[key], value) for key, value in values.items()}
        for name, (other, defaults) in DEFAULTS_BY.items():
            if clean.get(name) is None:  # not given (or null): the default for the other field
                chosen = clean.get(other, specs[other].default)
                clean[name] = defaults.get(chosen, specs[name].default)
        config = cls(**clean)
        config._check_combinations()
        return config

    def to_dict(self) -> dict[str, Any]:
        """Every field as plain JSON/YAML values, in declaration order."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def replace(self, **changes: Any) -> RunConfig:
        """A validated copy with some fields changed."""
        return RunConfig.from_dict({**self.to_dict(), **changes})

    # ---------------------------------------------------------------- derived

    @property
    def init_kind(self) -> str:
        """ "scratch", "imagenet", "run" or "path"."""
        if self.init in ("scratch", "imagenet"):
            return self.init
        return "run" if self.init.startswith("run:") else "path"

    def _check_combinations(self) -> None:
        if self.dataset == "folder" and not self.folder:
            raise InvalidInput(
                "folder", "dataset 'folder' needs the folder's path under DATA_DIR/datasets"
            )
        if self.folder is not None:
            if self.dataset != "folder":
                raise InvalidInput(
                    "folder", f"only used with dataset 'folder', not '{self.dataset}'"
                )
            path = PurePosixPath(self.folder.replace("\\", "/"))
            if path.is_absolute() or ".." in path.parts or re.match(r"^[A-Za-z]:", self.folder):
                raise InvalidInput(
                    "folder",
                    "must be a relative path inside DATA_DIR/datasets (no '..', not absolute)",
                )
        if self.dataset == "shapes":
            if self.num_classes == 1 or self.num_classes > SHAPE_CLASSES:
                raise InvalidInput(
                    "num_classes",
                    f"shapes has classes 2 to {SHAPE_CLASSES} (0 = all {SHAPE_CLASSES})",
                )
            left = SHAPE_CLASSES - self.first_class
            if left < 2 or self.num_classes > left:
                raise InvalidInput(
                    "first_class",
                    f"shapes has {SHAPE_CLASSES} classes: first_class + num_classes must be at "
                    f"most {SHAPE_CLASSES}, leaving at least 2 (got {self.first_class} + "
                    f"{self.num_classes or 'all'})",
                )
            if self.images_per_class < 2:
                raise InvalidInput(
                    "images_per_class",
                    "shapes draws at least 2 images per class (one to train, one to validate)",
                )
        elif self.num_classes == 1:
            raise InvalidInput("num_classes", "a classifier needs at least 2 classes (0 = all)")
        elif self.images_per_class == 1 and self.dataset != "cifar10":
            # The cap is taken before the validation split: one image per class leaves none
            # to train on once one is held out (CIFAR-10 alone comes split already).
            raise InvalidInput(
                "images_per_class",
                f"{self.dataset}: 1 leaves no image to train on once one per class is held out "
                "for validation; at least 2 (0 = all)",
            )
        kind = self.init_kind
        if kind == "imagenet" and self.model not in IMAGENET_MODELS:
            raise InvalidInput(
                "init", f"ImageNet weights exist for {', '.join(IMAGENET_MODELS)}, not {self.model}"
            )
        if kind == "run" and not RUN_ID.fullmatch(self.init[4:]):
            raise InvalidInput(
                "init", f"expected {INIT_FORMS}; '{self.init}' is not a valid run id"
            )
        if kind == "path" and not self.init.endswith((".pt", ".pth")):
            raise InvalidInput("init", f"expected {INIT_FORMS}, got '{self.init}'")
        if self.warmup_epochs > self.epochs:
            raise InvalidInput(
                "warmup_epochs",
                f"must be at most epochs ({self.epochs}), got {self.warmup_epochs:g}",
            )
        if self.loop == "tutorial":
            self._check_tutorial()
        if self.device == "cpu" and self.precision == "fp16":
            raise InvalidInput("precision", "fp16 needs CUDA; on the CPU use fp32 or bf16")

    def _check_tutorial(self) -> None:
        """The tutorial loop has per-image transforms for none and standard only, no MixUp or
        CutMix and a plain shuffling DataLoader."""
        if self.augment == "strong":
            raise InvalidInput("augment", "the tutorial loop does none or standard, not strong")
        for name in ("mixup_alpha", "cutmix_alpha"):
            if getattr(self, name) > 0:
                raise InvalidInput(name, "the tutorial loop has no MixUp or CutMix: use 0")
        if self.sampler != "shuffle":
            raise InvalidInput("sampler", "the tutorial loop shuffles; balanced needs loop engine")


# Fields whose default depends on another field's value (see FieldSpec.default_by).
DEFAULTS_BY: dict[str, tuple[str, dict[str, Any]]] = {
    "weight_decay": ("optimizer", WEIGHT_DECAY_DEFAULTS)
}


def _type_name(annotation: Any) -> str:
    text = str(annotation)
    return {"str | None": "str?"}.get(text, text)


# Longest number written as text that a field accepts: any int64 or float fits in far less.
MAX_NUMBER_TEXT = 40


def _show(value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 128:
        # repr() of a huge int is slow and refused past 4,300 digits: describe it instead.
        return f"a whole number of about {int(value.bit_length() * math.log10(2)) + 1:,} digits"
    text = repr(value[:80] if isinstance(value, str) else value)
    return text if len(text) <= 40 else text[:37] + "..."


def _coerce(spec: FieldSpec, value: Any) -> Any:
    """The value as the field's type, or InvalidInput naming the field and what it allows."""
    bad = InvalidInput(spec.name, f"expected {spec.allowed()}, got {_show(value)}")
    if spec.default_by is not None and (value is None or value == ""):
        return None  # from_dict fills in the default for the field it depends on
    if spec.type == "bool":
        if not isinstance(value, bool):
            raise bad
        return value
    if spec.type == "str?":
        if value is None or value == "":
            return None
        if not isinstance(value, str):
            raise bad
        return value
    if spec.type == "str":
        if not isinstance(value, str):
            raise bad
        if spec.choices is not None and value not in spec.choices:
            raise bad
        return value
    if isinstance(value, str):  # "1e-3": YAML 1.1 reads it as a string; forms send strings
        if len(value) > MAX_NUMBER_TEXT:
            raise bad
        try:
            value = float(value) if any(c in value for c in ".eEn") else int(value)
        except ValueError:
            raise bad from None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise bad
    if isinstance(value, float) and not math.isfinite(value):
        raise bad
    if spec.type == "int":
        if isinstance(value, float):
            if not value.is_integer():
                raise bad
            value = int(value)
    else:
        try:
            value = float(value)
        except OverflowError:  # an int past 1.8e308
            raise bad from None
    if (spec.minimum is not None and value < spec.minimum) or (
        spec.maximum is not None and value > spec.maximum
    ):
        raise bad
    return value
