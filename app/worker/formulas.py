"""The formulas behind one layer's numbers, with the layer's own values filled in."""

from __future__ import annotations

from app.worker.layers import LayerResult


def formulas(result: LayerResult) -> tuple[str, ...]:
    """The formulas behind the result, with this layer's numbers put in."""
    layer = result.layer
    c, out = layer.in_channels, layer.out_channels
    if layer.kind == "linear":
        features = c * layer.height * layer.width
        bias = f" + {out:,}" if layer.bias else ""
        return (
            f"in_features = C·H·W = {c}·{layer.height}·{layer.width} = {features:,}",
            f"params = in·out + out = {features:,}·{out:,}{bias} = {result.params:,}",
            f"MACs = in·out = {result.macs:,}",
        )
    lines = []
    names = (("H", layer.height, 0, 1), ("W", layer.width, 1, 2))
    for axis, size, index, position in names:
        k, s, d = layer.kernel[index], layer.stride[index], layer.dilation[index]
        before, after = layer.padding[index]
        value = result.output_shape[position]
        if layer.kind == "conv_transpose2d":
            extra = layer.output_padding[index]
            lines.append(
                f"{axis}_out = ({axis} − 1)·s − 2p + d·(k − 1) + output_padding + 1 = "
                f"({size} − 1)·{s} − 2·{before} + {d}·{k - 1} + {extra} + 1 = {value}"
            )
            continue
        ceil = layer.ceil_mode and layer.kind != "conv2d"
        left, right = ("⌈", "⌉") if ceil else ("⌊", "⌋")
        pads = f"2·{before}" if before == after else f"{before} + {after}"
        span = size + before + after - d * (k - 1) - 1
        naive = (-(-span // s) if ceil else span // s) + 1
        general = f"{axis}_out = {left}({axis} + padding − d·(k − 1) − 1) / s{right} + 1"
        filled = f"{left}({size} + {pads} − {d}·{k - 1} − 1) / {s}{right} + 1"
        if naive == value:
            lines.append(f"{general} = {filled} = {value}")
            continue
        lines.append(f"{general} − 1 = {filled} − 1 = {naive} − 1 = {value}")
        lines.append(_dropped_window(axis, size, before, s, naive))
    kh, kw = layer.kernel
    kh, kw = layer.kernel
    if layer.kind == "conv2d":
        bias = f" + {out}" if layer.bias else ""
        lines += [
            f"params = C_out·(C_in / groups)·k_h·k_w + bias = {out}·{c // layer.groups}·{kh}·{kw}{bias} = {result.params:,}",
            f"MACs = H_out·W_out·C_out·(C_in / groups)·k_h·k_w = "
            f"{result.output_shape[1]}·{result.output_shape[2]}·{out}·{c // layer.groups}·{kh}·{kw} = {result.macs:,}",
        ]
    elif layer.kind == "conv_transpose2d":
        bias = f" + {out}" if layer.bias else ""
        lines += [
            f"params = C_in·(C_out / groups)·k_h·k_w + bias = {c}·{out // layer.groups}·{kh}·{kw}{bias} = {result.params:,}",
            f"MACs = H·W·C_in·(C_out / groups)·k_h·k_w = "
            f"{layer.height}·{layer.width}·{c}·{out // layer.groups}·{kh}·{kw} = {result.macs:,}",
        ]
    else:
        lines.append(
            "no parameters; a window is compared or averaged, which is not counted as MACs"
        )
    return tuple(lines)


def _dropped_window(axis: str, size: int, padding: int, stride: int, count: int) -> str:
    """Why ceil_mode dropped the last window, with the numbers: PyTorch drops it when its start
    `(out − 1)·s`, counted from the start of the left padding, is at or past `H + p`."""
    start = (count - 1) * stride
    if padding == 0:
        where = "past the end of the input"
    elif start >= size + 2 * padding:
        where = "past the end of the padded input"
    else:
        where = "in the right padding, over no input"
    return (
        f"  (window {count} would start at (out − 1)·s = ({count} − 1)·{stride} = {start} "
        f"≥ {axis} + p = {size} + {padding}: {where}, so PyTorch drops it)"
    )
