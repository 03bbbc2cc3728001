"""Pooling visualizer (app.worker.pooling): outputs and gradient maps against torch."""

from __future__ import annotations

import base64
import io

import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from app.worker.errors import InvalidInput
from app.worker.images import sample_photo
from app.worker.pooling import (
    EXAMPLE_GRID,
    PoolingSpec,
    conv_kernel,
    grid_text,
    parse_grid,
    pool_grid,
    pool_photo,
)

SPECS = [
    PoolingSpec(2),
    PoolingSpec(3, 1),
    PoolingSpec(3, 2, "blur"),
    PoolingSpec(2, 1, "subsample"),
]


def _grid() -> torch.Tensor:
    return torch.tensor(EXAMPLE_GRID, dtype=torch.float64).reshape(1, 1, 6, 6)


@pytest.mark.parametrize("spec", SPECS)
def test_grid_outputs_equal_torch_functional(spec: PoolingSpec) -> None:
    result = pool_grid(EXAMPLE_GRID, spec)
    x = _grid()
    weight = (
        conv_kernel(spec.conv_weights, spec.kernel).double().reshape(1, 1, spec.kernel, spec.kernel)
    )
    expected = {
        "max": F.max_pool2d(x, spec.kernel, spec.step),
        "avg": F.avg_pool2d(x, spec.kernel, spec.step),
        "conv": F.conv2d(x, weight, stride=spec.step),
    }
    for method in result.methods:
        assert torch.allclose(
            torch.tensor(method.output, dtype=torch.float64), expected[method.method][0, 0]
        )


@pytest.mark.parametrize("spec", SPECS)
def test_grid_gradients_equal_autograd_of_each_output(spec: PoolingSpec) -> None:
    result = pool_grid(EXAMPLE_GRID, spec)
    weight = (
        conv_kernel(spec.conv_weights, spec.kernel).double().reshape(1, 1, spec.kernel, spec.kernel)
    )
    ops = {
        "max": lambda x: F.max_pool2d(x, spec.kernel, spec.step),
        "avg": lambda x: F.avg_pool2d(x, spec.kernel, spec.step),
        "conv": lambda x: F.conv2d(x, weight, stride=spec.step),
    }
    for method in result.methods:
        rows, cols = len(method.output), len(method.output[0])
        for r in range(rows):
            for c in range(cols):
                x = _grid().requires_grad_(True)
                ops[method.method](x)[0, 0, r, c].backward()
                assert x.grad is not None
                got = torch.tensor(method.gradients[r][c], dtype=torch.float64)
                assert torch.allclose(got, x.grad[0, 0]), (method.method, r, c)


def test_max_sends_the_whole_gradient_to_the_winner_and_average_spreads_it() -> None:
    result = pool_grid(EXAMPLE_GRID, PoolingSpec(2))
    by_method = {method.method: method for method in result.methods}
    max_grad = torch.tensor(by_method["max"].gradients[1][1])
    assert max_grad.sum() == 1 and (max_grad != 0).sum() == 1
    assert max_grad[2, 2] == 1  # the 9 in the window rows 2–3, columns 2–3
    avg_grad = torch.tensor(by_method["avg"].gradients[1][1])
    assert (avg_grad[2:4, 2:4] == 0.25).all() and avg_grad.sum() == 1
    assert by_method["max"].reads[1][1] == ((2, 2), (2, 3), (3, 2), (3, 3))


def test_photo_outputs_have_the_pooled_size_and_gradient_shares() -> None:
    result = pool_photo(sample_photo("astronaut"), PoolingSpec(2))
    assert result.input_size == (256, 256)
    shares = {method.method: method.gradient_share for method in result.methods}
    assert shares["max"] == pytest.approx(0.25, abs=0.02)  # one winner per 2×2 window and channel
    assert shares["avg"] == 1.0
    for method in result.methods:
        assert method.output_size == (128, 128)
        png = base64.b64decode(method.output_uri.split(",", 1)[1])
        assert Image.open(io.BytesIO(png)).size == (128, 128)


def test_parse_grid_reads_rows_and_round_trips_through_the_textarea() -> None:
    assert parse_grid(grid_text(EXAMPLE_GRID)) == tuple(
        tuple(float(v) for v in row) for row in EXAMPLE_GRID
    )
    assert parse_grid("1, 2\n3  4.5\n\n") == ((1.0, 2.0), (3.0, 4.5))


@pytest.mark.parametrize(
    ("text", "spec", "field"),
    [
        ("1 2\n3", PoolingSpec(2), "grid"),
        ("1 x\n3 4", PoolingSpec(2), "grid"),
        ("1", PoolingSpec(1), "grid"),
        ("\n".join(["1 " * 13] * 3), PoolingSpec(2), "grid"),
        ("1 2\n3 4", PoolingSpec(3), "kernel"),
        ("1 2\n3 4", PoolingSpec(0), "kernel"),
        ("1 2\n3 4", PoolingSpec(2, 0), "stride"),
        ("1 2\n3 4", PoolingSpec(2, 2, "sharpen"), "conv_weights"),  # type: ignore[arg-type]
        ("nan 1\n1 1", PoolingSpec(1), "grid"),
    ],
)
def test_bad_grid_or_window_names_the_field(text: str, spec: PoolingSpec, field: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        pool_grid(parse_grid(text), spec)
    assert raised.value.field == field
