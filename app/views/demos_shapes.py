"""The shape calculator's pages: one layer, a typed stack, or a torchvision model (HTML)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from app.demos.forms import MAX_TEXT, FormValues
from app.demos.present import code_html, placement
from app.demos.runner import run_demo
from app.messages import on_screen
from app.web import render
from app.worker.errors import InvalidInput
from app.worker.formulas import formulas
from app.worker.layer_spec import LAYER_KINDS, UNUSED_FIELDS, LayerSpec
from app.worker.layers import LayerResult, compute_layer
from app.worker.stack import EXAMPLE as STACK_EXAMPLE
from app.worker.stack import summarize_stack
from app.worker.summary import ARCHITECTURES, ModelSummary, summarize_architecture
from app.worker.tradeoffs import pointwise_vs_fc, separable_comparison

router = APIRouter(tags=["demos"])

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


def layer_context(result: LayerResult) -> dict[str, Any]:
    context: dict[str, Any] = {
        "result": result,
        "formulas": formulas(result),
        "code": code_html(result.code),
    }
    if result.kind == "conv2d":
        separable = separable_comparison(result)
        pointwise = pointwise_vs_fc(result)
        context |= {
            "separable": separable,
            "separable_code": code_html(separable.code),
            "pointwise": pointwise,
            "pointwise_code": code_html(pointwise.code),
        }
    return context


@router.get("/demos/shapes", response_class=HTMLResponse, include_in_schema=False)
def shapes_page(request: Request) -> HTMLResponse:
    form = FormValues(request.query_params, LAYER_DEFAULTS)
    context: dict[str, Any] = {
        "form": form.values,
        "kinds": KIND_TITLES,
        "labels": LAYER_LABELS,
        "field_kinds": FIELD_KINDS,
        "error": None,
        **placement(request),
    }
    status = 200
    try:
        context |= layer_context(compute_layer(layer_spec_from(form)))
    except InvalidInput as error:
        context["error"], status = on_screen(error, LAYER_LABELS), 422
    return render(
        request,
        "pages/demos_shapes.html",
        context,
        fragment="partials/_demo_layer_result.html",
        status_code=status,
    )


STACK_DEFAULTS = {"layers": STACK_EXAMPLE, "in_channels": "3", "height": "224", "width": "224"}
MODEL_DEFAULTS = {"arch": "resnet50", "height": "224", "width": "224", "trainable": "all"}
STACK_LABELS = {"layers": "Layers", "in_channels": "Channels", "height": "Height", "width": "Width"}
MODEL_LABELS = {
    "arch": "Architecture",
    "height": "Height",
    "width": "Width",
    "trainable": "Trainable",
}


def _summary_context(summary: ModelSummary) -> dict[str, Any]:
    return {"summary": summary, "code": code_html(summary.code)}


@router.get("/demos/shapes/stack", response_class=HTMLResponse, include_in_schema=False)
async def stack_page(request: Request) -> HTMLResponse:
    form = FormValues(request.query_params, STACK_DEFAULTS)
    context: dict[str, Any] = {
        "form": form.values,
        "labels": STACK_LABELS,
        "max_text": f"{MAX_TEXT:,}",
        "error": None,
        "summary": None,
        **placement(request),
    }
    status = 200
    try:
        channels, height, width = (form.integer(n) for n in ("in_channels", "height", "width"))
        summary = await run_demo(
            request, summarize_stack, form.text("layers"), channels, height, width
        )
        context |= _summary_context(summary)
    except InvalidInput as error:
        context["error"], status = on_screen(error, STACK_LABELS), 422
    return render(
        request,
        "pages/demos_stack.html",
        context,
        fragment="partials/_demo_summary.html",
        status_code=status,
    )


@router.get("/demos/shapes/model", response_class=HTMLResponse, include_in_schema=False)
async def model_page(request: Request) -> HTMLResponse:
    form = FormValues(request.query_params, MODEL_DEFAULTS)
    context: dict[str, Any] = {
        "form": form.values,
        "labels": MODEL_LABELS,
        "error": None,
        "summary": None,
        "architectures": ARCHITECTURES,
        **placement(request),
    }
    status = 200
    try:
        arch = form.text("arch").strip()
        height, width = form.integer("height"), form.integer("width")
        trainable = form.choice("trainable", ("all", "head"))
        summary = await run_demo(request, summarize_architecture, arch, height, width, trainable)  # type: ignore[arg-type]
        context |= _summary_context(summary)
    except InvalidInput as error:
        context["error"], status = on_screen(error, MODEL_LABELS), 422
    return render(
        request,
        "pages/demos_model.html",
        context,
        fragment="partials/_demo_summary.html",
        status_code=status,
    )
