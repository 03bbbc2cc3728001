"""The pooling visualizer: max vs average vs strided conv on a photo (or upload) and a grid."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ConfigDict, Field, StrictInt

from app.demos.api import ERRORS, api_error
from app.demos.forms import FormValues
from app.demos.pooling_form import (
    POOLING_DEFAULTS,
    POOLING_LABELS,
    WEIGHT_TITLES,
    pooling_spec_from,
    traced_cell,
)
from app.demos.runner import run_demo
from app.demos.uploads import PhotoForm, chosen_photo, photo_context, read_photo_form
from app.messages import on_screen
from app.web import render
from app.worker.errors import InvalidInput
from app.worker.images import SAMPLE_PHOTOS
from app.worker.pooling import (
    GridPooling,
    PoolingSpec,
    parse_grid,
    pool_grid,
    pooling_demo,
)

router = APIRouter(tags=["demos"])


async def _pooling_response(request: Request, sent: PhotoForm) -> HTMLResponse:
    form = FormValues(sent.fields, POOLING_DEFAULTS)
    context = photo_context(request, sent, form.values) | {
        "photos": SAMPLE_PHOTOS,
        "weights": WEIGHT_TITLES,
        "labels": POOLING_LABELS,
        "result": None,
    }
    status = 200
    try:
        if sent.error is not None:
            raise sent.error
        spec = pooling_spec_from(form)
        rows = parse_grid(form.text("grid"))
        cell = traced_cell(form)
        _, image = await chosen_photo(request, form.text("photo"), sent.upload)
        result = await run_demo(request, pooling_demo, image, rows, spec)
        out_h, out_w = result.grid.output_size
        context |= {"result": result, "cell": (min(cell[0], out_h - 1), min(cell[1], out_w - 1))}
    except InvalidInput as error:
        context["error"], status = on_screen(error, POOLING_LABELS), 422
    return render(
        request,
        "pages/demos_pooling.html",
        context,
        fragment="partials/_demo_pooling_result.html",
        status_code=status,
    )


@router.get("/demos/pooling", response_class=HTMLResponse, include_in_schema=False)
async def pooling_page(request: Request) -> HTMLResponse:
    return await _pooling_response(request, PhotoForm(request.query_params))


@router.post("/demos/pooling", response_class=HTMLResponse, include_in_schema=False)
async def pooling_upload(request: Request) -> HTMLResponse:
    """The same view on an uploaded photo (multipart form; the image is not kept)."""
    return await _pooling_response(request, await read_photo_form(request))


class GridRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    grid: list[list[float]] = Field(description="2–12 rows of 2–12 numbers")
    kernel: StrictInt = 2
    stride: StrictInt | None = None
    conv_weights: Literal["edges", "blur", "subsample"] = "edges"


class GridMethodBody(BaseModel):
    method: str
    output: list[list[float]]
    reads: list[list[list[list[int]]]] = Field(description="input cells [row, col] per output")
    gradients: list[list[list[list[float]]]] = Field(
        description="d output[r][c] / d input, an input-sized grid per output cell (autograd)"
    )


class GridResponse(BaseModel):
    output_size: list[int]
    kernel_weights: list[list[float]]
    methods: list[GridMethodBody]

    @classmethod
    def of(cls, result: GridPooling) -> GridResponse:
        return cls(
            output_size=list(result.output_size),
            kernel_weights=[list(row) for row in result.kernel_weights],
            methods=[
                GridMethodBody(
                    method=method.method,
                    output=[list(row) for row in method.output],
                    reads=[
                        [[list(cell) for cell in cells] for cells in row] for row in method.reads
                    ],
                    gradients=[
                        [[list(g) for g in grad] for grad in row] for row in method.gradients
                    ],
                )
                for method in result.methods
            ],
        )


@router.post("/api/pooling/grid", response_model=GridResponse, responses=ERRORS)
async def pooling_grid(body: GridRequest, request: Request) -> GridResponse:
    """Max pooling, average pooling and a strided conv on a small grid, with every output's
    gradient over the input computed by autograd."""
    spec = PoolingSpec(body.kernel, body.stride, body.conv_weights)
    try:
        result = await run_demo(request, pool_grid, body.grid, spec)
    except InvalidInput as error:
        raise api_error(error) from None
    return GridResponse.of(result)
