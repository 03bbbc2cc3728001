"""Demo pages and their JSON API (shape calculator, pooling, augmentation, architectures)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from app.demos import augment_form, pooling_form, shape_forms
from app.deps import BankDep
from app.views import api_shapes, demos_architectures, demos_augment, demos_pooling, demos_shapes
from app.web import render, templates
from app.worker.images import SAMPLE_PHOTOS


@dataclass(frozen=True)
class DemoEntry:
    name: str  # as question front matter names it
    title: str
    path: str
    summary: str


CATALOGUE = (
    DemoEntry(
        "shape-calculator",
        "Shape calculator",
        "/demos/shapes",
        "One layer (conv, transposed conv, pooling, linear): output shape, parameters, MACs, "
        "receptive field, depthwise-separable and 1×1-vs-FC comparisons.",
    ),
    DemoEntry(
        "shape-calculator",
        "Layer stack",
        "/demos/shapes/stack",
        "Type a stack of layers, one per line: a per-layer table and the nn.Sequential code.",
    ),
    DemoEntry(
        "shape-calculator",
        "Model summary",
        "/demos/shapes/model",
        "Any torchvision classification model at any input size, layer by layer, "
        "on the meta device (no weights, no compute).",
    ),
    DemoEntry(
        "pooling-visualizer",
        "Pooling visualizer",
        "/demos/pooling",
        "Max vs average pooling vs a strided conv on a photo and a grid of numbers, "
        "with where the gradient goes.",
    ),
    DemoEntry(
        "augmentation-gallery",
        "Augmentation gallery",
        "/demos/augmentation",
        "Flip, RandomResizedCrop, ColorJitter, RandAugment, MixUp and CutMix on a photo, seeded.",
    ),
    DemoEntry(
        "architecture-facts",
        "Architecture facts",
        "/demos/architectures",
        "AlexNet to ConvNeXt: parameters and top-1 from torchvision beside the papers' figures.",
    ),
)


# The shape calculator inside a question starts from the layer that question is about.
LAYER_PRESETS: dict[int, dict[str, str]] = {
    # Q8, 1×1 conv vs FC: a bottleneck's 1×1 reduction on a 56×56 map
    8: {
        "in_channels": "256",
        "height": "56",
        "width": "56",
        "out_channels": "64",
        "kernel_size": "1",
        "stride": "1",
        "padding": "0",
        "bias": "false",
    },
    # Q10, depthwise separable: a 3×3 conv that MobileNet would split in two
    10: {
        "in_channels": "128",
        "height": "56",
        "width": "56",
        "out_channels": "128",
        "kernel_size": "3",
        "stride": "1",
        "padding": "1",
        "bias": "false",
    },
}


@dataclass(frozen=True)
class InlineDemos:
    """What the demos inside a question page need to draw their forms.

    That page's context is only `question`, so this is a template global; the values are the
    ones the demo pages themselves use.
    """

    layer_kinds: dict[str, str]
    layer_labels: dict[str, str]
    field_kinds: dict[str, list[str]]
    pooling_labels: dict[str, str]
    augment_labels: dict[str, str]
    photos: dict[str, Any]
    conv_weights: dict[str, str]
    mix_titles: dict[str, str]
    pooling_form: dict[str, str]
    augment_form: dict[str, str]

    def layer_form(self, question_number: int) -> dict[str, str]:
        return {**shape_forms.LAYER_DEFAULTS, **LAYER_PRESETS.get(question_number, {})}


templates.env.globals["inline_demos"] = InlineDemos(
    layer_kinds=shape_forms.KIND_TITLES,
    layer_labels=shape_forms.LAYER_LABELS,
    field_kinds=shape_forms.FIELD_KINDS,
    pooling_labels=pooling_form.POOLING_LABELS,
    augment_labels=augment_form.AUGMENT_LABELS,
    photos=SAMPLE_PHOTOS,
    conv_weights=pooling_form.WEIGHT_TITLES,
    mix_titles=augment_form.MIX_TITLES,
    pooling_form=pooling_form.POOLING_DEFAULTS,
    augment_form=augment_form.AUGMENT_DEFAULTS,
)

router = APIRouter(tags=["demos"])


@router.get("/demos/", response_class=HTMLResponse, include_in_schema=False)
def demos_index(request: Request, bank: BankDep) -> HTMLResponse:
    questions = {
        entry.name: [question for question in bank if entry.name in question.meta.demos]
        for entry in CATALOGUE
    }
    return render(request, "pages/demos.html", {"demos": CATALOGUE, "questions": questions})


for module in (demos_shapes, api_shapes, demos_pooling, demos_augment, demos_architectures):
    router.include_router(module.router)
