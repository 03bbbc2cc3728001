"""One layer's settings (`LayerSpec`) and their checks, giving a `ValidLayer` or an error.

`LayerSpec.validate` rejects, with the field's name, exactly the settings PyTorch rejects, plus
non-positive sizes, the size limits below, and any setting the layer's kind has no use for.
The output sizes are worked out here too: a layer whose output would be empty is refused.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from typing import Literal, get_args

from app.worker import arithmetic as ar
from app.worker.errors import InvalidInput

LayerKind = Literal["conv2d", "conv_transpose2d", "max_pool2d", "avg_pool2d", "linear"]
LAYER_KINDS: tuple[str, ...] = get_args(LayerKind)

# Sizes beyond these are typos, not layers; every count stays exact (Python ints) below them.
MAX_CHANNELS = 65_536
MAX_SIZE = 16_384

Pair = tuple[int, int]
PairInput = int | Sequence[int]
PaddingInput = int | Sequence[int] | str

MODULE_NAMES: dict[str, str] = {
    "conv2d": "nn.Conv2d",
    "conv_transpose2d": "nn.ConvTranspose2d",
    "max_pool2d": "nn.MaxPool2d",
    "avg_pool2d": "nn.AvgPool2d",
    "linear": "nn.Linear",
}


# The settings each kind has no use for: refused when given, never silently ignored.
UNUSED_FIELDS: dict[str, tuple[str, ...]] = {
    "conv2d": ("ceil_mode", "output_padding"),
    "conv_transpose2d": ("ceil_mode",),
    "max_pool2d": ("out_channels", "groups", "bias", "output_padding"),
    "avg_pool2d": ("out_channels", "groups", "bias", "output_padding", "dilation"),
    "linear": ("kernel_size", "stride", "padding", "dilation", "groups", "ceil_mode",
               "output_padding"),
}  # fmt: skip
FIELD_WORDS = {
    "out_channels": "output channels",
    "kernel_size": "kernel",
    "output_padding": "output padding",
    "ceil_mode": "ceil mode",
}


def refuse_unused(kind: str, given: Sequence[str]) -> None:
    """Raise InvalidInput naming the first of the `given` settings that `kind` has no use for."""
    module = MODULE_NAMES[kind].removeprefix("nn.")
    for name in UNUSED_FIELDS[kind]:
        if name in given:
            raise InvalidInput(name, f"{module} has no {FIELD_WORDS.get(name, name)}; leave it out")


def check_count(field: str, value: object, low: int, high: int) -> int:
    """An integer in [low, high], or InvalidInput naming `field`."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(field, f"must be a whole number (got {value!r})")
    if not low <= value <= high:
        raise InvalidInput(field, f"must be between {low:,} and {high:,} (got {value:,})")
    return value


def check_pair(field: str, value: object, low: int, high: int) -> Pair:
    """An int (used for both axes) or a pair `[h, w]`, each in [low, high]."""
    if isinstance(value, int) and not isinstance(value, bool):
        number = check_count(field, value, low, high)
        return number, number
    if isinstance(value, Sequence) and not isinstance(value, str) and len(value) == 2:
        return check_count(field, value[0], low, high), check_count(field, value[1], low, high)
    raise InvalidInput(field, f"must be a whole number or a pair [height, width] (got {value!r})")


def format_pair(pair: Pair) -> str:
    """`3` for (3, 3), `(3, 5)` otherwise: a size as PyTorch code writes it."""
    return str(pair[0]) if pair[0] == pair[1] else f"({pair[0]}, {pair[1]})"


