"""A stack of layers typed as text, one per line, turned into `nn.Sequential` and summarised.

    conv 64 k7 s2 p3 nobias     Conv2d to 64 channels, 7×7, stride 2, padding 3, no bias
    bn                          BatchNorm2d
    relu
    maxpool k3 s2 p1
    dwconv k3 p=same            depthwise: groups = channels in = channels out
    pwconv 128                  pointwise: a 1×1 conv
    convT 64 k4 s2 p1           ConvTranspose2d
    avgpool k2                  the stride defaults to the kernel
    gap                         global average pooling: AdaptiveAvgPool2d(1)
    flatten
    dropout 0.5
    linear 1000

Options: `k`, `s`, `p`, `d` take `3` or `3x5` (rows × columns); `p=same` / `p=valid`; `g4`
groups; `op1` output padding; `nobias`; `ceil` (pooling). Every line is checked with the same
rules as the one-layer calculator, so an error names the line and the field.
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass, replace

import torch
from torch import nn

from app.worker.errors import InvalidInput, relabel
from app.worker.layer_spec import MAX_CHANNELS, MAX_SIZE, LayerSpec
from app.worker.layers import LayerResult, build_module, compute_layer
from app.worker.numbers import parse_float, parse_int
from app.worker.summary import ModelSummary, summarize

MAX_LINES = 64
MAX_TEXT = 4000

CONV_OPS = {"conv": "conv2d", "dwconv": "conv2d", "pwconv": "conv2d", "convt": "conv_transpose2d"}
POOL_OPS = {"maxpool": "max_pool2d", "avgpool": "avg_pool2d"}
ACTIVATIONS: dict[str, tuple[str, type[nn.Module]]] = {
    "relu": ("nn.ReLU()", nn.ReLU),
    "relu6": ("nn.ReLU6()", nn.ReLU6),
    "gelu": ("nn.GELU()", nn.GELU),
    "silu": ("nn.SiLU()", nn.SiLU),
    "sigmoid": ("nn.Sigmoid()", nn.Sigmoid),
    "tanh": ("nn.Tanh()", nn.Tanh),
    "identity": ("nn.Identity()", nn.Identity),
}
OTHER_OPS = ("bn", "gap", "adaptiveavgpool", "flatten", "dropout", "linear")
KNOWN_OPS: tuple[str, ...] = (*CONV_OPS, *POOL_OPS, *ACTIVATIONS, *OTHER_OPS)

EXAMPLE = """conv 64 k7 s2 p3 nobias
bn
relu
maxpool k3 s2 p1
dwconv k3 p1
pwconv 128
relu
gap
flatten
linear 10
"""

_OPTION = re.compile(r"^(k|s|p|d|g|op)=?([0-9]+(?:x[0-9]+)?|same|valid)$", re.ASCII)


@dataclass(frozen=True)
class StackLine:
    number: int
    text: str
    module: str  # the PyTorch constructor, as in the code shown


def _problem(number: int, text: str, message: str) -> InvalidInput:
    return InvalidInput("layers", f"line {number} (`{text}`): {message}")


class _Line:
    """One line being read: its number and text, for messages that point at it."""

    def __init__(self, number: int, text: str) -> None:
        self.number, self.text = number, text
        op, *self.words = text.split()
        self.op = op.lower()

    def problem(self, message: str) -> InvalidInput:
        return _problem(self.number, self.text, message)

    def count(self, word: str | None, what: str) -> int:
        if word is None or not word.isascii() or not word.isdigit():
            raise self.problem(f"needs {what} as a whole number, e.g. `{self.op} 64`")
        value = parse_int(word, field="layers")
        if not 1 <= value <= MAX_CHANNELS:
            raise self.problem(f"{what} must be between 1 and {MAX_CHANNELS:,} (got {value:,})")
        return value

    def no_options(self, words: list[str]) -> None:
        if words:
            raise self.problem(f"takes no options (got {' '.join(words)!r})")

    def options(self, words: list[str]) -> dict[str, object]:
        found: dict[str, object] = {}
        for word in words:
            lowered = word.lower()
            if lowered in ("nobias", "ceil"):
                found["bias" if lowered == "nobias" else "ceil_mode"] = lowered == "ceil"
                continue
            match = _OPTION.match(lowered)
            if not match:
                raise self.problem(
                    f"cannot read {word!r}; options are k3, s2, p1, p=same, d2, g4, op1, nobias, ceil"
                )
            key, value = match.groups()
            if value in ("same", "valid") and key != "p":
                raise self.problem(f"only padding takes {value!r}")
            found[_OPTION_NAMES[key]] = value if value in ("same", "valid") else _size(value)
        return found

    def calculated(self, spec: LayerSpec) -> LayerResult:
        try:
            return compute_layer(spec)
        except InvalidInput as error:
            name = STACK_WORDS.get(error.field, error.field)
            raise self.problem(f"{name}: {relabel(error.message, STACK_WORDS)}") from None


# The one-layer calculator's fields as this little language writes them.
STACK_WORDS = {
    "kernel_size": "kernel `k`",
    "stride": "stride `s`",
    "padding": "padding `p`",
    "dilation": "dilation `d`",
    "groups": "groups `g`",
    "output_padding": "output padding `op`",
    "out_channels": "output channels",
    "in_channels": "input channels",
    "bias": "`nobias`",
    "ceil_mode": "`ceil`",
}

_OPTION_NAMES = {
    "k": "kernel_size",
    "s": "stride",
    "p": "padding",
    "d": "dilation",
    "g": "groups",
    "op": "output_padding",
}


def _size(value: str) -> int | tuple[int, int]:
    if "x" in value:
        rows, cols = value.split("x")
        return int(rows), int(cols)
    return int(value)


def _spatial(line: _Line, shape: tuple[int, ...]) -> tuple[int, int, int]:
    if len(shape) != 3:
        raise line.problem("needs a C×H×W input, but the layers above flattened it")
    return shape[0], shape[1], shape[2]


Built = tuple[str, nn.Module, tuple[int, ...]]


def _calculator_layer(line: _Line, shape: tuple[int, ...]) -> Built:
    """conv, dwconv, pwconv, convT, maxpool, avgpool: checked by the one-layer calculator."""
    c, h, w = _spatial(line, shape)
    words = line.words
    if line.op in POOL_OPS:
        options = line.options(words)
        options.setdefault("kernel_size", 2)
        spec = LayerSpec(POOL_OPS[line.op], c, h, w, **options)  # type: ignore[arg-type]
    else:
        if line.op == "dwconv":
            out = c
            options = line.options(words)
            options.setdefault("groups", c)
        else:
            out = line.count(words[0] if words else None, "the output channels")
            options = line.options(words[1:])
        options.setdefault("kernel_size", 1 if line.op == "pwconv" else 3)
        spec = LayerSpec(CONV_OPS[line.op], c, h, w, out, **options)  # type: ignore[arg-type]
    result = line.calculated(spec)
    return result.module, build_module(result.layer), result.output_shape


def _other_layer(line: _Line, shape: tuple[int, ...]) -> Built:
    op, words = line.op, line.words
    if op in ACTIVATIONS:
        line.no_options(words)
        constructor, module_type = ACTIVATIONS[op]
        return constructor, module_type(), shape
    if op == "bn":
        line.no_options(words)
        c, _, _ = _spatial(line, shape)
        return f"nn.BatchNorm2d({c})", nn.BatchNorm2d(c), shape
    if op in ("gap", "adaptiveavgpool"):
        c, _, _ = _spatial(line, shape)
        size = 1
        if op == "adaptiveavgpool" and words:
            size = line.count(words[0], "the output size")
            words = words[1:]
        line.no_options(words)
        if size > MAX_SIZE:
            raise line.problem(f"the output size must be at most {MAX_SIZE}")
        return f"nn.AdaptiveAvgPool2d({size})", nn.AdaptiveAvgPool2d(size), (c, size, size)
    if op == "flatten":
        line.no_options(words)
        return "nn.Flatten()", nn.Flatten(), (math.prod(shape),)
    if op == "dropout":
        probability = 0.5
        if words:
            try:
                probability = parse_float(words[0], field="layers")
            except InvalidInput:
                raise line.problem(f"the probability must be a number (got {words[0]!r})") from None
            if not 0 <= probability < 1:
                raise line.problem(f"the probability must be in [0, 1) (got {words[0]})")
            line.no_options(words[1:])
        return f"nn.Dropout(p={probability})", nn.Dropout(probability), shape
    if op == "linear":
        if len(shape) != 1:
            raise line.problem(
                "needs a flat input: add `flatten` (or `gap` then `flatten`) above it; "
                "on a C×H×W map nn.Linear would act on the last axis alone"
            )
        out = line.count(words[0] if words else None, "the output features")
        options = line.options(words[1:])
        if set(options) - {"bias"}:
            raise line.problem("linear takes only `nobias`")
        bias = bool(options.get("bias", True))
        constructor = f"nn.Linear({shape[0]}, {out}{'' if bias else ', bias=False'})"
        return constructor, nn.Linear(shape[0], out, bias=bias), (out,)
    raise line.problem(f"unknown layer {op!r}; known: {', '.join(KNOWN_OPS)}")


def parse_stack(
    text: str, input_shape: tuple[int, int, int]
) -> tuple[nn.Sequential, list[StackLine]]:
    """Parse and check `text` against a C×H×W input; build the stack on the meta device."""
    if len(text) > MAX_TEXT:
        raise InvalidInput("layers", f"must be at most {MAX_TEXT} characters (got {len(text)})")
    # NFKC first (app.worker.numbers): `conv ² k3` reads as `conv 2 k3`, never as a crash.
    text = unicodedata.normalize("NFKC", text)
    lines = [
        _Line(number, code)
        for number, raw in enumerate(text.splitlines(), start=1)
        if (code := raw.split("#", 1)[0].strip())
    ]
    if not lines:
        raise InvalidInput("layers", "add at least one layer, e.g. `conv 64 k3 p1`")
    if len(lines) > MAX_LINES:
        raise InvalidInput("layers", f"at most {MAX_LINES} layers (got {len(lines)})")
    shape: tuple[int, ...] = input_shape
    modules: list[nn.Module] = []
    parsed: list[StackLine] = []
    with torch.device("meta"):
        for line in lines:
            if line.op in CONV_OPS or line.op in POOL_OPS:
                constructor, module, shape = _calculator_layer(line, shape)
            else:
                constructor, module, shape = _other_layer(line, shape)
            parsed.append(StackLine(line.number, line.text, constructor))
            modules.append(module)
    return nn.Sequential(*modules).eval(), parsed


def stack_code(
    lines: list[StackLine], input_shape: tuple[int, int, int], summary: ModelSummary
) -> str:
    body = "\n".join(f"    {line.module},  # {line.text}" for line in lines)
    shape = ", ".join(str(n) for n in (1, *summary.output_shape))
    c, h, w = input_shape
    return (
        "import torch\nfrom torch import nn\n\n"
        f"model = nn.Sequential(\n{body}\n).eval()\n"
        f"x = torch.randn(1, {c}, {h}, {w})\n"
        f"print(model(x).shape)  # torch.Size([{shape}])\n"
        f"print(sum(p.numel() for p in model.parameters()))  # {summary.total_params}\n"
    )


def summarize_stack(
    text: str, in_channels: int = 3, height: int = 224, width: int = 224
) -> ModelSummary:
    """The per-layer table of the typed stack on one in_channels×height×width input."""
    # The input fields are checked, and named, as in the one-layer calculator.
    LayerSpec("avg_pool2d", in_channels, height, width, kernel_size=1).validate()
    shape = (in_channels, height, width)
    model, lines = parse_stack(text, shape)
    summary = summarize(model, shape, label="stack")
    # Name each row after the line that made it (nn.Sequential calls them "0", "1", …).
    rows = tuple(replace(row, name=lines[int(row.name)].text) for row in summary.rows)
    return replace(summary, rows=rows, code=stack_code(lines, shape, summary))
