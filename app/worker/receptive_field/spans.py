"""Which input positions each output position reads, along one axis, followed through layers.

The receptive field of a stack is usually computed with a size and a jump (`r ← r + (k−1)·j`,
`j ← j·s`). That is exact while every layer steps by a whole number of input positions, but a
transposed convolution divides the jump: after `ConvTranspose2d(k=2, s=2)` neighbouring
outputs are half a position apart on average, really 0 or 1 position apart in turn, and a
window summed from the average jump comes out too small. Here every output position keeps the
whole input positions it reads instead:

- a `Span` says, for the output positions `o = q·period + r`, that `o` reads input positions
  `bounds[r][0] + q·step … bounds[r][1] + q·step` (or none at all, for the positions a
  transposed conv with a stride larger than its kernel leaves empty);
- a layer is given by the positions of its own input that each of its outputs reads
  (`reads(o)`, repeating with `reads(o + period) = reads(o) + shift`), and composing the two is
  a lookup per output position of one new period.

Positions are on an unbounded grid: padding shifts them and borders are ignored, which is what
the theoretical receptive field means. The receptive field is then the widest
`hi − lo + 1` over the positions of one period, counted in whole input pixels.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction

# Beyond this many output positions per period (or taps to look up) the layout is given up as
# unknown rather than computed slowly; real stacks stay in the tens.
MAX_PERIOD = 1 << 16
MAX_LOOKUPS = 1 << 22

Bounds = tuple[int, int] | None


class TooIrregular(ValueError):
    """The pattern of positions repeats too rarely to be followed."""


@dataclass(frozen=True)
class Span:
    """Input positions read by each output position along one axis (see the module docstring).

    `period` ≥ 1 output positions repeat the pattern, `step` input positions further on.
    """

    period: int
    step: int
    bounds: tuple[Bounds, ...]

    @classmethod
    def identity(cls) -> Span:
        """An input axis: position `o` is input pixel `o`."""
        return cls(1, 1, ((0, 0),))

    def at(self, position: int) -> Bounds:
        """The first and last input position output `position` reads; None when it reads none."""
        turns, offset = divmod(position, self.period)
        found = self.bounds[offset]
        if found is None:
            return None
        return found[0] + turns * self.step, found[1] + turns * self.step

    @property
    def size(self) -> int:
        """The receptive field along this axis: the widest `hi − lo + 1`, in whole pixels
        (0 when no output reads any input, only a bias)."""
        return max((hi - lo + 1 for lo, hi in filter(None, self.bounds)), default=0)

    @property
    def jump(self) -> Fraction:
        """Input positions between neighbouring outputs, on average."""
        return Fraction(self.step, self.period)

    def through(self, reads: Callable[[int], Iterable[int]], period: int, shift: int) -> Span:
        """This axis followed through one more layer whose output `o` reads the positions
        `reads(o)` of this span's outputs, with `reads(o + period) = reads(o) + shift`.

        Raises TooIrregular when the combined pattern would repeat only after more than
        MAX_PERIOD positions.
        """
        repeats = self.period // math.gcd(shift, self.period)
        new_period = period * repeats  # `reads` moves by a whole number of our periods
        if new_period > MAX_PERIOD:
            raise TooIrregular(f"the positions repeat only every {new_period}")
        new_step = repeats * shift // self.period * self.step
        bounds: list[Bounds] = []
        lookups = 0
        for output in range(new_period):
            low: int | None = None
            high: int | None = None
            for position in reads(output):
                lookups += 1
                found = self.at(position)
                if found is None:
                    continue
                low = found[0] if low is None else min(low, found[0])
                high = found[1] if high is None else max(high, found[1])
            if lookups > MAX_LOOKUPS:
                raise TooIrregular("too many positions to follow")
            bounds.append(None if low is None or high is None else (low, high))
        return Span(new_period, new_step, tuple(bounds))

    def window(self, kernel: int, stride: int, dilation: int, padding: int) -> Span:
        """Through a convolution or pooling window: output `o` reads `o·s − p + d·t`, `t < k`
        (PyTorch's Conv2d/MaxPool2d/AvgPool2d, `padding` being the padding before)."""
        return self.through(
            lambda o: range(
                o * stride - padding, o * stride - padding + dilation * kernel, dilation
            ),
            period=1,
            shift=stride,
        )

    def transposed(self, kernel: int, stride: int, dilation: int, padding: int) -> Span:
        """Through ConvTranspose2d: input `i` adds into output `i·s − p + d·t` for each tap
        `t < k`, so output `o` reads every `i` with `i·s = o + p − d·t` (output_padding only
        adds positions at the end)."""

        def reads(o: int) -> Iterator[int]:
            for tap in range(kernel):
                scattered = o + padding - dilation * tap
                if scattered % stride == 0:
                    yield scattered // stride

        return self.through(reads, period=stride, shift=1)

    def adaptive(self, size: int, out: int) -> Span:
        """Through adaptive pooling from `size` to `out` positions: output `i` reads
        `⌊i·n/m⌋ … ⌈(i+1)·n/m⌉ − 1` (PyTorch's start and end indices)."""
        common = math.gcd(size, out)
        return self.through(
            lambda i: range(i * size // out, -(-(i + 1) * size // out)),
            period=out // common,
            shift=size // common,
        )


def union(spans: Sequence[Span]) -> Span:
    """Per output position, everything any of `spans` reads (a sum or concatenation of
    branches on the same grid). Raises TooIrregular when the branches step differently."""
    if len({span.jump for span in spans}) != 1:
        raise TooIrregular("the branches' positions do not line up")
    period = math.lcm(*(span.period for span in spans))
    if period > MAX_PERIOD:
        raise TooIrregular(f"the positions repeat only every {period}")
    first = spans[0]
    step = period // first.period * first.step
    bounds: list[Bounds] = []
    for output in range(period):
        found = [b for span in spans if (b := span.at(output)) is not None]
        bounds.append((min(b[0] for b in found), max(b[1] for b in found)) if found else None)
    return Span(period, step, tuple(bounds))