@dataclass(frozen=True)
class LayerSpec:
    """One layer applied to one C×H×W image. A field the kind does not use (UNUSED_FIELDS) must
    keep its default: `validate` refuses it otherwise, naming the field.

    `out_channels` is the Linear layer's `out_features`; a Linear layer here sees the input
    flattened (`in_features = C·H·W`), as after `nn.Flatten()`.
    """

    kind: LayerKind = "conv2d"
    in_channels: int = 3
    height: int = 224
    width: int = 224
    out_channels: int = 64
    kernel_size: PairInput = 3
    stride: PairInput | None = None  # None: 1 for convolutions, the kernel for pooling
    padding: PaddingInput = 0  # conv2d also takes "same" or "valid"
    dilation: PairInput = 1
    groups: int = 1
    bias: bool = True
    ceil_mode: bool = False  # pooling: round the output size up
    output_padding: PairInput = 0  # conv_transpose2d only

    def validate(self) -> ValidLayer:
        """Check every field; the first problem raises InvalidInput naming its field."""
        if self.kind not in LAYER_KINDS:
            raise InvalidInput(
                "kind", f"must be one of {', '.join(LAYER_KINDS)} (got {self.kind!r})"
            )
        self._refuse_unused()
        channels = check_count("in_channels", self.in_channels, 1, MAX_CHANNELS)
        height = check_count("height", self.height, 1, MAX_SIZE)
        width = check_count("width", self.width, 1, MAX_SIZE)
        if self.kind == "linear":
            out = check_count("out_channels", self.out_channels, 1, MAX_CHANNELS)
            return ValidLayer(self.kind, channels, height, width, out, bias=bool(self.bias))
        kernel = check_pair("kernel_size", self.kernel_size, 1, MAX_SIZE)
        pooling = self.kind in ("max_pool2d", "avg_pool2d")
        default_stride = kernel if pooling else (1, 1)
        stride = (
            default_stride
            if self.stride is None
            else check_pair("stride", self.stride, 1, MAX_SIZE)
        )
        dilation = check_pair("dilation", self.dilation, 1, MAX_SIZE)
        valid = ValidLayer(
            self.kind, channels, height, width, out_channels=channels, kernel=kernel,
            stride=stride, dilation=dilation, bias=bool(self.bias), ceil_mode=bool(self.ceil_mode),
        )  # fmt: skip
        if pooling:
            return _validate_pool(valid, self.padding)
        out = check_count("out_channels", self.out_channels, 1, MAX_CHANNELS)
        groups = check_count("groups", self.groups, 1, MAX_CHANNELS)
        if channels % groups:
            raise InvalidInput("groups", f"must divide in_channels ({channels}); got {groups}")
        if out % groups:
            raise InvalidInput("groups", f"must divide out_channels ({out}); got {groups}")
        valid = replace(valid, out_channels=out, groups=groups)
        if self.kind == "conv_transpose2d":
            return _validate_conv_transpose(valid, self.padding, self.output_padding)
        return _validate_conv(valid, self.padding)

    def _refuse_unused(self) -> None:
        defaults = {f.name: f.default for f in fields(self)}
        changed = [f.name for f in fields(self) if getattr(self, f.name) != defaults[f.name]]
        refuse_unused(self.kind, changed)


@dataclass(frozen=True)
class ValidLayer:
    """A LayerSpec after validation: pairs resolved, padding as ((top, bottom), (left, right))."""

    kind: LayerKind
    in_channels: int
    height: int
    width: int
    out_channels: int
    kernel: Pair = (1, 1)
    stride: Pair = (1, 1)
    padding: tuple[Pair, Pair] = ((0, 0), (0, 0))
    dilation: Pair = (1, 1)
    groups: int = 1
    bias: bool = True
    ceil_mode: bool = False
    output_padding: Pair = (0, 0)
    padding_mode: str = ""  # "same" or "valid" when given as a word

    @property
    def symmetric_padding(self) -> Pair:
        return self.padding[0][0], self.padding[1][0]


def _padding_pair(value: PaddingInput) -> Pair:
    return check_pair("padding", value, 0, MAX_SIZE)


def _too_small(axis: str, kernel: int, dilation: int, padded: int) -> InvalidInput:
    """The window does not fit the padded input. Blamed on the dilation when the kernel alone
    would fit, so that the message points at the setting that made it too wide."""
    span = ar.effective_kernel(kernel, dilation)
    if dilation > 1 and kernel <= padded:
        return InvalidInput(
            "dilation",
            f"with dilation {dilation} the {kernel}-tap kernel spans {span} {axis}, but the "
            f"padded input has only {padded}; the output would be empty",
        )
    return InvalidInput(
        "kernel_size",
        f"the window spans {span} {axis} but the padded input has only {padded}; "
        "the output would be empty",
    )


