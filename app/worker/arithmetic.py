"""Closed-form layer arithmetic: output sizes, parameter and MAC counts.

These are the formulas the answers teach; the tests hold them to `torch.nn` exactly.
"""

from __future__ import annotations


def conv_output_size(
    size: int, kernel: int, stride: int = 1, padding: int = 0, dilation: int = 1
) -> int:
    """Output length along one axis of a convolution or pooling window (floor division)."""
    effective_kernel = dilation * (kernel - 1) + 1
    return (size + 2 * padding - effective_kernel) // stride + 1


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


def pool_output_size(
    size: int,
    kernel: int,
    stride: int,
    padding: int = 0,
    dilation: int = 1,
    ceil_mode: bool = False,
) -> int:
    """Output length of MaxPool/AvgPool along one axis, including PyTorch's ceil_mode rule.

    With ceil_mode the last window may hang over the edge, but it must start inside the
    input or the left padding; PyTorch drops a window that would start in the right padding.
    """
    span = size + 2 * padding - dilation * (kernel - 1) - 1
    if not ceil_mode:
        return span // stride + 1
    out = -(-span // stride) + 1
    if (out - 1) * stride >= size + padding:
        out -= 1
    return out


def receptive_field(layers: list[tuple[int, int, int]]) -> int:
    """Receptive field of a stack of (kernel, stride, dilation) layers, on one axis.

    Each layer widens the field by (k − 1)·d input steps of the layer below, and one step
    there spans the product of all earlier strides in input pixels.
    """
    field, jump = 1, 1
    for kernel, stride, dilation in layers:
        field += (kernel - 1) * dilation * jump
        jump *= stride
    return field
