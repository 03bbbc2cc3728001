"""Precision chosen per machine, the fused optimiser, per-optimiser weight decay and how
often a run writes its checkpoint: each checked against torch on the same input."""

from __future__ import annotations

import json
import platform
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from app.runs.form import config_or_errors, display_values, read_form
from app.worker.training import EpochEnd, Event, RunConfig, Started, engine, run
from app.worker.training.loop import (
    build_optimizer,
    optimizer_implementation,
    parameter_groups,
    resolve_precision,
)
from app.worker.training.models import build

TINY = {
    "num_classes": 2,
    "images_per_class": 24,
    "image_size": 8,
    "width": 4,
    "batch_size": 8,
    "epochs": 2,
    "warmup_epochs": 0,
}


def torch_says_bf16_is_native() -> bool:
    """What torch reports about this CPU, asked here independently of the engine."""
    if not torch.ops.mkldnn._is_mkldnn_bf16_supported():
        return False
    if platform.machine().lower() in ("x86_64", "amd64"):
        return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    return True


def test_auto_on_the_cpu_is_bf16_autocast_exactly_where_the_cpu_has_native_bf16() -> None:
    precision = resolve_precision("auto", torch.device("cpu"))
    native = torch_says_bf16_is_native()
    assert precision.name == ("bf16" if native else "fp32")
    assert precision.reason.startswith("auto: ")
    assert not precision.needs_scaler
    conv = nn.Conv2d(3, 4, 3)
    with precision.autocast():
        out = conv(torch.randn(1, 3, 8, 8))
    assert out.dtype == (torch.bfloat16 if native else torch.float32)
    asked = resolve_precision("fp32", torch.device("cpu"))
    assert asked.name == "fp32" and asked.reason == "asked for in the config"


@pytest.mark.parametrize("precision", ["auto", "fp32"])
def test_metrics_and_the_started_event_say_which_precision_ran_and_why(
    tmp_path: Path, precision: str
) -> None:
    events: list[Event] = []
    config = RunConfig.from_dict({**TINY, "epochs": 1, "precision": precision})
    result = run(config, events.append, lambda: False, out_dir=tmp_path, data_dir=tmp_path / "d")
    assert result.status == "succeeded", result.error
    expected = resolve_precision(precision, torch.device("cpu"))
    runtime = json.loads((tmp_path / "metrics.json").read_text())["runtime"]
    assert runtime["precision"] == expected.name
    assert runtime["precision_reason"] == expected.reason
    started = events[0]
    assert isinstance(started, Started)
    assert (started.precision, started.precision_reason) == (expected.name, expected.reason)
    kind = optimizer_implementation(torch.device("cpu"))
    assert runtime["optimizer"] == f"AdamW ({kind})"


@pytest.mark.parametrize("optimizer", ["adamw", "sgd"])
def test_the_optimizer_uses_torchs_fused_kernels_where_they_exist_and_updates_the_same(
    optimizer: str,
) -> None:
    device = torch.device("cpu")
    supported = torch.utils._foreach_utils._get_fused_kernels_supported_devices()
    config = RunConfig.from_dict({"optimizer": optimizer, "width": 8, "num_classes": 3})
    net = build(config, 3)
    reference_net = build(config, 3)
    reference_net.model.load_state_dict(net.model.state_dict())
    ours = build_optimizer(net, config, device)
    assert ours.defaults["fused"] is ("cpu" in supported or None)
    # The same groups, the default (for-loop) kernels.
    plain: Any
    if optimizer == "sgd":
        plain = torch.optim.SGD(
            parameter_groups(reference_net, config),
            lr=config.lr,
            momentum=config.momentum,
            nesterov=True,
            foreach=False,
        )
    else:
        plain = torch.optim.AdamW(
            parameter_groups(reference_net, config),
            lr=config.lr,
            betas=(config.momentum, 0.999),
            foreach=False,
        )
    x = torch.randn(4, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    for model, opt in ((net.model, ours), (reference_net.model, plain)):
        for _ in range(3):
            opt.zero_grad()
            model(x).square().mean().backward()
            opt.step()
    for a, b in zip(net.model.parameters(), reference_net.model.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_weight_decay_defaults_per_optimizer_and_an_explicit_value_wins() -> None:
    assert RunConfig.from_dict({}).weight_decay == 0.05
    assert RunConfig.from_dict({"optimizer": "sgd"}).weight_decay == 5e-4
    assert RunConfig.from_dict({"optimizer": "sgd", "weight_decay": None}).weight_decay == 5e-4
    assert RunConfig.from_dict({"optimizer": "sgd", "weight_decay": 0.01}).weight_decay == 0.01
    assert RunConfig.from_dict({"optimizer": "adamw", "weight_decay": 0}).weight_decay == 0
    sgd = RunConfig.from_dict({"optimizer": "sgd"})
    assert sgd.to_dict()["weight_decay"] == 5e-4  # config.yaml holds the number
    assert RunConfig.from_dict(sgd.to_dict()) == sgd
    spec = RunConfig.spec("weight_decay")
    assert "AdamW: decoupled" in spec.help and "SGD: L2" in spec.help
    assert spec.default_text() == "per optimizer: adamw 0.05, sgd 0.0005"
    # SGD's decay is L2 in the gradient: one step equals torch's SGD(weight_decay=λ) on w.
    net = build(sgd, 2)
    decayed = [g for g in parameter_groups(net, sgd) if g["weight_decay"] > 0]
    assert decayed and all(g["weight_decay"] == 5e-4 for g in decayed)


def test_the_form_left_empty_takes_the_optimizers_decay_and_a_typed_one_wins() -> None:
    shown = display_values(RunConfig.from_dict({}).to_dict())  # the fresh form, as sent
    fields = {k: ("true" if v is True else v) for k, v in shown.items() if v is not False}
    assert fields["weight_decay"] == "0.05"  # the default optimizer's, a concrete number
    fields.update(optimizer="sgd", weight_decay="")
    _, values, errors = read_form(fields)
    values.pop("dataset_id")  # the web layer's own field, resolved before the engine's check
    config = config_or_errors(values, errors)
    assert config is not None, errors
    assert config.weight_decay == 5e-4
    _, values, errors = read_form({**fields, "weight_decay": "0.002"})
    values.pop("dataset_id")
    config = config_or_errors(values, errors)
    assert config is not None and config.weight_decay == 0.002


def test_a_checkpoint_is_skipped_mid_run_when_it_costs_more_than_its_share(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine, "CHECKPOINT_SHARE", 0.0)  # any cost is too much
    seen: list[int] = []

    def on_event(event: Event) -> None:
        if isinstance(event, EpochEnd):
            saved = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
            seen.append(saved["epoch"])

    config = RunConfig.from_dict({**TINY, "epochs": 3})
    result = run(config, on_event, lambda: False, out_dir=tmp_path, data_dir=tmp_path / "d")
    assert result.status == "succeeded", result.error
    # The first epoch measures the cost; the second skips; the last always writes.
    assert seen == [1, 1, 3]
    assert result.metrics["timing"]["checkpoint_s"] > 0
