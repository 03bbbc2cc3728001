"""Parametric numeric items: fresh numbers from a seed, answered by the worker's own arithmetic.

`variant(name, seed)` is a pure function of its arguments, so a variant shown to a learner
can be graded later (or by another process) from the seed alone.
"""

from __future__ import annotations

import random
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field

from app.content.schema import GENERATOR_NAMES
from app.worker.arithmetic import (
    conv_macs,
    conv_output_size,
    conv_params,
    depthwise_separable_cost,
    linear_params,
    pool_output_size,
)
from app.worker.receptive_field import receptive_field
from app.worker.training.metrics import (
    expected_calibration_error,
    inverse_frequency_weights,
    per_class_scores,
)

SEED_MAX = 2**31 - 1


@dataclass(frozen=True)
class Variant:
    prompt: str  # Markdown
    answer: float
    tolerance: float
    working: str  # Markdown: how the answer follows
    hint: str
    unit: str = ""
    params: dict[str, object] = field(default_factory=dict)  # the drawn numbers, for checking


Generator = Callable[[random.Random], Variant]
GENERATORS: dict[str, Generator] = {}


def generator(name: str) -> Callable[[Generator], Generator]:
    def register(function: Generator) -> Generator:
        GENERATORS[name] = function
        return function

    return register


def fresh_seed() -> int:
    return secrets.randbelow(SEED_MAX) + 1


def variant(name: str, seed: int) -> Variant:
    """The variant of generator `name` for `seed` (1 ≤ seed ≤ 2³¹−1)."""
    if not 1 <= seed <= SEED_MAX:
        raise ValueError(f"seed: must be between 1 and {SEED_MAX}")
    # A string seed is hashed with SHA-512 by `random`: stable across processes and runs.
    return GENERATORS[name](random.Random(f"{name}:{seed}"))


