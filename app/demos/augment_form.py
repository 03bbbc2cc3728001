"""The augmentation gallery's form: its fields, defaults (the worker's `AugmentSpec`
defaults) and labels, and the `AugmentSpec` a submitted form asks for."""

from __future__ import annotations

from app.demos.forms import FormValues
from app.worker.augment import MIX_KINDS, AugmentSpec

_DEFAULT = AugmentSpec()
AUGMENT_DEFAULTS = {
    "photo": "astronaut",
    "seed": str(_DEFAULT.seed),
    "views": str(_DEFAULT.views),
    "size": str(_DEFAULT.size),
    "crop": "true",
    "scale_min": f"{_DEFAULT.scale_min:g}",
    "scale_max": f"{_DEFAULT.scale_max:g}",
    "flip": f"{_DEFAULT.flip:g}",
    "brightness": f"{_DEFAULT.brightness:g}",
    "contrast": f"{_DEFAULT.contrast:g}",
    "saturation": f"{_DEFAULT.saturation:g}",
    "hue": f"{_DEFAULT.hue:g}",
    "randaugment": "false",
    "num_ops": str(_DEFAULT.num_ops),
    "magnitude": str(_DEFAULT.magnitude),
    "mix": "none",
    "alpha": f"{_DEFAULT.alpha:g}",
}
AUGMENT_LABELS = {
    "photo": "Photo",
    "seed": "Seed",
    "views": "Views",
    "size": "Size (px)",
    "crop": "RandomResizedCrop (off: resize and centre crop)",
    "scale_min": "Scale from",
    "scale_max": "Scale to",
    "flip": "Flip probability",
    "brightness": "Brightness",
    "contrast": "Contrast",
    "saturation": "Saturation",
    "hue": "Hue",
    "randaugment": "RandAugment",
    "num_ops": "N (operations)",
    "magnitude": "M (magnitude, 0–30)",
    "mix": "Batch mixing",
    "alpha": "α (λ ~ Beta(α, α))",
    "image": "Your own photo",
}
MIX_TITLES = {"none": "none", "mixup": "MixUp (blend)", "cutmix": "CutMix (paste a box)"}


def augment_spec_from(form: FormValues) -> AugmentSpec:
    """The augmentation settings the form asks for, checked by the worker's
    `AugmentSpec.validate`. Raises InvalidInput naming the field."""
    return AugmentSpec(
        seed=form.integer("seed"),
        views=form.integer("views"),
        size=form.integer("size"),
        crop=form.flag("crop"),
        scale_min=form.number("scale_min"),
        scale_max=form.number("scale_max"),
        flip=form.number("flip"),
        brightness=form.number("brightness"),
        contrast=form.number("contrast"),
        saturation=form.number("saturation"),
        hue=form.number("hue"),
        randaugment=form.flag("randaugment"),
        num_ops=form.integer("num_ops"),
        magnitude=form.integer("magnitude"),
        mix=form.choice("mix", MIX_KINDS),  # type: ignore[arg-type]
        alpha=form.number("alpha"),
    ).validate()
