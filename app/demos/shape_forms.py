"""The shape calculator's three forms (one layer, a typed stack, a torchvision model): their
fields, defaults and labels, and what a submitted form asks the worker for.

Each form is read into the worker's own inputs here (a `LayerSpec`, or a summary's
arguments), with an InvalidInput naming the field when a value is not of its kind; the ranges
are the worker's to check (`app.worker.layer_spec`), for the forms and the JSON API alike.
"""

from __future__ import annotations

from app.demos.forms import FormValues
from app.worker.layer_spec import LAYER_KINDS, UNUSED_FIELDS, LayerSpec
from app.worker.stack import EXAMPLE as STACK_EXAMPLE
from app.worker.summary import TRAINABLE_CHOICES, Trainable

# --- one layer ------------------------------------------------------------------------------

KIND_TITLES = {
    "conv2d": "Conv2d",
    "conv_transpose2d": "ConvTranspose2d",
    "max_pool2d": "MaxPool2d",
    "avg_pool2d": "AvgPool2d",
    "linear": "Linear (on the flattened input)",
}
LAYER_DEFAULTS = {
    "kind": "conv2d",
    "in_channels": "3",
    "height": "224",
    "width": "224",
    "out_channels": "64",
    "kernel_size": "7",
    "stride": "2",
    "padding": "3",
    "dilation": "1",
    "groups": "1",
    "bias": "false",
    "ceil_mode": "false",
    "output_padding": "0",
}


# The labels the one-layer form shows; an error names its field with these words.
LAYER_LABELS = {
    "kind": "Layer",
    "in_channels": "Channels",
    "height": "Height",
    "width": "Width",
    "out_channels": "Out channels / features",
    "kernel_size": "Kernel",
    "stride": "Stride",
    "padding": "Padding",
    "dilation": "Dilation",
    "groups": "Groups",
    "output_padding": "Output padding",
    "bias": "Bias",
    "ceil_mode": "ceil_mode",
}
# For each setting, the kinds that use it: the form shows only those fields for a kind.
FIELD_KINDS: dict[str, list[str]] = {
    name: [kind for kind in LAYER_KINDS if name not in UNUSED_FIELDS[kind]]
    for name in ("out_channels", "kernel_size", "stride", "padding", "dilation", "groups",
                 "output_padding", "bias", "ceil_mode")
}  # fmt: skip


def layer_spec_from(form: FormValues) -> LayerSpec:
    """The layer the form describes. Only the settings its kind uses are read: the form hides
    (and does not send) the others."""
    kind = form.choice("kind", LAYER_KINDS)

    def stride(name: str) -> int | tuple[int, int] | None:
        return form.pair(name) if form.text(name).strip() else None

    readers = {
        "out_channels": form.integer,
        "kernel_size": form.pair,
        "stride": stride,
        "padding": form.padding,
        "dilation": form.pair,
        "groups": form.integer,
        "bias": form.flag,
        "ceil_mode": form.flag,
        "output_padding": form.pair,
    }
    settings = {name: read(name) for name, read in readers.items() if kind in FIELD_KINDS[name]}
    return LayerSpec(
        kind=kind,  # type: ignore[arg-type]
        in_channels=form.integer("in_channels"),
        height=form.integer("height"),
        width=form.integer("width"),
        **settings,  # type: ignore[arg-type]
    )


# --- a typed stack and a torchvision model --------------------------------------------------

STACK_DEFAULTS = {"layers": STACK_EXAMPLE, "in_channels": "3", "height": "224", "width": "224"}
MODEL_DEFAULTS = {"arch": "resnet50", "height": "224", "width": "224", "trainable": "all"}
STACK_LABELS = {"layers": "Layers", "in_channels": "Channels", "height": "Height", "width": "Width"}
MODEL_LABELS = {
    "arch": "Architecture",
    "height": "Height",
    "width": "Width",
    "trainable": "Trainable",
}


def stack_arguments(form: FormValues) -> tuple[str, int, int, int]:
    """`summarize_stack`'s arguments from the stack form: (layers text, channels, height,
    width). Raises InvalidInput naming the field."""
    channels, height, width = (form.integer(n) for n in ("in_channels", "height", "width"))
    return form.text("layers"), channels, height, width


def model_arguments(form: FormValues) -> tuple[str, int, int, Trainable]:
    """`summarize_architecture`'s arguments from the model form: (architecture, height,
    width, trainable). Raises InvalidInput naming the field."""
    arch = form.text("arch").strip()
    height, width = form.integer("height"), form.integer("width")
    trainable = form.choice("trainable", TRAINABLE_CHOICES)
    return arch, height, width, trainable  # type: ignore[return-value]
