"""Receptive fields (app.worker.receptive_field), in closed form and through transposed
convolutions, held to autograd: with every weight 1 and every input 1 nothing cancels, so an
input pixel gets gradient from an output exactly when the output depends on it."""

from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

from app.worker.receptive_field import Span, conv_transpose_receptive_field, receptive_field
from app.worker.stack import summarize_stack


def dependent_rows(model: nn.Module, size: int, rows: range) -> list[tuple[int, int] | None]:
    """For each output row in `rows`, the first and last input row with gradient, or None when
    it depends on no input. One batched backward pass.

    Rows and columns are independent (square layers), so the rows that output (r, c) reads are
    the same for every column c that reads anything; the row's outputs in the same `rows`
    range of columns are taken together, so that at least one of them does."""
    for parameter in model.parameters():
        nn.init.constant_(parameter, 1.0)
    x = torch.ones(1, 1, size, size, dtype=torch.float64, requires_grad=True)
    out = model.double()(x)
    picks = torch.zeros(len(rows), *out.shape, dtype=torch.float64)
    for index, row in enumerate(rows):
        picks[index, 0, 0, row, rows.start : rows.stop] = 1.0
    (grads,) = torch.autograd.grad(out, x, picks, is_grads_batched=True)
    found: list[tuple[int, int] | None] = []
    for grad in grads:
        reached = torch.nonzero(grad[0, 0].sum(dim=1)).flatten()
        found.append((int(reached.min()), int(reached.max())) if reached.numel() else None)
    return found


def test_conv_then_strided_transposed_conv_then_conv_reads_three_rows() -> None:
    text = "conv 1 k1 s2\nconvT 1 k2 s2\nconv 1 k2"
    final = summarize_stack(text, 1, 16, 16).rows[-1]
    model = nn.Sequential(
        nn.Conv2d(1, 1, 1, stride=2), nn.ConvTranspose2d(1, 1, 2, stride=2), nn.Conv2d(1, 1, 2)
    )
    spans = [hi - lo + 1 for b in dependent_rows(model, 16, range(15)) if b for lo, hi in [b]]
    assert max(spans) == 3  # output row 1 reads conv rows 1 and 2: input rows 0 and 2
    assert final.receptive_field == (max(spans), max(spans))
    assert final.output_shape == (1, 15, 15)


def test_a_transposed_conv_with_a_stride_above_its_kernel_leaves_outputs_reading_nothing() -> None:
    span = Span.identity().transposed(kernel=1, stride=3, dilation=1, padding=0)
    assert [span.at(o) for o in range(4)] == [(0, 0), None, None, (1, 1)]
    assert span.size == 1


# --- the property: any stack of conv / transposed conv / pooling, against autograd -----------

Layer = tuple[str, int, int, int, int]  # (kind, kernel, stride, dilation, padding)


@st.composite
def layers(draw: st.DrawFn) -> list[Layer]:
    chosen: list[Layer] = []
    for _ in range(draw(st.integers(1, 4))):
        # At most two transposed convs: each multiplies the output size (and the test's work).
        upsampled = sum(kind == "convT" for kind, *_ in chosen) >= 2
        kind = draw(
            st.sampled_from(["conv", "avgpool"] if upsampled else ["conv", "convT", "avgpool"])
        )
        kernel = draw(st.integers(1, 3))
        stride = draw(st.integers(1, 3 if kind == "convT" else 2))
        dilation = draw(st.integers(1, 2)) if kind != "avgpool" else 1
        limit = kernel // 2 if kind == "avgpool" else dilation * (kernel - 1)
        padding = draw(st.integers(0, limit))
        chosen.append((kind, kernel, stride, dilation, padding))
    return chosen


def as_text(stack: list[Layer]) -> str:
    lines = []
    for kind, kernel, stride, dilation, padding in stack:
        if kind == "avgpool":
            lines.append(f"avgpool k{kernel} s{stride} p{padding}")
        else:
            lines.append(f"{kind} 1 k{kernel} s{stride} d{dilation} p{padding}")
    return "\n".join(lines)