@generator("conv-output-size")
def _conv_output_size(rng: random.Random) -> Variant:
    while True:
        size = rng.choice([7, 14, 28, 32, 56, 64, 96, 112, 128, 224, rng.randint(9, 250)])
        kernel = rng.choice([1, 3, 3, 5, 7])
        stride = rng.choice([1, 2, 2, 3])
        padding = rng.randint(0, kernel // 2 + 1)
        dilation = rng.choice([1, 1, 1, 2])
        out = conv_output_size(size, kernel, stride, padding, dilation)
        if out >= 1:
            break
    prompt = (
        f"A `Conv2d` with kernel {kernel}, stride {stride}, padding {padding} and dilation "
        f"{dilation} is applied to a {size}×{size} feature map. What is the output height?"
    )
    working = (
        f"⌊({size} + 2·{padding} − {dilation}·({kernel} − 1) − 1) / {stride}⌋ + 1 = "
        f"⌊{size + 2 * padding - dilation * (kernel - 1) - 1} / {stride}⌋ + 1 = **{out}**"
    )
    hint = "⌊(H + 2p − d·(k − 1) − 1) / s⌋ + 1; the division floors."
    return Variant(
        prompt,
        out,
        0,
        working,
        hint,
        "px",
        {
            "size": size,
            "kernel": kernel,
            "stride": stride,
            "padding": padding,
            "dilation": dilation,
        },
    )


@generator("conv-params")
def _conv_params(rng: random.Random) -> Variant:
    c_in = rng.choice([3, 16, 32, 64, 96, 128, 256])
    c_out = rng.choice([16, 32, 64, 128, 256, 512])
    kernel = rng.choice([1, 3, 5, 7])
    groups = rng.choice([g for g in (1, 1, 2, 4, 8) if c_in % g == 0 and c_out % g == 0])
    bias = rng.random() < 0.5
    params = conv_params(c_in, c_out, (kernel, kernel), groups, bias)
    grouped = f", groups={groups}" if groups > 1 else ""
    prompt = (
        f"How many learnable parameters does `nn.Conv2d({c_in}, {c_out}, kernel_size={kernel}"
        f"{grouped}, bias={bias})` have?"
    )
    bias_term = f" + {c_out}" if bias else ""
    working = f"{c_out} filters × ({c_in}/{groups} input channels) × {kernel}×{kernel}{bias_term} = **{params:,}**"
    hint = (
        "out_channels · (in_channels / groups) · k_h · k_w, plus out_channels if there is a bias."
    )
    return Variant(
        prompt,
        params,
        0,
        working,
        hint,
        "",
        {"c_in": c_in, "c_out": c_out, "kernel": kernel, "groups": groups, "bias": bias},
    )


@generator("conv-macs")
def _conv_macs(rng: random.Random) -> Variant:
    size = rng.choice([14, 28, 56, 112])
    c_in = rng.choice([32, 64, 128])
    c_out = rng.choice([64, 128, 256])
    kernel = rng.choice([1, 3])
    stride = rng.choice([1, 2])
    padding = kernel // 2
    out = conv_output_size(size, kernel, stride, padding)
    millions = conv_macs(c_in, c_out, (kernel, kernel), (out, out)) / 1e6
    answer = round(millions, 2)
    prompt = (
        f"A {kernel}×{kernel} convolution maps {c_in}×{size}×{size} to {c_out} channels with "
        f"stride {stride} and padding {padding}. How many multiply-accumulates (MACs) does one "
        "image cost, in millions (two decimals)?"
    )
    working = (
        f"Output {out}×{out}; MACs = {out}·{out}·{c_out}·{c_in}·{kernel}·{kernel} = "
        f"{conv_macs(c_in, c_out, (kernel, kernel), (out, out)):,} ≈ **{millions:.2f} million**"
    )
    hint = "MACs = H_out · W_out · C_out · (C_in / groups) · k_h · k_w."
    return Variant(
        prompt,
        answer,
        0.01,
        working,
        hint,
        "million MACs",  # the unit the prompt asks in
        {
            "size": size,
            "c_in": c_in,
            "c_out": c_out,
            "kernel": kernel,
            "stride": stride,
            "padding": padding,
        },
    )


@generator("pool-output-size")
def _pool_output_size(rng: random.Random) -> Variant:
    size = rng.randint(5, 120)
    kernel = rng.choice([2, 3, 3])
    stride = rng.choice([2, 2, kernel])
    padding = rng.randint(0, kernel // 2)
    ceil_mode = rng.random() < 0.4
    out = pool_output_size(size, kernel, stride, padding, 1, ceil_mode)
    prompt = (
        f"`nn.MaxPool2d(kernel_size={kernel}, stride={stride}, padding={padding}, "
        f"ceil_mode={ceil_mode})` on a {size}×{size} map: what is the output height?"
    )
    rounding = "⌈…⌉ (ceil_mode)" if ceil_mode else "⌊…⌋"
    working = (
        f"({size} + 2·{padding} − {kernel}) / {stride} = "
        f"{(size + 2 * padding - kernel) / stride:.2f}, rounded with {rounding}, plus 1 → **{out}**"
        + (" (a window may not start in the right padding)" if ceil_mode else "")
    )
    hint = "Same formula as a convolution; ceil_mode rounds up instead of down."
    return Variant(
        prompt,
        out,
        0,
        working,
        hint,
        "px",
        {
            "size": size,
            "kernel": kernel,
            "stride": stride,
            "padding": padding,
            "ceil_mode": ceil_mode,
        },
    )


@generator("depthwise-savings")
def _depthwise_savings(rng: random.Random) -> Variant:
    c_in = rng.choice([32, 64, 128, 256])
    c_out = rng.choice([64, 128, 256, 512])
    kernel = rng.choice([3, 5])
    size = rng.choice([14, 28, 56])
    cost = depthwise_separable_cost(c_in, c_out, (kernel, kernel), (size, size), bias=False)
    standard, depthwise, pointwise = cost.standard.macs, cost.depthwise.macs, cost.pointwise.macs
    ratio = round(cost.mac_ratio, 2)
    prompt = (
        f"Replace a standard {kernel}×{kernel} convolution ({c_in} → {c_out} channels, "
        f"{size}×{size} output, stride 1) with a depthwise {kernel}×{kernel} plus a pointwise "
        "1×1. How many times fewer MACs does the separable version need (two decimals)?"
    )
    working = (
        f"standard {standard:,}; depthwise {depthwise:,} + pointwise {pointwise:,} = "
        f"{depthwise + pointwise:,}; ratio **{ratio}** "
        f"(= 1 / (1/{c_out} + 1/{kernel * kernel}))"
    )
    hint = "The separable cost over the standard cost is 1/C_out + 1/k²."
    return Variant(
        prompt,
        ratio,
        0.01,
        working,
        hint,
        "×",
        {"c_in": c_in, "c_out": c_out, "kernel": kernel, "size": size},
    )


@generator("pointwise-vs-fc-params")
def _pointwise_vs_fc(rng: random.Random) -> Variant:
    channels = rng.choice([64, 128, 256, 512])
    size = rng.choice([4, 7, 8, 14])
    outputs = rng.choice([10, 64, 100, 128])
    fc = linear_params(channels * size * size, outputs)
    pointwise = conv_params(channels, outputs, (1, 1))
    prompt = (
        f"A {channels}×{size}×{size} feature map is flattened into a fully connected layer with "
        f"{outputs} outputs (with bias). How many parameters does that layer have? (A 1×1 conv "
        f"to {outputs} channels on the same map would have {pointwise:,}.)"
    )
    working = (
        f"{channels}·{size}·{size} = {channels * size * size:,} inputs × {outputs} + {outputs} "
        f"= **{fc:,}**, which is {fc / pointwise:.0f}× the 1×1 conv's {pointwise:,}"
    )
    hint = "A fully connected layer has one weight per (input, output) pair: C·H·W·N + N."
    return Variant(
        prompt, fc, 0, working, hint, "", {"channels": channels, "size": size, "outputs": outputs}
    )


@generator("receptive-field")
def _receptive_field(rng: random.Random) -> Variant:
    depth = rng.randint(2, 4)
    layers = [(rng.choice([3, 3, 5, 7]), rng.choice([1, 1, 2]), 1) for _ in range(depth)]
    if rng.random() < 0.3:
        kernel, stride, _ = layers[-1]
        layers[-1] = (kernel, stride, 2)
    field = receptive_field(layers)
    described = ", ".join(
        f"{k}×{k} stride {s}" + (f" dilation {d}" if d > 1 else "") for k, s, d in layers
    )
    prompt = (
        f"Convolutions in sequence: {described}. How many input pixels wide is the receptive "
        "field of one output unit of the last layer?"
    )
    steps, jump = [], 1
    for k, s, d in layers:
        steps.append(f"+({k}−1)·{d}·{jump}")
        jump *= s
    working = f"1 {' '.join(steps)} = **{field}** (each step is scaled by the strides before it)"
    hint = "r = 1 + Σ (k_i − 1)·d_i · (product of the strides of the layers before i)."
    return Variant(prompt, field, 0, working, hint, "px", {"layers": layers})


@generator("precision-recall-f1")
def _precision_recall_f1(rng: random.Random) -> Variant:
    names = ["cat", "dog", "fox"][: rng.choice([2, 3])]
    size = len(names)
    matrix = [[rng.randint(1, 12) for _ in range(size)] for _ in range(size)]
    for i in range(size):
        matrix[i][i] = rng.randint(15, 60)
    target = rng.randrange(size)
    metric = rng.choice(["precision", "recall", "F1"])
    scores = per_class_scores(matrix)[target]
    value = {"precision": scores.precision, "recall": scores.recall, "F1": scores.f1}[metric]
    header = "| true \\ predicted | " + " | ".join(names) + " |"
    rule = "|---" * (size + 1) + "|"
    rows = [
        f"| **{names[i]}** | " + " | ".join(str(v) for v in matrix[i]) + " |" for i in range(size)
    ]
    table = "\n".join([header, rule, *rows])
    prompt = (
        f"From this confusion matrix (rows: true class, columns: predicted), what is the "
        f"**{metric}** of class *{names[target]}*? Three decimals.\n\n{table}"
    )
    tp = matrix[target][target]
    predicted = sum(matrix[i][target] for i in range(size))
    actual = sum(matrix[target])
    working = (
        f"TP = {tp}; predicted {names[target]} = {predicted} (its column); actually "
        f"{names[target]} = {actual} (its row). Precision {scores.precision:.3f}, recall "
        f"{scores.recall:.3f}, F1 {scores.f1:.3f} → **{value:.3f}**"
    )
    hint = "Precision divides by the column (predicted), recall by the row (true)."
    return Variant(
        prompt,
        round(value, 3),
        0.0015,
        working,
        hint,
        "",
        {"matrix": matrix, "target": target, "metric": metric},
    )


@generator("class-weights")
def _class_weights(rng: random.Random) -> Variant:
    classes = rng.choice([3, 4])
    counts = sorted(
        (
            rng.choice([20, 40, 50, 80, 100, 200, 400, 500, 1000, 2000, 5000])
            for _ in range(classes)
        ),
        reverse=True,
    )
    weights = inverse_frequency_weights(counts)
    answer = round(weights[-1], 2)
    listed = ", ".join(str(c) for c in counts)
    prompt = (
        f"Class counts are {listed}. With inverse-frequency weights w_c = N / (K · n_c) "
        "(scikit-learn's `class_weight='balanced'`), what weight does the rarest class get? "
        "Two decimals."
    )
    total = sum(counts)
    working = f"N = {total}, K = {classes}: {total} / ({classes} · {counts[-1]}) = **{answer}**"
    hint = "N is the total number of samples, K the number of classes."
    return Variant(prompt, answer, 0.01, working, hint, "", {"counts": counts})


@generator("ece-from-bins")
def _ece_from_bins(rng: random.Random) -> Variant:
    bins = rng.randint(3, 5)
    edges = [round(0.5 + i * 0.5 / bins, 2) for i in range(bins + 1)]
    counts = [rng.randint(5, 60) for _ in range(bins)]
    confidence = [round((edges[i] + edges[i + 1]) / 2, 2) for i in range(bins)]
    accuracy = [
        round(min(1.0, max(0.0, c + rng.choice([-0.2, -0.12, -0.05, 0.0, 0.04]))), 2)
        for c in confidence
    ]
    ece = expected_calibration_error(counts, accuracy, confidence)
    rows = "\n".join(
        f"| {edges[i]:.2f}–{edges[i + 1]:.2f} | {counts[i]} | {confidence[i]:.2f} | {accuracy[i]:.2f} |"
        for i in range(bins)
    )
    prompt = (
        "A classifier's predictions are grouped into confidence bins. What is the expected "
        "calibration error (ECE)? Three decimals.\n\n"
        "| bin | samples | mean confidence | accuracy |\n|---|---|---|---|\n" + rows
    )
    total = sum(counts)
    terms = " + ".join(f"{counts[i]}·{abs(accuracy[i] - confidence[i]):.2f}" for i in range(bins))
    working = f"ECE = ({terms}) / {total} = **{ece:.3f}**"
    hint = "ECE = Σ (n_b / N) · |accuracy_b − confidence_b|."
    return Variant(
        prompt,
        round(ece, 3),
        0.0015,
        working,
        hint,
        "",
        {"counts": counts, "accuracy": accuracy, "confidence": confidence},
    )


missing = set(GENERATOR_NAMES) ^ set(GENERATORS)
if missing:  # pragma: no cover - a programming error caught at import
    raise RuntimeError(f"generator names and implementations differ: {sorted(missing)}")
