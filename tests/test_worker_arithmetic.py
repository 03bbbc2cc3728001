"""The closed-form helpers in app.worker.arithmetic against torch.nn and autograd."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from app.worker import arithmetic as ar

POOLS = [
    # (size, kernel, stride, padding, dilation, ceil_mode)
    (224, 3, 2, 1, 1, False),
    (112, 2, 2, 0, 1, False),
    (7, 3, 2, 0, 1, True),
    (6, 3, 2, 1, 1, True),  # ceil_mode drops the window that would start in the padding
    (5, 2, 2, 1, 1, True),
    (9, 3, 3, 1, 2, False),
    (10, 4, 3, 2, 1, True),
    (1, 1, 1, 0, 1, True),
]


@pytest.mark.parametrize(("size", "kernel", "stride", "padding", "dilation", "ceil"), POOLS)
def test_pool_output_size_matches_max_pool(size, kernel, stride, padding, dilation, ceil) -> None:
    pool = nn.MaxPool2d(kernel, stride, padding, dilation, ceil_mode=ceil)
    out = pool(torch.zeros(1, 1, size, size))
    assert out.shape[-1] == ar.pool_output_size(size, kernel, stride, padding, dilation, ceil)


AVG_POOLS = [pool for pool in POOLS if pool[4] == 1 and pool[3] <= pool[1] // 2]


@pytest.mark.parametrize(("size", "kernel", "stride", "padding", "dilation", "ceil"), AVG_POOLS)
def test_pool_output_size_matches_avg_pool(size, kernel, stride, padding, dilation, ceil) -> None:
    out = nn.AvgPool2d(kernel, stride, padding, ceil_mode=ceil)(torch.zeros(1, 1, size, size))
    assert out.shape[-1] == ar.pool_output_size(size, kernel, stride, padding, 1, ceil)


def test_pool_stride_defaults_to_the_kernel() -> None:
    assert ar.pool_output_size(224, 2) == nn.MaxPool2d(2)(torch.zeros(1, 1, 224, 224)).shape[-1]


@pytest.mark.parametrize(
    ("size", "kernel", "stride", "padding", "output_padding", "dilation"),
    [
        (7, 4, 2, 1, 0, 1),
        (7, 3, 2, 1, 1, 1),
        (5, 3, 1, 3, 0, 1),
        (4, 3, 3, 0, 2, 2),
        (1, 1, 1, 0, 0, 1),
    ],
)
def test_conv_transpose_output_size_and_params_match_torch(
    size, kernel, stride, padding, output_padding, dilation
) -> None:
    layer = nn.ConvTranspose2d(
        6, 4, kernel, stride, padding, output_padding, groups=2, dilation=dilation
    )
    out = layer(torch.zeros(1, 6, size, size))
    expected = ar.conv_transpose_output_size(
        size, kernel, stride, padding, output_padding, dilation
    )
    assert out.shape[-1] == expected
    assert ar.conv_transpose_params(6, 4, (kernel, kernel), 2) == sum(
        p.numel() for p in layer.parameters()
    )


# PyTorch warns that an even kernel with 'same' padding makes a padded copy: expected here.
@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel lengths")
@pytest.mark.parametrize(("kernel", "dilation"), [(1, 1), (3, 1), (4, 1), (3, 2), (2, 3), (5, 4)])
def test_same_padding_keeps_the_size_like_torch(kernel, dilation) -> None:
    before, after = ar.same_padding(kernel, dilation)
    layer = nn.Conv2d(1, 1, kernel, padding="same", dilation=dilation, bias=False)
    x = torch.randn(1, 1, 9, 9)
    manual = nn.functional.conv2d(
        nn.functional.pad(x, (before, after, before, after)), layer.weight, dilation=dilation
    )
    assert torch.allclose(layer(x), manual, atol=1e-6)


def test_depthwise_separable_cost_counts_the_built_modules() -> None:
    cin, cout, kernel, size = 32, 64, (3, 3), (56, 56)
    cost = ar.depthwise_separable_cost(cin, cout, kernel, size, bias=False)
    standard = nn.Conv2d(cin, cout, kernel, padding=1, bias=False)
    depthwise = nn.Conv2d(cin, cin, kernel, padding=1, groups=cin, bias=False)
    pointwise = nn.Conv2d(cin, cout, 1, bias=False)
    for module, part in (
        (standard, cost.standard),
        (depthwise, cost.depthwise),
        (pointwise, cost.pointwise),
    ):
        assert part.params == sum(p.numel() for p in module.parameters())
        assert part.macs == module.weight.numel() * size[0] * size[1]
    assert cost.mac_ratio == pytest.approx(1 / (1 / cout + 1 / 9), rel=1e-9)


def test_pointwise_vs_fc_params_count_conv1x1_and_linear() -> None:
    pointwise, fc = ar.pointwise_vs_fc_params(4, 3, 5, 6)
    assert pointwise == sum(p.numel() for p in nn.Conv2d(4, 3, 1).parameters())
    assert fc == sum(p.numel() for p in nn.Linear(4 * 5 * 6, 3 * 5 * 6).parameters())