def as_modules(stack: list[Layer]) -> nn.Sequential:
    modules: list[nn.Module] = []
    for kind, kernel, stride, dilation, padding in stack:
        if kind == "conv":
            modules.append(nn.Conv2d(1, 1, kernel, stride, padding, dilation))
        elif kind == "convT":
            modules.append(nn.ConvTranspose2d(1, 1, kernel, stride, padding, dilation=dilation))
        else:
            modules.append(nn.AvgPool2d(kernel, stride, padding))
    return nn.Sequential(*modules)


def generous_size(stack: list[Layer]) -> tuple[int, int]:
    """An input side that leaves a full period of middle outputs away from every border, and
    how many middle output rows make a period: worked out from bounds, not from our code."""
    field, jump, period = 1, 1, 1
    for kind, kernel, stride, dilation, _ in stack:
        field += dilation * (kernel - 1) * jump + 2  # a transposed conv spans no more than this
        if kind == "convT":
            period *= stride
        else:
            jump *= stride
    return 4 * field + 4 * jump * period + 24, period


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(layers())
def test_a_stacks_receptive_field_is_what_autograd_reaches(stack: list[Layer]) -> None:
    size, period = generous_size(stack)
    summary = summarize_stack(as_text(stack), 1, size, size)
    final = summary.rows[-1]
    out_rows = final.output_shape[1]
    middle = out_rows // 2
    rows = range(max(0, middle - period), min(out_rows, middle + period + 1))
    found = [b for b in dependent_rows(as_modules(stack), size, rows) if b is not None]
    assert all(lo > 0 and hi < size - 1 for lo, hi in found)  # none was cut by a border
    widest = max((hi - lo + 1 for lo, hi in found), default=0)
    assert final.receptive_field == (widest, widest), as_text(stack)


def _gradient_extent(model: nn.Module, size: int) -> int:
    """Columns of input that reach the centre output, found with autograd (all weights 1)."""
    for parameter in model.parameters():
        nn.init.constant_(parameter, 1.0)
    x = torch.ones(1, 1, size, size, requires_grad=True)
    out = model(x)
    out[0, 0, out.shape[2] // 2, out.shape[3] // 2].backward()
    assert x.grad is not None
    columns = torch.nonzero(x.grad[0, 0].abs().sum(dim=0)).flatten()
    return int(columns.max() - columns.min() + 1)


@pytest.mark.parametrize(
    "layers",
    [
        [(3, 1)],
        [(3, 1), (3, 1)],
        [(7, 2), (3, 2), (3, 1)],
        [(3, 1, 2), (3, 1, 4)],
        [(5, 2, 2), (2, 2), (3, 1, 3)],
    ],
)
def test_receptive_field_of_a_stack_matches_autograd(layers) -> None:
    model = nn.Sequential(
        *(
            nn.Conv2d(
                1, 1, layer[0], layer[1], dilation=layer[2] if len(layer) > 2 else 1, bias=False
            )
            for layer in layers
        )
    )
    assert receptive_field(layers) == _gradient_extent(model, 101)


@pytest.mark.parametrize(
    ("kernel", "stride", "dilation"), [(4, 2, 1), (3, 2, 1), (5, 2, 2), (3, 3, 1), (6, 4, 2)]
)
def test_conv_transpose_receptive_field_is_the_widest_output_reach(
    kernel, stride, dilation
) -> None:
    layer = nn.ConvTranspose2d(1, 1, kernel, stride, dilation=dilation, bias=False)
    nn.init.constant_(layer.weight, 1.0)
    x = torch.ones(1, 1, 24, 24, requires_grad=True)
    out = layer(x)
    widest = 0
    middle = range(out.shape[3] // 3, 2 * out.shape[3] // 3)  # away from the borders
    for row, column in ((r, c) for r in middle for c in middle):
        x.grad = None
        out[0, 0, row, column].backward(retain_graph=True)
        assert x.grad is not None
        reached = torch.nonzero(x.grad[0, 0].sum(dim=0)).flatten()
        if reached.numel() == 0:
            continue  # with dilation and stride sharing a factor, some outputs read nothing
        widest = max(widest, int(reached.max() - reached.min() + 1))
    assert conv_transpose_receptive_field(kernel, stride, dilation) == widest
