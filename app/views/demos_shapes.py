"""The shape calculator's pages: one layer, a typed stack, or a torchvision model (HTML)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from app.demos.forms import MAX_TEXT, FormValues
from app.demos.present import code_html, placement
from app.demos.runner import run_demo
from app.demos.shape_forms import (
    FIELD_KINDS,
    KIND_TITLES,
    LAYER_DEFAULTS,
    LAYER_LABELS,
    MODEL_DEFAULTS,
    MODEL_LABELS,
    STACK_DEFAULTS,
    STACK_LABELS,
    layer_spec_from,
    model_arguments,
    stack_arguments,
)
from app.messages import on_screen
from app.web import render
from app.worker.errors import InvalidInput
from app.worker.formulas import formulas
from app.worker.layers import LayerResult, compute_layer
from app.worker.stack import summarize_stack
from app.worker.summary import ARCHITECTURES, ModelSummary, summarize_architecture
from app.worker.tradeoffs import pointwise_vs_fc, separable_comparison

router = APIRouter(tags=["demos"])


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
        summary = await run_demo(request, summarize_stack, *stack_arguments(form))
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
        summary = await run_demo(request, summarize_architecture, *model_arguments(form))
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
