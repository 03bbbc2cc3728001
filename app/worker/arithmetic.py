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
