"""One-layer calculator (app.worker.layers): every number against the torch.nn module itself."""

from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

from app.worker.errors import InvalidInput
from app.worker.formulas import formulas
from app.worker.layer_spec import LayerSpec
from app.worker.layers import compute_layer
from app.worker.tradeoffs import pointwise_vs_fc, separable_comparison


def torch_result(spec: LayerSpec) -> tuple[tuple[int, ...], int, torch.Tensor | None]:
    """(output shape without batch, parameter count, weight) of the module PyTorch builds."""
    kind = spec.kind
    x = torch.zeros(1, spec.in_channels, spec.height, spec.width)
    module: nn.Module
    if kind == "conv2d":
        module = nn.Conv2d(
            spec.in_channels,
            spec.out_channels,
            spec.kernel_size,
            spec.stride or 1,  # type: ignore[arg-type]
            spec.padding,
            spec.dilation,
            spec.groups,
            spec.bias,  # type: ignore[arg-type]
        )
    elif kind == "conv_transpose2d":
        module = nn.ConvTranspose2d(
            spec.in_channels,
            spec.out_channels,
            spec.kernel_size,
            spec.stride or 1,  # type: ignore[arg-type]
            spec.padding,
            spec.output_padding,
            spec.groups,
            spec.bias,
            spec.dilation,  # type: ignore[arg-type]
        )
    elif kind == "max_pool2d":
        module = nn.MaxPool2d(
            spec.kernel_size,
            spec.stride,
            spec.padding,
            spec.dilation,
            ceil_mode=spec.ceil_mode,  # type: ignore[arg-type]
        )
    elif kind == "avg_pool2d":
        module = nn.AvgPool2d(spec.kernel_size, spec.stride, spec.padding, spec.ceil_mode)  # type: ignore[arg-type]
    else:
        module = nn.Linear(
            spec.in_channels * spec.height * spec.width, spec.out_channels, spec.bias
        )
        x = x.flatten(1)
    out = module(x)
    weight = getattr(module, "weight", None)
    return tuple(out.shape[1:]), sum(p.numel() for p in module.parameters()), weight


def assert_matches_torch(spec: LayerSpec) -> None:
    result = compute_layer(spec)
    shape, params, weight = torch_result(spec)
    assert result.output_shape == shape
    assert result.params == params
    if weight is not None:
        assert result.weight_shape == tuple(weight.shape)
    if spec.kind in ("conv2d", "linear"):
        # One MAC per weight per output position (per input position for a transposed conv).
        positions = shape[1] * shape[2] if spec.kind == "conv2d" else 1
        assert weight is not None and result.macs == weight.numel() * positions
    if spec.kind == "conv_transpose2d":
        assert weight is not None and result.macs == weight.numel() * spec.height * spec.width


EXAMPLES = [
    LayerSpec("conv2d", 3, 224, 224, 64, 7, 2, 3, bias=False),
    LayerSpec("conv2d", 32, 17, 9, 64, (3, 1), (2, 1), (1, 0), (1, 2), groups=4),
    LayerSpec("conv2d", 8, 10, 10, 8, 4, 1, "same", 2, groups=8),
    LayerSpec("conv2d", 8, 10, 10, 16, 3, 3, "valid"),
    LayerSpec("conv_transpose2d", 16, 7, 7, 8, 4, 2, 1),
    LayerSpec("conv_transpose2d", 6, 5, 4, 9, 3, 2, 1, 2, groups=3, output_padding=1),
    LayerSpec("max_pool2d", 64, 112, 112, kernel_size=3, stride=2, padding=1),
    LayerSpec("max_pool2d", 3, 7, 6, kernel_size=3, stride=2, dilation=2, ceil_mode=True),
    LayerSpec("avg_pool2d", 3, 7, 7, kernel_size=2, ceil_mode=True),
    LayerSpec("avg_pool2d", 3, 9, 5, kernel_size=(3, 2), stride=(2, 1), padding=(1, 1)),
    LayerSpec("linear", 512, 1, 1, 1000),
    LayerSpec("linear", 3, 4, 5, 7, bias=False),
]


@pytest.mark.parametrize("spec", EXAMPLES, ids=lambda spec: spec.kind)
def test_layer_figures_match_the_torch_module(spec: LayerSpec) -> None:
    assert_matches_torch(spec)


