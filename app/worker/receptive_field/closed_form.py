"""Receptive fields in closed form, along one axis: a chain of conv/pool layers and one
transposed convolution.

These are the formulas the answers teach (`r ← r + d·(k − 1)·j`, `j ← j·s`); they hold while
every layer steps by whole input positions. Through a stack that also scatters (a transposed
conv), `tracker.ReceptiveFieldTracker` follows each output position instead
(`spans.Span`), and the tests hold both to autograd.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from app.worker.arithmetic import effective_kernel


def conv_transpose_receptive_field(kernel: int, stride: int = 1, dilation: int = 1) -> int:
    """Input positions one ConvTranspose2d output reads at most, along one axis.

    Output `o` takes input `i` when `o + p = i·s + d·t` for a tap `t < k`; the taps that land on
    one output step by `s / gcd(d, s)`, so at most `⌈k·g/s⌉` of them, `d/g` inputs apart.
    """
    g = math.gcd(dilation, stride)
    taps = -(-kernel * g // stride)
    return (taps - 1) * dilation // g + 1


def receptive_field(layers: Sequence[tuple[int, ...]]) -> int:
    """Receptive field, in input positions along one axis, of a chain of conv/pool layers.

    Each layer is `(kernel, stride)` or `(kernel, stride, dilation)`. Going up the stack,
    `r ← r + d·(k − 1)·j` and `j ← j·s`, where `j` is the jump: input positions between
    neighbouring outputs of the layer so far. Padding moves the field but never widens it.
    """
    field, jump = 1, 1
    for layer in layers:
        kernel, stride = layer[0], layer[1]
        dilation = layer[2] if len(layer) > 2 else 1
        field += (effective_kernel(kernel, dilation) - 1) * jump
        jump *= stride
    return field
