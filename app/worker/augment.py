"""The augmentation gallery: a torchvision `transforms.v2` pipeline applied to a photo, seeded.

Per image: RandomResizedCrop (or a plain resize and centre crop), horizontal flip, ColorJitter
and RandAugment(N, M). On the batch: MixUp or CutMix, which blend each image with its
neighbour in the batch and mix their labels in the same proportions.

One seed draws every random number, in the same order as the code shown beside the gallery,
so the same settings give the same views here, for whoever opens the shared URL, and in the
snippet. transforms.v2 draws from torch's global generator, which every thread shares; here a
thread-local TorchFunctionMode hands each random draw a private generator seeded with the
seed instead, so other threads can neither shift our draws nor see theirs shifted. A fresh
generator seeded with `s` yields exactly what `torch.manual_seed(s)` gives the global one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, get_args

import torch
from PIL import Image
from torch.overrides import TorchFunctionMode
from torchvision.transforms import v2

from app.worker.errors import InvalidInput
from app.worker.images import data_uri, to_rgb

MixKind = Literal["none", "mixup", "cutmix"]
MIX_KINDS: tuple[str, ...] = get_args(MixKind)
MAX_VIEWS = 12
MAX_SEED = 2**31 - 1

# Every torch function transforms.v2 (and the Beta distribution behind MixUp/CutMix) draws
# random numbers with; each takes a `generator=` argument.
_RANDOM_FUNCTIONS = {
    torch.rand,
    torch.randn,
    torch.randint,
    torch.randperm,
    torch.normal,
    torch.bernoulli,
    torch.multinomial,
    torch.poisson,
    torch._sample_dirichlet,
    torch._standard_gamma,
    torch.Tensor.uniform_,
    torch.Tensor.normal_,
    torch.Tensor.random_,
    torch.Tensor.bernoulli_,
    torch.Tensor.exponential_,
    torch.Tensor.geometric_,
    torch.Tensor.log_normal_,
    torch.Tensor.cauchy_,
}


class SeededDraws(TorchFunctionMode):
    """Within `with SeededDraws(seed):` on this thread, random draws use a private generator."""

    def __init__(self, seed: int) -> None:
        super().__init__()
        self.generator = torch.Generator().manual_seed(seed)

    def __torch_function__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        kwargs = kwargs or {}
        if func in _RANDOM_FUNCTIONS and kwargs.get("generator") is None:
            kwargs = {**kwargs, "generator": self.generator}
        return func(*args, **kwargs)


@dataclass(frozen=True)
class AugmentSpec:
    seed: int = 0  # draws every random number below
    views: int = 8  # images in the gallery (the batch, when mixing)
    size: int = 224  # side of each view, in pixels
    crop: bool = True  # RandomResizedCrop; off: resize and centre crop
    scale_min: float = 0.08  # RandomResizedCrop: the crop's share of the photo's area …
    scale_max: float = 1.0  # … drawn between these two
    flip: float = 0.5  # probability of a horizontal flip
    brightness: float = 0.4  # ColorJitter: each factor drawn from [1 − b, 1 + b]
    contrast: float = 0.4
    saturation: float = 0.4
    hue: float = 0.1  # hue shift drawn from [−h, h], h ≤ 0.5
    randaugment: bool = False
    num_ops: int = 2  # RandAugment N: operations per image
    magnitude: int = 9  # RandAugment M: their strength, 0–30
    mix: MixKind = "none"
    alpha: float = 1.0  # MixUp/CutMix: λ ~ Beta(α, α)

    def validate(self) -> AugmentSpec:
        _whole("seed", self.seed, 0, MAX_SEED)
        _whole("views", self.views, 1, MAX_VIEWS)
        _whole("size", self.size, 32, 512)
        _number("scale_min", self.scale_min, 0.01, 1.0)
        _number("scale_max", self.scale_max, 0.01, 1.0)
        if self.scale_min > self.scale_max:
            raise InvalidInput(
                "scale_min", f"must not exceed scale_max ({self.scale_max}); got {self.scale_min}"
            )
        _number("flip", self.flip, 0.0, 1.0)
        for name in ("brightness", "contrast", "saturation"):
            _number(name, getattr(self, name), 0.0, 1.0)
        _number("hue", self.hue, 0.0, 0.5)
        _whole("num_ops", self.num_ops, 0, 10)
        _whole("magnitude", self.magnitude, 0, 30)
        if self.mix not in MIX_KINDS:
            raise InvalidInput("mix", f"must be one of {', '.join(MIX_KINDS)} (got {self.mix!r})")
        _number("alpha", self.alpha, 0.05, 10.0)
        return self

    @property
    def jitter(self) -> bool:
        return any((self.brightness, self.contrast, self.saturation, self.hue))


def _whole(name: str, value: object, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(name, f"must be a whole number (got {value!r})")
    if not low <= value <= high:
        raise InvalidInput(name, f"must be between {low} and {high:,} (got {value})")


def _number(name: str, value: object, low: float, high: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        raise InvalidInput(name, f"must be a number (got {value!r})")
    if not low <= value <= high:
        raise InvalidInput(name, f"must be between {low:g} and {high:g} (got {value:g})")


def _num(value: float) -> str:
    """A float as Python source: `1.0`, not `1` (an int alpha would make Beta's tensors long)."""
    return repr(float(value))


def pipeline_steps(spec: AugmentSpec) -> list[str]:
    """The per-image transforms as Python source, in order."""
    steps = []
    if spec.crop:
        steps.append(
            f"v2.RandomResizedCrop({spec.size}, scale=({_num(spec.scale_min)}, {_num(spec.scale_max)}), antialias=True)"
        )
    else:
        steps += [f"v2.Resize({spec.size}, antialias=True)", f"v2.CenterCrop({spec.size})"]
    if spec.flip:
        steps.append(f"v2.RandomHorizontalFlip(p={_num(spec.flip)})")
    if spec.jitter:
        steps.append(
            f"v2.ColorJitter(brightness={_num(spec.brightness)}, contrast={_num(spec.contrast)}, "
            f"saturation={_num(spec.saturation)}, hue={_num(spec.hue)})"
        )
    if spec.randaugment:
        steps.append(f"v2.RandAugment(num_ops={spec.num_ops}, magnitude={spec.magnitude})")
    return steps


def build_pipeline(spec: AugmentSpec) -> v2.Compose:
    """The transforms `pipeline_steps` spells out, built from the same values."""
    steps: list[v2.Transform] = []
    if spec.crop:
        steps.append(
            v2.RandomResizedCrop(spec.size, scale=(spec.scale_min, spec.scale_max), antialias=True)
        )
    else:
        steps += [v2.Resize(spec.size, antialias=True), v2.CenterCrop(spec.size)]
    if spec.flip:
        steps.append(v2.RandomHorizontalFlip(p=spec.flip))
    if spec.jitter:
        steps.append(
            v2.ColorJitter(
                brightness=spec.brightness,
                contrast=spec.contrast,
                saturation=spec.saturation,
                hue=spec.hue,
            )
        )
    if spec.randaugment:
        steps.append(v2.RandAugment(num_ops=spec.num_ops, magnitude=spec.magnitude))
    return v2.Compose(steps)


def _mixer(spec: AugmentSpec, classes: int) -> v2.Transform | None:
    if spec.mix == "mixup":
        return v2.MixUp(alpha=float(spec.alpha), num_classes=classes)
    if spec.mix == "cutmix":
        return v2.CutMix(alpha=float(spec.alpha), num_classes=classes)
    return None


@dataclass(frozen=True)
class AugmentView:
    uri: str
    source: str  # the photo this view started from
    labels: tuple[tuple[str, float], ...]  # the (mixed) label: (class, weight), largest first


@dataclass(frozen=True)
class Gallery:
    spec: AugmentSpec
    views: tuple[AugmentView, ...]
    steps: tuple[str, ...]
    code: str

    @property
    def mixed(self) -> bool:
        return self.spec.mix != "none"


def batch_sources(names: Sequence[str], spec: AugmentSpec) -> list[int]:
    """Which photo each view starts from: all the first one, or when mixing, each in turn."""
    if spec.mix == "none" or len(names) == 1:
        return [0] * spec.views
    return [index % len(names) for index in range(spec.views)]


def _code(spec: AugmentSpec, names: Sequence[str], sources: list[int]) -> str:
    steps = "".join(f"    {step},\n" for step in pipeline_steps(spec))
    photo_list = ", ".join(f'"{names[i]}"' for i in sorted(set(sources)))
    lines = [
        "import torch",
        "from PIL import Image",
        "from torchvision.transforms import v2",
        "",
        f"transform = v2.Compose([\n{steps}])",
        "",
        f"# photos: {photo_list}, each an RGB PIL image with",
        "# photo.thumbnail((512, 512), Image.Resampling.LANCZOS) applied, as in the gallery",
        f"batch = [photos[name] for name in {[names[i] for i in sources]!r}]",
        f"torch.manual_seed({spec.seed})",
        "views = [transform(v2.functional.pil_to_tensor(photo)) for photo in batch]",
    ]
    if spec.mix != "none":
        mixer = "MixUp" if spec.mix == "mixup" else "CutMix"
        lines += [
            "images = v2.ToDtype(torch.float32, scale=True)(torch.stack(views))",
            f"labels = torch.tensor({sources!r})  # class = index of the photo",
            f"mix = v2.{mixer}(alpha={_num(spec.alpha)}, num_classes={len(names)})",
            "images, soft_labels = mix(images, labels)  # each image blended with the one before it",
        ]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class AugmentedBatch:
    """The raw result: uint8 views, and when mixing the float batch and its soft labels."""

    names: tuple[str, ...]
    sources: tuple[int, ...]  # photo index of each view (its class when mixing)
    views: tuple[torch.Tensor, ...]
    mixed: torch.Tensor | None  # N×3×size×size floats in [0, 1]
    soft_labels: torch.Tensor | None  # N×classes, each row sums to 1


def augment_batch(photos: Sequence[tuple[str, Image.Image]], spec: AugmentSpec) -> AugmentedBatch:
    """Draw the views (and the mix) exactly as the code `augment` shows does."""
    spec = spec.validate()
    if not photos:
        raise InvalidInput("photo", "no photo to augment")
    names = tuple(name for name, _ in photos)
    tensors = [v2.functional.pil_to_tensor(to_rgb(image)) for _, image in photos]
    sources = batch_sources(names, spec)
    transform = build_pipeline(spec)
    mixer = _mixer(spec, len(names))
    mixed = soft = None
    with SeededDraws(spec.seed):
        views = [transform(tensors[index]) for index in sources]
        if mixer is not None:
            batch = v2.ToDtype(torch.float32, scale=True)(torch.stack(views))
            mixed, soft = mixer(batch, torch.tensor(sources))
    return AugmentedBatch(names, tuple(sources), tuple(views), mixed, soft)


def augment(photos: Sequence[tuple[str, Image.Image]], spec: AugmentSpec) -> Gallery:
    """Apply the pipeline `spec.views` times. `photos` are (name, RGB image), the chosen one
    first; when mixing, the batch takes each photo in turn so neighbours differ."""
    spec = spec.validate()
    batch = augment_batch(photos, spec)
    names = batch.names
    if batch.mixed is not None and batch.soft_labels is not None:
        images = [v2.functional.to_pil_image(image.clamp(0, 1)) for image in batch.mixed]
        labels = [
            tuple(
                sorted(
                    ((names[k], round(float(w), 4)) for k, w in enumerate(row) if float(w) > 0),
                    key=lambda item: -item[1],
                )
            )
            for row in batch.soft_labels
        ]
    else:
        images = [v2.functional.to_pil_image(view) for view in batch.views]
        labels = [((names[index], 1.0),) for index in batch.sources]
    gallery = tuple(
        AugmentView(data_uri(image, format="JPEG"), names[index], label)
        for image, index, label in zip(images, batch.sources, labels, strict=True)
    )
    code = _code(spec, names, list(batch.sources))
    return Gallery(spec, gallery, tuple(pipeline_steps(spec)), code)