def test_the_snippet_runs_and_prints_what_the_calculator_says(capsys) -> None:
    result = compute_layer(LayerSpec("conv2d", 3, 32, 32, 16, 5, 2, 2, bias=False))
    exec(result.code, {})  # the code a user copies
    printed = capsys.readouterr().out.splitlines()
    assert printed == ["torch.Size([1, 16, 16, 16])", str(result.params)]


def test_formulas_end_with_the_result() -> None:
    spec = LayerSpec("max_pool2d", 1, 5, 5, kernel_size=2, stride=2, padding=1, ceil_mode=True)
    result = compute_layer(spec)
    lines = formulas(result)
    assert lines[0].endswith(f"= {result.output_shape[1]}")


@pytest.mark.parametrize(
    ("height", "kernel", "stride", "padding", "where"),
    [
        (6, 1, 2, 0, "past the end of the input"),  # MaxPool2d(1, 2, ceil_mode=True) on 6 rows
        (5, 2, 2, 1, "in the right padding, over no input"),
        (5, 3, 3, 1, "in the right padding, over no input"),
    ],
)
def test_ceil_mode_says_with_the_numbers_why_the_last_window_is_dropped(
    height: int, kernel: int, stride: int, padding: int, where: str
) -> None:
    pool = nn.MaxPool2d(kernel, stride, padding, ceil_mode=True)
    rows = pool(torch.zeros(1, 1, height, 7)).shape[2]
    spec = LayerSpec("max_pool2d", 1, height, 7, kernel_size=kernel, stride=stride,
                     padding=padding, ceil_mode=True)  # fmt: skip
    lines = formulas(compute_layer(spec))
    start = rows * stride  # the window PyTorch dropped is window rows + 1
    assert start >= height + padding  # PyTorch's rule, with torch's own count
    assert lines[0].endswith(f"= {rows + 1} − 1 = {rows}")
    assert (
        f"window {rows + 1} would start at (out − 1)·s = ({rows + 1} − 1)·{stride} = {start} "
        f"≥ H + p = {height} + {padding}: {where}"
    ) in lines[1]


def test_separable_and_pointwise_comparisons_count_real_modules() -> None:
    result = compute_layer(LayerSpec("conv2d", 32, 28, 28, 64, 3, 1, 1, bias=False))
    separable = separable_comparison(result)
    namespace: dict = {}
    exec(separable.code, namespace)
    standard, pair = namespace["standard"], namespace["separable"]
    assert separable.cost.standard.params == sum(p.numel() for p in standard.parameters())
    assert separable.cost.separable.params == sum(p.numel() for p in pair.parameters())
    x = torch.zeros(1, 32, 28, 28)
    assert standard(x).shape == pair(x).shape
    compare = pointwise_vs_fc(compute_layer(LayerSpec("conv2d", 4, 3, 3, 2, 1)))
    exec(compare.code, namespace)
    assert compare.pointwise.params == sum(p.numel() for p in namespace["pointwise"].parameters())
    assert compare.fc.params == sum(p.numel() for p in namespace["fc"].parameters())


INVALID = [
    (LayerSpec(in_channels=0), "in_channels"),
    (LayerSpec(height=-3), "height"),
    (LayerSpec(width=0), "width"),
    (LayerSpec(out_channels=0), "out_channels"),
    (LayerSpec(kernel_size=0), "kernel_size"),
    (LayerSpec(kernel_size=(3, 3, 3)), "kernel_size"),
    (LayerSpec(stride=0), "stride"),
    (LayerSpec(padding=-1), "padding"),
    (LayerSpec(padding="full"), "padding"),
    (LayerSpec(dilation=0), "dilation"),
    (LayerSpec(groups=0), "groups"),
    (LayerSpec(in_channels=3, groups=2), "groups"),
    (LayerSpec(in_channels=4, out_channels=6, groups=4), "groups"),
    (LayerSpec(padding="same", stride=2), "stride"),
    (LayerSpec(height=5, kernel_size=7), "kernel_size"),
    (LayerSpec(width=5, kernel_size=3, dilation=3), "dilation"),  # the 3 taps alone fit
    (LayerSpec(width=5, kernel_size=7, dilation=3), "kernel_size"),  # 7 taps never fit
    (LayerSpec(kernel_size=7, padding=3, dilation=100), "dilation"),
    (LayerSpec("max_pool2d", height=9, kernel_size=3, dilation=9), "dilation"),
    # A setting the kind has no use for is refused, not ignored.
    (LayerSpec("conv2d", ceil_mode=True), "ceil_mode"),
    (LayerSpec("conv2d", output_padding=1), "output_padding"),
    (LayerSpec("max_pool2d", out_channels=8), "out_channels"),
    (LayerSpec("avg_pool2d", groups=2), "groups"),
    (LayerSpec("max_pool2d", bias=False), "bias"),
    (LayerSpec("linear", kernel_size=5), "kernel_size"),
    (LayerSpec("linear", stride=2), "stride"),
    (LayerSpec(in_channels=True), "in_channels"),
    (LayerSpec(kind="conv3d"), "kind"),  # type: ignore[arg-type]
    (LayerSpec("conv_transpose2d", stride=2, output_padding=2), "output_padding"),
    (LayerSpec("conv_transpose2d", height=2, width=2, kernel_size=1, padding=5), "padding"),
    # Output size exactly 0: the CPU kernel returns an empty tensor, torch's shape rule refuses.
    (
        LayerSpec("conv_transpose2d", height=2, width=2, kernel_size=1, stride=3, padding=2),
        "padding",
    ),
    (LayerSpec("conv_transpose2d", padding="same"), "padding"),
    (LayerSpec("max_pool2d", kernel_size=3, padding=2), "padding"),
    (LayerSpec("avg_pool2d", kernel_size=2, dilation=2), "dilation"),
    (LayerSpec("avg_pool2d", height=2, kernel_size=3), "kernel_size"),
    (LayerSpec("linear", out_channels=0), "out_channels"),
]


