"""Max pooling vs average pooling vs a strided convolution, on a photo and on a grid of numbers.

For each of the three, on the same kernel and stride: the output, which input cells each
output reads, and where the gradient of an output goes, computed by autograd:

- max pooling sends all of it to the one input that won its window;
- average pooling spreads it evenly, 1/k² to every input of the window;
- a strided convolution sends each input its kernel weight.

On the grid the gradients are per output cell (the full Jacobian); on the photo, the gradient
of the sum of all outputs shows the pattern over the whole image.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from app.worker.errors import InvalidInput
from app.worker.images import data_uri, to_rgb
from app.worker.numbers import as_finite_float, parse_float

Method = Literal["max", "avg", "conv"]
METHODS: tuple[Method, ...] = ("max", "avg", "conv")
METHOD_TITLES = {"max": "Max pooling", "avg": "Average pooling", "conv": "Strided convolution"}

ConvWeights = Literal["edges", "blur", "subsample"]
CONV_WEIGHTS: tuple[str, ...] = get_args(ConvWeights)

MAX_GRID = 12
MAX_KERNEL = 16
PHOTO_SIDE = 256

EXAMPLE_GRID = (
    (1, 3, 2, 1, 0, 4),
    (5, 6, 1, 2, 3, 1),
    (0, 2, 9, 4, 1, 1),
    (3, 1, 2, 8, 0, 2),
    (4, 0, 1, 1, 7, 3),
    (2, 2, 3, 0, 1, 5),
)


@dataclass(frozen=True)
class PoolingSpec:
    kernel: int = 2
    stride: int | None = None  # None: the kernel (non-overlapping windows)
    conv_weights: ConvWeights = "edges"

    @property
    def step(self) -> int:
        return self.kernel if self.stride is None else self.stride

    def validate(self, height: int, width: int) -> None:
        for name, value in (("kernel", self.kernel), ("stride", self.step)):
            if isinstance(value, bool) or not isinstance(value, int):
                raise InvalidInput(name, f"must be a whole number (got {value!r})")
            if not 1 <= value <= MAX_KERNEL:
                raise InvalidInput(name, f"must be between 1 and {MAX_KERNEL} (got {value})")
        if self.kernel > min(height, width):
            raise InvalidInput(
                "kernel",
                f"must fit the input: at most {min(height, width)} here (got {self.kernel})",
            )
        if self.conv_weights not in CONV_WEIGHTS:
            raise InvalidInput(
                "conv_weights",
                f"must be one of {', '.join(CONV_WEIGHTS)} (got {self.conv_weights!r})",
            )


def conv_kernel(kind: str, size: int) -> torch.Tensor:
    """A fixed k×k kernel: edges (left half −, right half +), blur (1/k²) or subsample (one tap)."""
    if kind == "blur":
        return torch.full((size, size), 1.0 / (size * size))
    kernel = torch.zeros(size, size)
    if kind == "subsample":
        kernel[0, 0] = 1.0
        return kernel
    half = size // 2
    if size == 1:
        kernel[0, 0] = 1.0
        return kernel
    kernel[:, :half] = -1.0 / (half * size)
    kernel[:, size - half :] = 1.0 / (half * size)
    return kernel


def apply(method: Method, x: torch.Tensor, spec: PoolingSpec) -> torch.Tensor:
    """One method on an N×C×H×W tensor (the conv runs per channel, with the same kernel)."""
    if method == "max":
        return F.max_pool2d(x, spec.kernel, spec.step)
    if method == "avg":
        return F.avg_pool2d(x, spec.kernel, spec.step)
    channels = x.shape[1]
    weight = conv_kernel(spec.conv_weights, spec.kernel).to(x.dtype)
    weight = weight.expand(channels, 1, spec.kernel, spec.kernel)
    return F.conv2d(x, weight, stride=spec.step, groups=channels)


def _window(row: int, col: int, spec: PoolingSpec) -> list[tuple[int, int]]:
    top, left = row * spec.step, col * spec.step
    return [(top + i, left + j) for i in range(spec.kernel) for j in range(spec.kernel)]


# --- the grid ------------------------------------------------------------------------------


def parse_grid(text: str) -> tuple[tuple[float, ...], ...]:
    """Rows of numbers separated by spaces or commas, one row per line."""
    rows: list[tuple[float, ...]] = []
    for number, line in enumerate(text.strip().splitlines(), start=1):
        cells = line.replace(",", " ").split()
        if not cells:
            continue
        try:
            values = tuple(parse_float(cell, field="grid") for cell in cells)
        except InvalidInput:
            raise InvalidInput("grid", f"row {number} has something that is not a number") from None
        if not all(math.isfinite(value) and abs(value) <= 1e6 for value in values):
            raise InvalidInput("grid", f"row {number}: numbers must be finite, within ±1,000,000")
        rows.append(values)
    return check_grid(rows)


def check_grid(rows: Sequence[Sequence[float]]) -> tuple[tuple[float, ...], ...]:
    if not 2 <= len(rows) <= MAX_GRID:
        raise InvalidInput("grid", f"needs 2 to {MAX_GRID} rows (got {len(rows)})")
    width = len(rows[0])
    if any(len(row) != width for row in rows):
        raise InvalidInput("grid", "every row needs the same number of values")
    if not 2 <= width <= MAX_GRID:
        raise InvalidInput("grid", f"needs 2 to {MAX_GRID} columns (got {width})")
    for row in rows:
        for value in row:
            # as_finite_float: a 400-digit JSON integer is out of range, not an OverflowError.
            as_finite_float(value, field="grid", limit=1e6)
    return tuple(tuple(float(value) for value in row) for row in rows)


@dataclass(frozen=True)
class GridMethod:
    method: Method
    title: str
    output: tuple[tuple[float, ...], ...]
    # reads[r][c]: the input cells output (r, c) reads
    reads: tuple[tuple[tuple[tuple[int, int], ...], ...], ...]
    # gradients[r][c]: d output[r, c] / d input, an input-sized grid (autograd)
    gradients: tuple[tuple[tuple[tuple[float, ...], ...], ...], ...]


@dataclass(frozen=True)
class GridPooling:
    spec: PoolingSpec
    grid: tuple[tuple[float, ...], ...]
    kernel_weights: tuple[tuple[float, ...], ...]
    methods: tuple[GridMethod, ...]

    @property
    def output_size(self) -> tuple[int, int]:
        first = self.methods[0].output
        return len(first), len(first[0])


def _rounded(values: torch.Tensor) -> tuple:  # type: ignore[type-arg]
    return tuple(_rounded(row) if row.dim() else round(float(row), 6) for row in values)


def pool_grid(rows: Sequence[Sequence[float]], spec: PoolingSpec) -> GridPooling:
    """All three methods on a small grid, with every output's gradient over the input."""
    grid = check_grid(rows)
    spec.validate(len(grid), len(grid[0]))
    x = torch.tensor(grid, dtype=torch.float64).reshape(1, 1, len(grid), len(grid[0]))
    methods = []
    for method in METHODS:

        def run(image: torch.Tensor, method: Method = method) -> torch.Tensor:
            return apply(method, image, spec)[0, 0]

        output = run(x)
        jacobian = torch.autograd.functional.jacobian(run, x)[:, :, 0, 0]  # out_h, out_w, H, W
        reads = tuple(
            tuple(tuple(_window(r, c, spec)) for c in range(output.shape[1]))
            for r in range(output.shape[0])
        )
        methods.append(
            GridMethod(method, METHOD_TITLES[method], _rounded(output), reads, _rounded(jacobian))
        )
    weights = _rounded(conv_kernel(spec.conv_weights, spec.kernel).double())
    return GridPooling(spec, grid, weights, tuple(methods))


