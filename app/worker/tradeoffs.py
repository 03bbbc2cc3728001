"""What the same map costs built other ways: standard vs depthwise separable, 1×1 conv vs FC.

Both start from a conv2d result of the one-layer calculator and give the modules as PyTorch
code next to their exact parameter and MAC counts (closed form; the tests build the modules).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from app.worker import arithmetic as ar
from app.worker.layers import LayerResult, module_call


@dataclass(frozen=True)
class SeparableComparison:
    """The conv as set beside a depthwise k×k + pointwise 1×1 pair with the same output."""

    cost: ar.SeparableCost
    standard_module: str
    depthwise_module: str
    pointwise_module: str
    code: str


def separable_comparison(result: LayerResult) -> SeparableComparison:
    """Standard vs depthwise-separable for a conv2d result (groups=1 on the standard side)."""
    layer = result.layer
    out_size = (result.output_shape[1], result.output_shape[2])
    cost = ar.depthwise_separable_cost(
        layer.in_channels, layer.out_channels, layer.kernel, out_size, layer.bias
    )
    standard = module_call(replace(layer, groups=1))
    depthwise = module_call(
        replace(layer, out_channels=layer.in_channels, groups=layer.in_channels)
    )
    pointwise = module_call(
        replace(
            layer,
            kernel=(1, 1),
            stride=(1, 1),
            padding=((0, 0), (0, 0)),
            dilation=(1, 1),
            groups=1,
            padding_mode="",
        )
    )
    code = "\n".join(
        [
            "from torch import nn",
            "",
            f"standard = {standard}",
            "separable = nn.Sequential(",
            f"    {depthwise},  # depthwise: one k×k filter per channel",
            f"    {pointwise},  # pointwise: mixes the channels",
            ")",
            "",
        ]
    )
    return SeparableComparison(cost, standard, depthwise, pointwise, code)


@dataclass(frozen=True)
class PointwiseVsFc:
    """A 1×1 conv beside a fully connected layer on the same feature map, same output size."""

    in_shape: tuple[int, int, int]
    out_shape: tuple[int, int, int]
    pointwise: ar.Cost
    fc: ar.Cost
    pointwise_module: str
    fc_module: str
    code: str

    @property
    def param_ratio(self) -> float:
        return self.fc.params / self.pointwise.params


# Above this the snippet says not to build the FC layer: it would not fit in memory.
BUILDABLE_PARAMS = 200_000_000


def pointwise_vs_fc(result: LayerResult) -> PointwiseVsFc:
    """The input C×H×W mapped to C_out×H×W by a 1×1 conv and by a Linear layer on the flat map."""
    layer = result.layer
    c, h, w, out = layer.in_channels, layer.height, layer.width, layer.out_channels
    point_params, fc_params = ar.pointwise_vs_fc_params(c, out, h, w, layer.bias)
    pointwise = ar.Cost(point_params, ar.conv_macs(c, out, (1, 1), (h, w)))
    fc = ar.Cost(fc_params, ar.linear_macs(c * h * w, out * h * w))
    bias = "" if layer.bias else ", bias=False"
    point_module = f"nn.Conv2d({c}, {out}, kernel_size=1{bias})"
    fc_module = f"nn.Linear({c} * {h} * {w}, {out} * {h} * {w}{bias})"
    fc_line = f"fc = {fc_module}"
    if fc_params > BUILDABLE_PARAMS:
        fc_line = f"# fc = {fc_module}  # {fc_params:,} parameters: too big to build"
    code = "\n".join(
        [
            "import torch",
            "from torch import nn",
            "",
            f"pointwise = {point_module}  # the same {c}→{out} matrix at every position",
            fc_line,
            f"x = torch.randn(1, {c}, {h}, {w})",
            f"print(pointwise(x).shape)  # torch.Size([1, {out}, {h}, {w}])",
            "",
        ]
    )
    return PointwiseVsFc((c, h, w), (out, h, w), pointwise, fc, point_module, fc_module, code)
