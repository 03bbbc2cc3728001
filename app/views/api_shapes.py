"""The shape calculator's JSON API: one conv, any layer, a typed stack, a torchvision model."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, StrictBool, StrictInt, StrictStr

from app.demos.api import ERRORS, api_error
from app.demos.runner import run_demo
from app.worker.errors import InvalidInput
from app.worker.layer_spec import LayerSpec, refuse_unused
from app.worker.layers import LayerResult, compute_layer
from app.worker.stack import summarize_stack
from app.worker.summary import ARCHITECTURES, ModelSummary, summarize_architecture

router = APIRouter(tags=["demos"])

# --- one layer ------------------------------------------------------------------------------

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