# --- the photo -----------------------------------------------------------------------------


@dataclass(frozen=True)
class PhotoMethod:
    method: Method
    title: str
    output_uri: str
    output_size: tuple[int, int]
    gradient_uri: str
    gradient_share: float  # fraction of input values (pixels × channels) with any gradient


@dataclass(frozen=True)
class PhotoPooling:
    spec: PoolingSpec
    input_uri: str
    input_size: tuple[int, int]
    methods: tuple[PhotoMethod, ...]


def _to_image(values: torch.Tensor) -> Image.Image:
    array = (values.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    return Image.fromarray(np.ascontiguousarray(array))


def _gradient_image(gradient: torch.Tensor, peak: float) -> Image.Image:
    """|gradient| summed over channels; `peak` (shared by the three maps) is white."""
    magnitude = gradient.abs().sum(dim=0)
    scaled = magnitude / peak if peak > 0 else magnitude
    array = (scaled.clamp(0, 1) * 255).round().to(torch.uint8).numpy()
    return Image.fromarray(np.ascontiguousarray(array), mode="L")


def pool_photo(image: Image.Image, spec: PoolingSpec) -> PhotoPooling:
    """The three methods on an RGB photo fitted into 256×256, and their gradient maps."""
    photo = to_rgb(image)
    photo.thumbnail((PHOTO_SIDE, PHOTO_SIDE), Image.Resampling.LANCZOS)
    spec.validate(photo.height, photo.width)
    array = np.asarray(photo, dtype=np.float32) / 255.0
    x = torch.from_numpy(array).permute(2, 0, 1).unsqueeze(0).contiguous()
    outputs, gradients = [], []
    for method in METHODS:
        source = x.clone().requires_grad_(True)
        output = apply(method, source, spec)
        output.sum().backward()
        assert source.grad is not None
        outputs.append(output.detach()[0])
        gradients.append(source.grad[0])
    # One scale for the three maps, so "spread thin" looks dimmer than "all to the winner".
    peak = max(float(gradient.abs().sum(dim=0).max()) for gradient in gradients)
    methods = []
    for method, output, gradient in zip(METHODS, outputs, gradients, strict=True):
        shown = output * 2 + 0.5 if method == "conv" and spec.conv_weights == "edges" else output
        methods.append(
            PhotoMethod(
                method,
                METHOD_TITLES[method],
                data_uri(_to_image(shown)),
                (int(output.shape[1]), int(output.shape[2])),
                data_uri(_gradient_image(gradient, peak)),
                float((gradient != 0).float().mean()),
            )
        )
    input_uri = data_uri(photo, format="JPEG", quality=90)
    return PhotoPooling(spec, input_uri, (photo.height, photo.width), tuple(methods))


@dataclass(frozen=True)
class PoolingDemo:
    """The whole pooling view: the photo panel and the grid panel, on one kernel and stride."""

    photo: PhotoPooling
    grid: GridPooling


def pooling_demo(
    image: Image.Image, grid: Sequence[Sequence[float]], spec: PoolingSpec
) -> PoolingDemo:
    grid_result = pool_grid(grid, spec)  # checked first: the cheaper of the two
    return PoolingDemo(pool_photo(image, spec), grid_result)


def grid_text(rows: Sequence[Sequence[float]]) -> str:
    """Rows as the form's textarea shows them: `1 3 2` per line, integers without `.0`."""
    return "\n".join(" ".join(f"{value:g}" for value in row) for row in rows)