def _validate_conv(layer: ValidLayer, padding: PaddingInput) -> ValidLayer:
    if isinstance(padding, str):
        if padding not in ("same", "valid"):
            raise InvalidInput(
                "padding", f"must be a number, a pair, 'same' or 'valid' (got {padding!r})"
            )
        if padding == "same" and layer.stride != (1, 1):
            raise InvalidInput(
                "stride",
                f"must be 1 when padding is 'same' (got {format_pair(layer.stride)}); "
                "PyTorch has no strided 'same' convolution",
            )
        pads: tuple[Pair, Pair]
        if padding == "same":
            pads = (
                ar.same_padding(layer.kernel[0], layer.dilation[0]),
                ar.same_padding(layer.kernel[1], layer.dilation[1]),
            )
        else:
            pads = ((0, 0), (0, 0))
        layer = replace(layer, padding=pads, padding_mode=padding)
    else:
        ph, pw = _padding_pair(padding)
        layer = replace(layer, padding=((ph, ph), (pw, pw)))
    for axis, size, kernel, dilation, (before, after) in (
        ("rows", layer.height, layer.kernel[0], layer.dilation[0], layer.padding[0]),
        ("columns", layer.width, layer.kernel[1], layer.dilation[1], layer.padding[1]),
    ):
        if size + before + after < ar.effective_kernel(kernel, dilation):
            raise _too_small(axis, kernel, dilation, size + before + after)
    return layer


def _validate_conv_transpose(
    layer: ValidLayer, padding: PaddingInput, output_padding: PairInput
) -> ValidLayer:
    if isinstance(padding, str):
        raise InvalidInput("padding", "ConvTranspose2d takes a number or a pair, not a word")
    ph, pw = _padding_pair(padding)
    extra = check_pair("output_padding", output_padding, 0, MAX_SIZE)
    for index in (0, 1):
        if extra[index] >= max(layer.stride[index], layer.dilation[index]):
            raise InvalidInput(
                "output_padding",
                f"must be smaller than the stride or the dilation (got {format_pair(extra)} with "
                f"stride {format_pair(layer.stride)} and dilation {format_pair(layer.dilation)})",
            )
    layer = replace(layer, padding=((ph, ph), (pw, pw)), output_padding=extra)
    out = conv_transpose_size(layer)
    if min(out) < 1:
        raise InvalidInput(
            "padding", f"is too large: the output would be {out[0]}×{out[1]}, which is empty"
        )
    return layer


def _validate_pool(layer: ValidLayer, padding: PaddingInput) -> ValidLayer:
    if isinstance(padding, str):
        raise InvalidInput("padding", "pooling takes a number or a pair, not a word")
    pads = _padding_pair(padding)
    for index in (0, 1):
        # PyTorch's CPU kernels allow at most half the kernel (not the dilated span) of padding.
        limit = layer.kernel[index] // 2
        if pads[index] > limit:
            raise InvalidInput(
                "padding",
                f"must be at most half the kernel ({limit}) for pooling (got {format_pair(pads)})",
            )
    layer = replace(layer, padding=((pads[0], pads[0]), (pads[1], pads[1])))
    out = pool_size(layer)
    if min(out) < 1:
        axis, size, index = ("rows", layer.height, 0) if out[0] < 1 else ("columns", layer.width, 1)
        padded = size + 2 * pads[index]
        raise _too_small(axis, layer.kernel[index], layer.dilation[index], padded)
    return layer


def conv_size(layer: ValidLayer) -> Pair:
    (top, bottom), (left, right) = layer.padding
    # Asymmetric "same" padding: the formula with the total padding, written as 2p.
    height = (
        layer.height + top + bottom - ar.effective_kernel(layer.kernel[0], layer.dilation[0])
    ) // layer.stride[0] + 1
    width = (
        layer.width + left + right - ar.effective_kernel(layer.kernel[1], layer.dilation[1])
    ) // layer.stride[1] + 1
    return height, width


def conv_transpose_size(layer: ValidLayer) -> Pair:
    ph, pw = layer.symmetric_padding
    return (
        ar.conv_transpose_output_size(
            layer.height,
            layer.kernel[0],
            layer.stride[0],
            ph,
            layer.output_padding[0],
            layer.dilation[0],
        ),
        ar.conv_transpose_output_size(
            layer.width,
            layer.kernel[1],
            layer.stride[1],
            pw,
            layer.output_padding[1],
            layer.dilation[1],
        ),
    )


def pool_size(layer: ValidLayer) -> Pair:
    ph, pw = layer.symmetric_padding
    return (
        ar.pool_output_size(
            layer.height, layer.kernel[0], layer.stride[0], ph, layer.dilation[0], layer.ceil_mode
        ),
        ar.pool_output_size(
            layer.width, layer.kernel[1], layer.stride[1], pw, layer.dilation[1], layer.ceil_mode
        ),
    )
