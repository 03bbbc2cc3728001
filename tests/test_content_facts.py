"""Facts in the answers, checked by code: formulas against torch.nn, tables against torchvision."""

from __future__ import annotations

import re

import pytest
import torch
import torchvision
from torch import nn

from app.content import QuestionBank
from app.content.render import markdown_tables
from app.worker.arithmetic import conv_macs, conv_output_size, conv_params


def table_with_header(markdown: str, header: list[str]) -> list[dict[str, str]]:
    for table in markdown_tables(markdown):
        if [cell.lower() for cell in table[0]] == header:
            return [dict(zip(header, row, strict=True)) for row in table[1:]]
    raise AssertionError(f"no table with header {header}")


# --- formulas against torch.nn.Conv2d, for a table of configurations -----------------------

CONFIGS = [
    # (in_ch, out_ch, kernel, stride, padding, dilation, groups, bias, H, W)
    (3, 64, (7, 7), 2, 3, 1, 1, False, 224, 224),
    (64, 64, (3, 3), 1, 1, 1, 1, False, 56, 56),
    (64, 128, (1, 1), 2, 0, 1, 1, False, 56, 56),
    (32, 32, (3, 3), 1, 1, 1, 32, True, 112, 112),
    (16, 24, (5, 3), (2, 1), (2, 1), 1, 1, True, 33, 17),
    (8, 8, (3, 3), 1, 2, 2, 1, True, 20, 20),
    (12, 18, (3, 3), 3, 0, 1, 6, True, 31, 29),
    (3, 5, (4, 4), 2, 1, 1, 1, True, 9, 9),
    (10, 20, (2, 2), 1, 0, 3, 2, False, 7, 8),
    (1, 1, (3, 3), 2, 0, 1, 1, True, 3, 3),
]


def _pair(value):
    return value if isinstance(value, tuple) else (value, value)


@pytest.mark.parametrize("config", CONFIGS)
def test_output_size_params_and_macs_match_conv2d(config) -> None:
    c_in, c_out, kernel, stride, padding, dilation, groups, bias, height, width = config
    layer = nn.Conv2d(c_in, c_out, kernel, stride, padding, dilation, groups, bias)
    out = layer(torch.zeros(1, c_in, height, width))
    s, p, d = _pair(stride), _pair(padding), _pair(dilation)
    expected_h = conv_output_size(height, kernel[0], s[0], p[0], d[0])
    expected_w = conv_output_size(width, kernel[1], s[1], p[1], d[1])
    assert tuple(out.shape) == (1, c_out, expected_h, expected_w)
    assert conv_params(c_in, c_out, kernel, groups, bias) == sum(
        t.numel() for t in layer.parameters()
    )
    # A MAC per weight per output position: the weight tensor's size times the output area.
    assert conv_macs(c_in, c_out, kernel, (expected_h, expected_w), groups) == (
        layer.weight.numel() * expected_h * expected_w
    )


# --- Q1's worked-example table --------------------------------------------------------------

Q1_HEADER = [
    "input (c×h×w)",
    "out channels",
    "kernel",
    "stride",
    "padding",
    "dilation",
    "groups",
    "output (c×h×w)",
    "params",
]


def _ints(cell: str) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", cell.replace(",", "")))


def test_q1_worked_examples_match_conv2d(bank: QuestionBank) -> None:
    question = bank.get("convolutional-layers")
    assert question is not None
    rows = table_with_header(question.answer_markdown, Q1_HEADER)
    assert len(rows) >= 6
    for row in rows:
        c_in, height, width = _ints(row["input (c×h×w)"])
        kernel = _ints(row["kernel"])
        stride, padding, dilation = (_ints(row[key]) for key in ("stride", "padding", "dilation"))
        layer = nn.Conv2d(
            c_in,
            _ints(row["out channels"])[0],
            kernel if len(kernel) == 2 else kernel[0],
            stride if len(stride) == 2 else stride[0],
            padding if len(padding) == 2 else padding[0],
            dilation if len(dilation) == 2 else dilation[0],
            _ints(row["groups"])[0],
        )
        out = layer(torch.zeros(1, c_in, height, width))
        assert tuple(out.shape[1:]) == _ints(row["output (c×h×w)"]), row
        assert sum(t.numel() for t in layer.parameters()) == _ints(row["params"])[0], row


# --- Q4's architecture table against torchvision --------------------------------------------

Q4_HEADER = [
    "model",
    "year",
    "builder",
    "weights",
    "params (m)",
    "top-1 % (torchvision)",
    "top-1 % (paper)",
    "key idea",
]


def _architecture_rows(bank: QuestionBank) -> list[dict[str, str]]:
    question = bank.get("architecture-evolution")
    assert question is not None
    return table_with_header(question.answer_markdown, Q4_HEADER)


def _code(cell: str) -> str:
    match = re.fullmatch(r"`([A-Za-z0-9_]+)`", cell.strip())
    assert match, f"expected a name in backticks, got {cell!r}"
    return match.group(1)


def test_q4_covers_the_classic_architectures(bank: QuestionBank) -> None:
    builders = {_code(row["builder"]) for row in _architecture_rows(bank)}
    assert {
        "alexnet",
        "vgg16",
        "googlenet",
        "resnet50",
        "densenet121",
        "mobilenet_v2",
        "efficientnet_b0",
        "convnext_tiny",
    } <= builders


@pytest.mark.slow
def test_q4_parameter_counts_match_torchvision_definitions(bank: QuestionBank) -> None:
    for row in _architecture_rows(bank):
        builder = _code(row["builder"])
        # The meta device builds the graph with shapes only: no memory, no weights, no download.
        with torch.device("meta"):
            kwargs = {"aux_logits": False, "init_weights": False} if builder == "googlenet" else {}
            model = torchvision.models.get_model(builder, weights=None, **kwargs)
        counted = sum(p.numel() for p in model.parameters()) / 1e6
        assert float(row["params (m)"]) == pytest.approx(counted, abs=0.051), builder


def test_q4_top1_matches_torchvision_weight_metadata(bank: QuestionBank) -> None:
    for row in _architecture_rows(bank):
        builder, weights_name = _code(row["builder"]), _code(row["weights"])
        weights = torchvision.models.get_model_weights(builder)[weights_name]
        acc1 = weights.meta["_metrics"]["ImageNet-1K"]["acc@1"]
        assert float(row["top-1 % (torchvision)"]) == pytest.approx(acc1, abs=0.005), builder