@pytest.mark.parametrize(("spec", "field"), INVALID)
def test_invalid_settings_raise_an_error_naming_the_field(spec: LayerSpec, field: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        compute_layer(spec)
    assert raised.value.field == field
    assert str(raised.value).startswith(f"{field}: ")


# --- properties: valid here exactly when PyTorch accepts it, and then equal -------------------

sizes = st.integers(1, 12)
pairs = st.one_of(st.integers(1, 5), st.tuples(st.integers(1, 5), st.integers(1, 5)))
paddings = st.one_of(st.integers(0, 3), st.tuples(st.integers(0, 3), st.integers(0, 3)))
PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _torch_accepts(spec: LayerSpec) -> bool:
    """Whether PyTorch builds this layer and gives a non-empty output. On the CPU a transposed
    conv whose output size works out to 0 returns an empty tensor, while torch's shape rule
    (the meta kernel) refuses it ("Output size is too small"); the calculator follows the rule.
    """
    try:
        shape, _, _ = torch_result(spec)
    except (RuntimeError, ValueError):
        return False
    return all(size > 0 for size in shape)


def _check(spec: LayerSpec) -> None:
    try:
        compute_layer(spec)
    except InvalidInput:
        assert not _torch_accepts(spec), f"rejected, but torch accepts {spec}"
        return
    assert_matches_torch(spec)


@PROPERTY
@given(
    st.integers(1, 6),
    sizes,
    sizes,
    st.integers(1, 6),
    pairs,
    pairs,
    st.one_of(paddings, st.sampled_from(["same", "valid"])),
    pairs,
    st.integers(1, 3),
    st.booleans(),
)
def test_conv2d_is_valid_exactly_when_torch_accepts_it(c, h, w, out, k, s, p, d, g, bias) -> None:
    _check(LayerSpec("conv2d", c, h, w, out, k, s, p, d, g, bias))


@PROPERTY
@given(
    st.integers(1, 4),
    sizes,
    sizes,
    st.integers(1, 4),
    pairs,
    pairs,
    paddings,
    pairs,
    st.integers(1, 2),
    st.integers(0, 2),
)
def test_conv_transpose2d_is_valid_exactly_when_torch_accepts_it(
    c, h, w, out, k, s, p, d, g, op
) -> None:
    _check(LayerSpec("conv_transpose2d", c, h, w, out, k, s, p, d, g, output_padding=op))


@PROPERTY
@given(
    st.sampled_from(["max_pool2d", "avg_pool2d"]),
    sizes,
    sizes,
    pairs,
    st.one_of(st.none(), pairs),
    paddings,
    st.one_of(st.just(1), pairs),
    st.booleans(),
)
def test_pooling_is_valid_exactly_when_torch_accepts_it(kind, h, w, k, s, p, d, ceil) -> None:
    if kind == "avg_pool2d":
        d = 1
    _check(LayerSpec(kind, 2, h, w, kernel_size=k, stride=s, padding=p, dilation=d, ceil_mode=ceil))
