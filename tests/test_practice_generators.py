"""Parametric items: reproducible from the seed, and right by torch.nn and scikit-learn."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
import torch
from sklearn.metrics import precision_recall_fscore_support
from sklearn.utils.class_weight import compute_class_weight
from torch import nn

from app.practice.generators import GENERATORS, SEED_MAX, variant

SEEDS = range(1, 151)


@pytest.mark.parametrize("name", sorted(GENERATORS))
def test_a_variant_is_reproducible_from_its_seed(name: str) -> None:
    assert variant(name, 42) == variant(name, 42)
    prompts = {variant(name, seed).prompt for seed in range(1, 40)}
    assert len(prompts) > 5, "seeds should draw different numbers"


@pytest.mark.parametrize("seed", [0, -1, SEED_MAX + 1])
def test_seed_outside_the_range_is_refused(seed: int) -> None:
    with pytest.raises(ValueError, match="seed"):
        variant("conv-params", seed)


def _conv_out(size, kernel, stride, padding, dilation=1) -> int:
    layer = nn.Conv2d(1, 1, kernel, stride, padding, dilation)
    with torch.no_grad():
        return layer(torch.zeros(1, 1, size, size)).shape[-1]


def test_conv_output_size_matches_conv2d() -> None:
    for seed in SEEDS:
        v = variant("conv-output-size", seed)
        p = v.params
        assert v.answer == _conv_out(
            p["size"], p["kernel"], p["stride"], p["padding"], p["dilation"]
        ), p


def test_conv_params_matches_conv2d() -> None:
    for seed in SEEDS:
        v = variant("conv-params", seed)
        p = v.params
        layer = nn.Conv2d(p["c_in"], p["c_out"], p["kernel"], groups=p["groups"], bias=p["bias"])
        assert v.answer == sum(t.numel() for t in layer.parameters()), p


def test_conv_macs_match_weight_size_times_output_area() -> None:
    for seed in SEEDS:
        v = variant("conv-macs", seed)
        p = v.params
        layer = nn.Conv2d(p["c_in"], p["c_out"], p["kernel"], p["stride"], p["padding"], bias=False)
        out = layer(torch.zeros(1, p["c_in"], p["size"], p["size"], device="meta"))
        macs = layer.weight.numel() * out.shape[-1] * out.shape[-2]
        assert v.answer == pytest.approx(macs / 1e6, abs=0.0051), p
        # The answer is given in the unit the prompt asks for, with its two decimals.
        assert "in millions (two decimals)" in v.prompt and v.unit == "million MACs"
        assert f"**{macs / 1e6:.2f} million**" in v.working


def test_pool_output_size_matches_maxpool2d() -> None:
    for seed in SEEDS:
        v = variant("pool-output-size", seed)
        p = v.params
        pool = nn.MaxPool2d(p["kernel"], p["stride"], p["padding"], ceil_mode=p["ceil_mode"])
        assert v.answer == pool(torch.zeros(1, 1, p["size"], p["size"])).shape[-1], p


def test_depthwise_savings_match_conv2d_weight_counts() -> None:
    for seed in SEEDS:
        v = variant("depthwise-savings", seed)
        p = v.params
        standard = nn.Conv2d(p["c_in"], p["c_out"], p["kernel"], bias=False)
        depthwise = nn.Conv2d(p["c_in"], p["c_in"], p["kernel"], groups=p["c_in"], bias=False)
        pointwise = nn.Conv2d(p["c_in"], p["c_out"], 1, bias=False)
        # Same output area for all three (stride 1, "same" size), so MAC ratios are weight ratios.
        ratio = standard.weight.numel() / (depthwise.weight.numel() + pointwise.weight.numel())
        assert v.answer == pytest.approx(ratio, abs=0.0051), p


def test_fully_connected_params_match_linear() -> None:
    for seed in SEEDS:
        v = variant("pointwise-vs-fc-params", seed)
        p = v.params
        layer = nn.Linear(p["channels"] * p["size"] ** 2, p["outputs"])
        assert v.answer == sum(t.numel() for t in layer.parameters()), p


def _gradient_footprint(layers: list[tuple[int, int, int]]) -> int:
    """Width of the input region that one output unit depends on, found with autograd."""
    stack = nn.Sequential(*(nn.Conv2d(1, 1, k, s, dilation=d, bias=False) for k, s, d in layers))
    for conv in stack:
        nn.init.constant_(conv.weight, 1.0)
    image = torch.zeros(1, 1, max(k for k, _, _ in layers) * 40, 200, requires_grad=True)
    out = stack(image)
    out[0, 0, out.shape[2] // 2, out.shape[3] // 2].backward()
    touched = torch.nonzero(image.grad[0, 0].abs().sum(dim=0))
    return int(touched.max() - touched.min() + 1)


def test_receptive_field_matches_the_gradient_footprint() -> None:
    for seed in range(1, 60):
        v = variant("receptive-field", seed)
        assert v.answer == _gradient_footprint(v.params["layers"]), v.params


def _labels_from_matrix(matrix: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    true, predicted = [], []
    for i, row in enumerate(matrix):
        for j, count in enumerate(row):
            true += [i] * count
            predicted += [j] * count
    return np.array(true), np.array(predicted)


def test_precision_recall_f1_match_scikit_learn() -> None:
    for seed in SEEDS:
        v = variant("precision-recall-f1", seed)
        p = v.params
        true, predicted = _labels_from_matrix(p["matrix"])
        precision, recall, f1, _ = precision_recall_fscore_support(true, predicted, zero_division=0)
        expected = {"precision": precision, "recall": recall, "F1": f1}[p["metric"]][p["target"]]
        assert v.answer == pytest.approx(expected, abs=0.00051), p


def test_class_weights_match_scikit_learn_balanced() -> None:
    for seed in SEEDS:
        v = variant("class-weights", seed)
        counts = v.params["counts"]
        labels = np.repeat(np.arange(len(counts)), counts)
        weights = compute_class_weight("balanced", classes=np.arange(len(counts)), y=labels)
        assert v.answer == pytest.approx(weights[-1], abs=0.0051), counts  # rounded to 2 dp


def test_ece_matches_exact_arithmetic() -> None:
    for seed in SEEDS:
        v = variant("ece-from-bins", seed)
        p = v.params
        total = sum(p["counts"])
        exact = sum(
            Fraction(n, total) * abs(Fraction(str(a)) - Fraction(str(c)))
            for n, a, c in zip(p["counts"], p["accuracy"], p["confidence"], strict=True)
        )
        assert v.answer == pytest.approx(float(exact), abs=0.00051), p  # rounded to 3 dp
