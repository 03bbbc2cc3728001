"""Demo pages and their JSON API (shape calculator, pooling, augmentation, architectures)."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from app.deps import BankDep
from app.views import demos_architectures, demos_augment, demos_pooling, demos_shapes
from app.web import render


@dataclass(frozen=True)
class DemoEntry:
    name: str  # as question front matter names it
    title: str
    path: str
    summary: str


CATALOGUE = (
    DemoEntry(
        "shape-calculator", "Shape calculator", "/demos/shapes",
        "One layer (conv, transposed conv, pooling, linear): output shape, parameters, MACs, "
        "receptive field, depthwise-separable and 1×1-vs-FC comparisons.",
    ),
    DemoEntry(
        "shape-calculator", "Layer stack", "/demos/shapes/stack",
        "Type a stack of layers, one per line: a per-layer table and the nn.Sequential code.",
    ),
    DemoEntry(
        "shape-calculator", "Model summary", "/demos/shapes/model",
        "Any torchvision classification model at any input size, layer by layer, "
        "on the meta device (no weights, no compute).",
    ),
    DemoEntry(
        "pooling-visualizer", "Pooling visualizer", "/demos/pooling",
        "Max vs average pooling vs a strided conv on a photo and a grid of numbers, "
        "with where the gradient goes.",
    ),
    DemoEntry(
        "augmentation-gallery", "Augmentation gallery", "/demos/augmentation",
        "Flip, RandomResizedCrop, ColorJitter, RandAugment, MixUp and CutMix on a photo, seeded.",
    ),
    DemoEntry(
        "architecture-facts", "Architecture facts", "/demos/architectures",
        "AlexNet to ConvNeXt: parameters and top-1 from torchvision beside the papers' figures.",
    ),
)  # fmt: skip

router = APIRouter(tags=["demos"])


@router.get("/demos/", response_class=HTMLResponse, include_in_schema=False)
def demos_index(request: Request, bank: BankDep) -> HTMLResponse:
    questions = {
        entry.name: [question for question in bank if entry.name in question.meta.demos]
        for entry in CATALOGUE
    }
    return render(request, "pages/demos.html", {"demos": CATALOGUE, "questions": questions})


for module in (demos_shapes, demos_pooling, demos_augment, demos_architectures):
    router.include_router(module.router)
