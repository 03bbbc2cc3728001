"""One layer on a C×H×W input: output shape, parameters, MACs, receptive field and its code.

Everything here is closed-form (microseconds, no tensors); the tests hold every number to the
`torch.nn` module built from the same settings. The settings and their checks are in
`app.worker.layer_spec`.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from app.worker import arithmetic as ar
from app.worker.layer_spec import (
    MODULE_NAMES,
    LayerSpec,
    Pair,
    ValidLayer,
    conv_size,
    conv_transpose_size,
    format_pair,
    pool_size,
)
from app.worker.receptive_field import conv_transpose_receptive_field


@dataclass(frozen=True)
class LayerResult:
    """What one layer does to one image. Shapes leave out the batch axis."""

    layer: ValidLayer
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    params: int
    macs: int
    receptive_field: Pair  # input rows × columns that one output value depends on
    whole_input: bool  # a Linear layer reads every input value
    weight_shape: tuple[int, ...] | None
    module: str  # the constructor call, e.g. "nn.Conv2d(3, 64, kernel_size=7, ...)"
    code: str  # a runnable snippet that builds the layer and prints the same numbers

    @property
    def kind(self) -> str:
        return self.layer.kind


def module_call(layer: ValidLayer) -> str:
    """The PyTorch constructor for `layer`, with only the arguments that differ from defaults."""
    name = MODULE_NAMES[layer.kind]
    if layer.kind == "linear":
        features = layer.in_channels * layer.height * layer.width
        bias = "" if layer.bias else ", bias=False"
        return f"{name}({features}, {layer.out_channels}{bias})"
    args: list[str] = []
    if layer.kind in ("conv2d", "conv_transpose2d"):
        args += [str(layer.in_channels), str(layer.out_channels)]
    args.append(f"kernel_size={format_pair(layer.kernel)}")
    pooling = layer.kind in ("max_pool2d", "avg_pool2d")
    if (pooling and layer.stride != layer.kernel) or (not pooling and layer.stride != (1, 1)):
        args.append(f"stride={format_pair(layer.stride)}")
    if layer.padding_mode:
        args.append(f'padding="{layer.padding_mode}"')
    elif layer.symmetric_padding != (0, 0):
        args.append(f"padding={format_pair(layer.symmetric_padding)}")
    if layer.kind == "conv_transpose2d" and layer.output_padding != (0, 0):
        args.append(f"output_padding={format_pair(layer.output_padding)}")
    if layer.dilation != (1, 1):
        args.append(f"dilation={format_pair(layer.dilation)}")
    if layer.groups != 1:
        args.append(f"groups={layer.groups}")
    if not pooling and not layer.bias:
        args.append("bias=False")
    if pooling and layer.ceil_mode:
        args.append("ceil_mode=True")
    return f"{name}({', '.join(args)})"


def _snippet(layer: ValidLayer, module: str, output_shape: tuple[int, ...], params: int) -> str:
    shape = ", ".join(str(n) for n in (1, *output_shape))
    lines = [
        "import torch",
        "from torch import nn",
        "",
        f"layer = {module}",
        f"x = torch.randn(1, {layer.in_channels}, {layer.height}, {layer.width})",
    ]
    if layer.kind == "linear":
        lines.append("y = layer(x.flatten(1))")
    else:
        lines.append("y = layer(x)")
    lines.append(f"print(y.shape)  # torch.Size([{shape}])")
    if layer.kind not in ("max_pool2d", "avg_pool2d"):
        lines.append(f"print(sum(p.numel() for p in layer.parameters()))  # {params}")
    return "\n".join(lines) + "\n"


def compute_layer(spec: LayerSpec) -> LayerResult:
    """Validate `spec` and compute everything the shape calculator shows for it."""
    layer = spec.validate()
    c, h, w = layer.in_channels, layer.height, layer.width
    weight_shape: tuple[int, ...] | None
    if layer.kind == "linear":
        features = c * h * w
        out_shape: tuple[int, ...] = (layer.out_channels,)
        params = ar.linear_params(features, layer.out_channels, layer.bias)
        macs = ar.linear_macs(features, layer.out_channels)
        field, whole, weight_shape = (h, w), True, (layer.out_channels, features)
    elif layer.kind == "conv2d":
        oh, ow = conv_size(layer)
        out_shape = (layer.out_channels, oh, ow)
        params = ar.conv_params(c, layer.out_channels, layer.kernel, layer.groups, layer.bias)
        macs = ar.conv_macs(c, layer.out_channels, layer.kernel, (oh, ow), layer.groups)
        field = (
            ar.effective_kernel(layer.kernel[0], layer.dilation[0]),
            ar.effective_kernel(layer.kernel[1], layer.dilation[1]),
        )
        whole = False
        weight_shape = (layer.out_channels, c // layer.groups, *layer.kernel)
    elif layer.kind == "conv_transpose2d":
        oh, ow = conv_transpose_size(layer)
        out_shape = (layer.out_channels, oh, ow)
        params = ar.conv_transpose_params(
            c, layer.out_channels, layer.kernel, layer.groups, layer.bias
        )
        macs = ar.conv_transpose_macs(c, layer.out_channels, layer.kernel, (h, w), layer.groups)
        field = (
            conv_transpose_receptive_field(layer.kernel[0], layer.stride[0], layer.dilation[0]),
            conv_transpose_receptive_field(layer.kernel[1], layer.stride[1], layer.dilation[1]),
        )
        whole = False
        weight_shape = (c, layer.out_channels // layer.groups, *layer.kernel)
    else:
        oh, ow = pool_size(layer)
        out_shape = (c, oh, ow)
        params, macs = 0, 0  # comparisons and additions, not multiply-accumulates
        field = (
            ar.effective_kernel(layer.kernel[0], layer.dilation[0]),
            ar.effective_kernel(layer.kernel[1], layer.dilation[1]),
        )
        whole, weight_shape = False, None
    module = module_call(layer)
    return LayerResult(
        layer=layer,
        input_shape=(c, h, w),
        output_shape=out_shape,
        params=params,
        macs=macs,
        receptive_field=field,
        whole_input=whole,
        weight_shape=weight_shape,
        module=module,
        code=_snippet(layer, module, out_shape, params),
    )


def build_module(layer: ValidLayer) -> nn.Module:
    """The `torch.nn` module for a validated layer, on whatever device is current."""
    if layer.kind == "linear":
        features = layer.in_channels * layer.height * layer.width
        return nn.Linear(features, layer.out_channels, bias=layer.bias)
    padding: str | Pair = layer.padding_mode or layer.symmetric_padding
    if layer.kind == "conv2d":
        return nn.Conv2d(
            layer.in_channels,
            layer.out_channels,
            layer.kernel,
            layer.stride,
            padding,
            layer.dilation,
            layer.groups,
            layer.bias,
        )
    if layer.kind == "conv_transpose2d":
        return nn.ConvTranspose2d(
            layer.in_channels,
            layer.out_channels,
            layer.kernel,
            layer.stride,
            layer.symmetric_padding,
            layer.output_padding,
            layer.groups,
            layer.bias,
            layer.dilation,
        )
    if layer.kind == "max_pool2d":
        return nn.MaxPool2d(
            layer.kernel,
            layer.stride,
            layer.symmetric_padding,
            layer.dilation,
            ceil_mode=layer.ceil_mode,
        )
    return nn.AvgPool2d(layer.kernel, layer.stride, layer.symmetric_padding, layer.ceil_mode)
