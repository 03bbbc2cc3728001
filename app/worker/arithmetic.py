"""Closed-form layer arithmetic: output sizes, parameter and MAC counts.

These are the formulas the answers teach and the parametric quiz items draw on; the tests hold
them to `torch.nn` exactly. Sizes are along one axis unless a pair is asked for; a MAC is one
multiply-accumulate (bias additions are not counted, as in torchvision's GFLOPS figures).
Receptive fields, closed form included, live in `app.worker.receptive_field`.
"""

from __future__ import annotations

from dataclasses import dataclass


def effective_kernel(kernel: int, dilation: int = 1) -> int:
    """Span of a dilated kernel: `d·(k − 1) + 1` input positions."""
    return dilation * (kernel - 1) + 1


def conv_output_size(
    size: int, kernel: int, stride: int = 1, padding: int = 0, dilation: int = 1
) -> int:
    """Output length along one axis of a convolution or pooling window (floor division)."""
    effective = effective_kernel(kernel, dilation)
    return (size + 2 * padding - effective) // stride + 1


def same_padding(kernel: int, dilation: int = 1) -> tuple[int, int]:
    """(before, after) padding that `padding="same"` uses at stride 1; odd totals pad more after."""
    total = dilation * (kernel - 1)
    return total // 2, total - total // 2


def pool_output_size(
    size: int,
    kernel: int,
    stride: int | None = None,
    padding: int = 0,
    dilation: int = 1,
    ceil_mode: bool = False,
) -> int:
    """Output length of MaxPool2d/AvgPool2d along one axis; `stride` defaults to the kernel.

    With `ceil_mode` the division rounds up, but a window that would start entirely in the right
    padding is dropped, exactly as PyTorch does.
    """
    step = kernel if stride is None else stride
    span = size + 2 * padding - effective_kernel(kernel, dilation)
    out = (span + (step - 1 if ceil_mode else 0)) // step + 1
    if ceil_mode and (out - 1) * step >= size + padding:
        out -= 1
    return out


def conv_transpose_output_size(
    size: int,
    kernel: int,
    stride: int = 1,
    padding: int = 0,
    output_padding: int = 0,
    dilation: int = 1,
) -> int:
    """Output length of ConvTranspose2d: `(n − 1)·s − 2p + d·(k − 1) + output_padding + 1`."""
    return (size - 1) * stride - 2 * padding + dilation * (kernel - 1) + output_padding + 1


def conv_params(
    in_channels: int, out_channels: int, kernel: tuple[int, int], groups: int = 1, bias: bool = True
) -> int:
    """Weights (out × in/groups × kh × kw) plus one bias per output channel."""
    weights = out_channels * (in_channels // groups) * kernel[0] * kernel[1]
    return weights + (out_channels if bias else 0)


def conv_macs(
    in_channels: int,
    out_channels: int,
    kernel: tuple[int, int],
    out_size: tuple[int, int],
    groups: int = 1,
) -> int:
    """Multiply-accumulates: one per weight per output position (bias adds are not counted)."""
    return (
        out_size[0] * out_size[1] * out_channels * (in_channels // groups) * kernel[0] * kernel[1]
    )


def conv_transpose_params(
    in_channels: int, out_channels: int, kernel: tuple[int, int], groups: int = 1, bias: bool = True
) -> int:
    """ConvTranspose2d weights (in × out/groups × kh × kw) plus one bias per output channel."""
    weights = in_channels * (out_channels // groups) * kernel[0] * kernel[1]
    return weights + (out_channels if bias else 0)


def conv_transpose_macs(
    in_channels: int,
    out_channels: int,
    kernel: tuple[int, int],
    in_size: tuple[int, int],
    groups: int = 1,
) -> int:
    """A transposed conv scatters every input position through its weights: one MAC per weight
    per *input* position."""
    return in_size[0] * in_size[1] * in_channels * (out_channels // groups) * kernel[0] * kernel[1]


def linear_params(in_features: int, out_features: int, bias: bool = True) -> int:
    """`in × out` weights plus `out` biases."""
    return in_features * out_features + (out_features if bias else 0)


def linear_macs(in_features: int, out_features: int, rows: int = 1) -> int:
    """One MAC per weight per input row (a row is one vector the layer is applied to)."""
    return rows * in_features * out_features


@dataclass(frozen=True)
class Cost:
    """Parameters and MACs of one layer or block, for one input image."""

    params: int
    macs: int

    def __add__(self, other: Cost) -> Cost:
        return Cost(self.params + other.params, self.macs + other.macs)


@dataclass(frozen=True)
class SeparableCost:
    """A standard conv beside the depthwise-separable pair that replaces it."""

    standard: Cost
    depthwise: Cost
    pointwise: Cost

    @property
    def separable(self) -> Cost:
        return self.depthwise + self.pointwise

    @property
    def param_ratio(self) -> float:
        """How many times fewer parameters the separable pair has (standard / separable)."""
        return self.standard.params / self.separable.params

    @property
    def mac_ratio(self) -> float:
        """How many times fewer MACs the separable pair needs (standard / separable)."""
        return self.standard.macs / self.separable.macs


def depthwise_separable_cost(
    in_channels: int,
    out_channels: int,
    kernel: tuple[int, int],
    out_size: tuple[int, int],
    bias: bool = True,
) -> SeparableCost:
    """Standard k×k conv (in → out) against depthwise k×k (groups = in) + pointwise 1×1 (in → out).

    Both produce `out × out_size`; the MAC ratio is `1 / (1/out + 1/(kh·kw))` for square maps.
    """
    standard = Cost(
        conv_params(in_channels, out_channels, kernel, 1, bias),
        conv_macs(in_channels, out_channels, kernel, out_size, 1),
    )
    depthwise = Cost(
        conv_params(in_channels, in_channels, kernel, in_channels, bias),
        conv_macs(in_channels, in_channels, kernel, out_size, in_channels),
    )
    pointwise = Cost(
        conv_params(in_channels, out_channels, (1, 1), 1, bias),
        conv_macs(in_channels, out_channels, (1, 1), out_size, 1),
    )
    return SeparableCost(standard, depthwise, pointwise)


def pointwise_vs_fc_params(
    in_channels: int, out_channels: int, height: int, width: int, bias: bool = True
) -> tuple[int, int]:
    """(1×1 conv, fully connected) parameters for the same map `C×H×W → C_out×H×W`.

    The 1×1 conv shares one `C → C_out` matrix across all H·W positions; the FC layer connects
    every input value to every output value: `(C·H·W) × (C_out·H·W)` weights.
    """
    pointwise = conv_params(in_channels, out_channels, (1, 1), 1, bias)
    positions = height * width
    fc = linear_params(in_channels * positions, out_channels * positions, bias)
    return pointwise, fc
