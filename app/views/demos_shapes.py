"""The shape calculator: one layer, a typed stack, or a torchvision model, as pages and JSON."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ConfigDict, StrictBool, StrictInt, StrictStr

from app.demos.api import ERRORS, api_error
from app.demos.forms import MAX_TEXT, FormValues
from app.demos.messages import on_screen
from app.demos.present import code_html, placement
from app.demos.runner import run_demo
from app.web import render
from app.worker.errors import InvalidInput
from app.worker.formulas import formulas
from app.worker.layers import (
    LAYER_KINDS,
    UNUSED_FIELDS,
    LayerResult,
    LayerSpec,
    compute_layer,
    refuse_unused,
)
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


PairField = StrictInt | list[StrictInt]


class ConvRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    in_channels: StrictInt
    height: StrictInt
    width: StrictInt
    out_channels: StrictInt
    kernel_size: PairField
    stride: PairField = 1
    padding: PairField | Literal["same", "valid"] = 0
    dilation: PairField = 1
    groups: StrictInt = 1
    bias: StrictBool = True


class LayerRequest(BaseModel):
    """One layer. A setting its kind has no use for (e.g. `kernel_size` for a Linear layer,
    `groups` for pooling) is refused with a 422 when given, not ignored."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["conv2d", "conv_transpose2d", "max_pool2d", "avg_pool2d", "linear"]
    in_channels: StrictInt
    height: StrictInt
    width: StrictInt
    out_channels: StrictInt = 1
    kernel_size: PairField = 1
    stride: PairField | None = None
    padding: PairField | Literal["same", "valid"] = 0
    dilation: PairField = 1
    groups: StrictInt = 1
    bias: StrictBool = True
    ceil_mode: StrictBool = False
    output_padding: PairField = 0


class LayerResponse(BaseModel):
    kind: str
    input_shape: list[int]
    output_shape: list[int]
    params: int
    macs: int
    receptive_field: list[int]
    whole_input: bool
    weight_shape: list[int] | None
    padding: list[list[int]]
    module: str
    code: str

    @classmethod
    def of(cls, result: LayerResult) -> LayerResponse:
        return cls(
            kind=result.kind,
            input_shape=list(result.input_shape),
            output_shape=list(result.output_shape),
            params=result.params,
            macs=result.macs,
            receptive_field=list(result.receptive_field),
            whole_input=result.whole_input,
            weight_shape=list(result.weight_shape) if result.weight_shape else None,
            padding=[list(pads) for pads in result.layer.padding],
            module=result.module,
            code=result.code,
        )


class ConvResponse(LayerResponse):
    out_channels: int
    out_height: int
    out_width: int

    @classmethod
    def of(cls, result: LayerResult) -> ConvResponse:
        base = LayerResponse.of(result).model_dump()
        channels, height, width = result.output_shape
        return cls(**base, out_channels=channels, out_height=height, out_width=width)


# Closed-form arithmetic in microseconds: computed inline, no worker thread needed.
@router.post("/api/shapes/conv", response_model=ConvResponse, responses=ERRORS)
async def conv_shape(body: ConvRequest) -> ConvResponse:
    """Output shape, parameters and MACs of one `nn.Conv2d`, exactly as PyTorch gives them.

    `macs = out_height · out_width · out_channels · (in_channels / groups) · k_h · k_w`.
    """
    try:
        result = compute_layer(LayerSpec(kind="conv2d", **body.model_dump()))
    except InvalidInput as error:
        raise api_error(error) from None
    return ConvResponse.of(result)


@router.post("/api/shapes/layer", response_model=LayerResponse, responses=ERRORS)
async def layer_shape(body: LayerRequest) -> LayerResponse:
    """Any one layer: Conv2d, ConvTranspose2d, MaxPool2d, AvgPool2d or Linear (on C·H·W)."""
    given = body.model_dump(exclude_unset=True)
    if body.kind in ("conv2d", "conv_transpose2d", "linear"):
        given.setdefault("out_channels", body.out_channels)  # this API's default, 1
    try:
        refuse_unused(body.kind, sorted(body.model_fields_set))
        return LayerResponse.of(compute_layer(LayerSpec(**given)))
    except InvalidInput as error:
        raise api_error(error) from None


# --- a stack, a torchvision model -------------------------------------------------------------


class SummaryRowBody(BaseModel):
    name: str
    layer: str
    depth: int
    output_shape: list[int] | None
    params: int
    params_percent: float
    trainable: int
    macs: int
    receptive_field: list[int] | None
    whole_input: bool


class SummaryResponse(BaseModel):
    label: str
    input_shape: list[int]
    output_shape: list[int]
    layers: list[SummaryRowBody]
    total_params: int
    trainable_params: int
    total_macs: int
    code: str

    @classmethod
    def of(cls, summary: ModelSummary) -> SummaryResponse:
        rows = [
            SummaryRowBody(
                name=row.name,
                layer=row.layer,
                depth=row.depth,
                output_shape=list(row.output_shape) if row.output_shape is not None else None,
                params=row.params,
                params_percent=round(summary.share(row), 4),
                trainable=row.trainable,
                macs=row.macs,
                receptive_field=list(row.receptive_field) if row.receptive_field else None,
                whole_input=row.whole_input,
            )
            for row in summary.rows
        ]
        return cls(
            label=summary.label,
            input_shape=list(summary.input_shape),
            output_shape=list(summary.output_shape),
            layers=rows,
            total_params=summary.total_params,
            trainable_params=summary.trainable_params,
            total_macs=summary.total_macs,
            code=summary.code,
        )


class ModelRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    arch: StrictStr
    height: StrictInt = 224
    width: StrictInt = 224
    trainable: Literal["all", "head"] = "all"


class StackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    layers: StrictStr
    in_channels: StrictInt = 3
    height: StrictInt = 224
    width: StrictInt = 224


@router.post("/api/shapes/model", response_model=SummaryResponse, responses=ERRORS)
async def model_shape(body: ModelRequest, request: Request) -> SummaryResponse:
    """Per-layer table of a torchvision classification model on the meta device (no weights).

    `total_params` equals the parameter count of torchvision's model; MACs follow
    torch.utils.flop_counter (FLOPs / 2), so `total_macs` matches torchvision's GFLOPS.
    """
    try:
        summary = await run_demo(
            request, summarize_architecture, body.arch, body.height, body.width, body.trainable
        )
    except InvalidInput as error:
        raise api_error(error) from None
    return SummaryResponse.of(summary)


@router.post("/api/shapes/stack", response_model=SummaryResponse, responses=ERRORS)
async def stack_shape(body: StackRequest, request: Request) -> SummaryResponse:
    """Per-layer table of a stack typed one layer per line (see /demos/shapes/stack)."""
    try:
        summary = await run_demo(
            request, summarize_stack, body.layers, body.in_channels, body.height, body.width
        )
    except InvalidInput as error:
        raise api_error(error) from None
    return SummaryResponse.of(summary)


@router.get("/api/shapes/architectures", response_model=list[str])
def list_architectures() -> list[str]:
    """The architecture names `/api/shapes/model` accepts."""
    return list(ARCHITECTURES)


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
