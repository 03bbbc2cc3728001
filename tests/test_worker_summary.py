"""Model and stack summaries (app.worker.summary, app.worker.stack) against torchvision and torch."""

from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn

from app.worker.errors import InvalidInput
from app.worker.stack import EXAMPLE, summarize_stack
from app.worker.summary import (
    ARCHITECTURES,
    BUILD_KWARGS,
    build_meta_model,
    summarize,
    summarize_architecture,
)

# Small enough to also build for real on the CPU in a test.
BUILT_ON_CPU = [
    "resnet18",
    "mobilenet_v3_small",
    "squeezenet1_1",
    "shufflenet_v2_x0_5",
    "googlenet",
    "efficientnet_b0",
    "regnet_y_400mf",
    "densenet121",
    "mnasnet0_5",
]
# Counted on meta only, against the count torchvision publishes with the weights.
META_ONLY = ["resnet50", "vgg16", "vit_b_16", "convnext_tiny", "swin_t", "inception_v3", "alexnet"]


def _default_weights_meta(arch: str) -> dict:
    return torchvision.models.get_model_weights(arch).DEFAULT.meta


@pytest.mark.slow
@pytest.mark.parametrize("arch", BUILT_ON_CPU)
def test_total_params_equal_the_cpu_built_torchvision_model(arch: str) -> None:
    summary = summarize_architecture(arch, 224, 224)
    model = torchvision.models.get_model(arch, weights=None, **BUILD_KWARGS.get(arch, {}))
    assert summary.total_params == sum(p.numel() for p in model.parameters())
    assert summary.total_params == _default_weights_meta(arch)["num_params"]


@pytest.mark.slow
@pytest.mark.parametrize("arch", BUILT_ON_CPU + META_ONLY)
def test_totals_match_torchvision_weight_metadata(arch: str) -> None:
    size = 299 if arch == "inception_v3" else 224
    summary = summarize_architecture(arch, size, size)
    meta = _default_weights_meta(arch)
    assert summary.total_params == meta["num_params"]
    # torchvision's GFLOPS are multiply-adds, rounded to three decimals.
    assert summary.total_macs / 1e9 == pytest.approx(meta["_ops"], abs=0.0005)
    assert summary.output_shape == (1000,)
    assert sum(row.params for row in summary.rows) == summary.total_params
    assert sum(row.macs for row in summary.rows) == summary.total_macs


def test_every_layer_shape_matches_a_real_forward_pass() -> None:
    model = torchvision.models.resnet18(weights=None).eval()
    shapes: dict[str, tuple[int, ...]] = {}

    def record(name: str):  # type: ignore[no-untyped-def]
        def hook(module, inputs, output) -> None:  # type: ignore[no-untyped-def]
            shapes.setdefault(name, tuple(output.shape[1:]))

        return hook

    for name, module in model.named_modules():
        if name and not list(module.children()):
            module.register_forward_hook(record(name))
    with torch.no_grad():
        model(torch.zeros(1, 3, 96, 128))
    summary = summarize_architecture("resnet18", 96, 128)
    assert {row.name: row.output_shape for row in summary.rows} == shapes


def test_conv_rows_count_one_mac_per_weight_per_output_position() -> None:
    summary = summarize_architecture("resnet18", 224, 224)
    model = build_meta_model("resnet18")
    for row in summary.rows:
        if row.layer == "Conv2d":
            weight = model.get_submodule(row.name).weight
            assert row.output_shape is not None
            assert row.macs == weight.numel() * row.output_shape[1] * row.output_shape[2]


def test_resnet50_receptive_field_grows_to_427_then_covers_the_whole_image() -> None:
    rows = {row.name: row for row in summarize_architecture("resnet50").rows}
    assert rows["conv1"].receptive_field == (7, 7)
    assert rows["maxpool"].receptive_field == (11, 11)
    assert rows["layer4.2.conv3"].receptive_field == (427, 427)
    assert rows["avgpool"].whole_input and rows["fc"].whole_input


def test_attention_makes_every_vit_token_depend_on_the_whole_image() -> None:
    rows = {row.name: row for row in summarize_architecture("vit_b_16").rows}
    assert rows["conv_proj"].receptive_field == (16, 16)
    assert rows["encoder.layers.encoder_layer_0.self_attention"].whole_input


def test_window_attention_leaves_the_field_unknown_until_global_pooling() -> None:
    rows = {row.name: row for row in summarize_architecture("swin_t").rows}
    attention = rows["features.1.0.attn"]
    assert attention.receptive_field is None and not attention.whole_input
    assert rows["avgpool"].whole_input


def test_head_only_training_counts_just_the_classifier() -> None:
    summary = summarize_architecture("resnet18", trainable="head")
    fc = next(row for row in summary.rows if row.name == "fc")
    assert summary.trainable_params == fc.params == 512 * 1000 + 1000


def test_unknown_architecture_is_rejected_with_the_known_ones_listed() -> None:
    with pytest.raises(InvalidInput) as raised:
        summarize_architecture("resnet51")
    assert raised.value.field == "arch"
    assert all(name in raised.value.message for name in ARCHITECTURES)


def test_an_input_too_small_for_the_model_is_rejected_with_torchs_reason() -> None:
    with pytest.raises(InvalidInput) as raised:
        summarize_architecture("alexnet", 16, 16)
    assert raised.value.field == "height"
    assert "alexnet cannot take a 3×16×16 input" in raised.value.message


def test_the_model_code_runs_and_prints_the_same_totals(capsys) -> None:
    summary = summarize_architecture("squeezenet1_1", 64, 64, trainable="head")
    exec(summary.code, {})
    printed = capsys.readouterr().out.splitlines()
    assert printed == [
        "torch.Size([1, 1000])",
        str(summary.total_params),
        str(summary.trainable_params),
    ]


# --- stacks ---------------------------------------------------------------------------------


def _autograd_field(model: nn.Module, channels: int, size: int) -> int:
    """The widest span of input columns that reaches one output of the middle row, found by
    autograd with all weights 1 (nothing cancels)."""
    model = model.float()
    for parameter in model.parameters():
        nn.init.constant_(parameter, 1.0)
    x = torch.ones(1, channels, size, size, requires_grad=True)
    out = model(x)
    widest = 0
    for column in range(out.shape[3]):
        x.grad = None
        out[0, 0, out.shape[2] // 2, column].backward(retain_graph=True)
        assert x.grad is not None
        columns = torch.nonzero(x.grad[0].abs().sum(dim=(0, 1))).flatten()
        if columns.numel() and columns.min() > 0 and columns.max() < size - 1:
            widest = max(widest, int(columns.max() - columns.min() + 1))  # not cut by a border
    return widest


STACKS = [
    "conv 4 k3\nconv 4 k3 s2\nconv 4 k3",
    "conv 4 k7 s2 p3\navgpool k3 s2 p1\nconv 4 k3 p1\nconv 4 k3 p1",
    "conv 4 k3 d2\nconv 4 k3 d4 p4\navgpool k2",
    "conv 4 k3 s2\navgpool k3 s1\nadaptiveavgpool 23\nconv 4 k3 p=same",
    # Transposed convs and uneven adaptive bins step irregularly; the field is still exact.
    "conv 4 k5 s2\ndwconv k3 p1\npwconv 8\nconvT 4 k4 s2 p1\nconv 4 k3",
    "conv 4 k3\nadaptiveavgpool 7\nconv 4 k3 p=same",
    "conv 4 k3 s3\nconvT 4 k2 s3\nconv 4 k3",
]


@pytest.mark.parametrize("text", STACKS)
def test_stack_receptive_field_matches_autograd(text: str) -> None:
    size = 97
    summary = summarize_stack(text, 2, size, size)
    final = summary.rows[-1]
    assert final.receptive_field is not None
    model = torch.nn.Sequential(*_cpu_modules(summary.code))
    assert final.receptive_field[1] == _autograd_field(model, 2, size)


def _cpu_modules(code: str) -> list[nn.Module]:
    namespace: dict = {}
    exec(code.split("x = torch.randn")[0], namespace)
    return list(namespace["model"])


def test_stack_table_and_code_agree_with_torch(capsys) -> None:
    summary = summarize_stack(EXAMPLE, 3, 64, 64)
    exec(summary.code, {})
    printed = capsys.readouterr().out.splitlines()
    assert printed == [f"torch.Size([1, {summary.output_shape[0]}])", str(summary.total_params)]
    assert [row.name for row in summary.rows] == [
        line for line in EXAMPLE.splitlines() if line.strip()
    ]


def test_stack_summary_uses_the_same_engine_as_models() -> None:
    text = "conv 64 k7 s2 p3 nobias\nbn\nrelu\nmaxpool k3 s2 p1"
    stack = summarize_stack(text)
    resnet = {row.name: row for row in summarize_architecture("resnet18").rows}
    for row, name in zip(stack.rows, ["conv1", "bn1", "relu", "maxpool"], strict=True):
        assert (row.output_shape, row.params, row.macs, row.receptive_field) == (
            resnet[name].output_shape,
            resnet[name].params,
            resnet[name].macs,
            resnet[name].receptive_field,
        )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("conv 64 k9", "line 1 (`conv 64 k9`): kernel `k`: the window spans 9"),
        ("conv 8 k3 d9", "line 1 (`conv 8 k3 d9`): dilation `d`: with dilation 9"),
        ("conv 9 g2", "groups `g`: must divide input channels (3)"),
        ("maxpool k2 g2", "groups `g`: MaxPool2d has no groups; leave it out"),
        ("conv 8 ceil", "`ceil`: Conv2d has no ceil mode; leave it out"),
        ("conv 8\nflatten\nconv 3", "line 3 (`conv 3`): needs a C×H×W input"),
        ("linear 10", "needs a flat input"),
        ("conv x", "needs the output channels"),
        ("conv 8 k3 q2", "cannot read 'q2'"),
        ("conv 8 p=same s2", "stride `s`: must be 1 when padding is 'same'"),
        ("maxpool k3 p2", "padding `p`: must be at most half the kernel"),
        ("teleport 3", "unknown layer 'teleport'; known: conv"),
        ("dropout 1.5", "the probability must be in [0, 1)"),
        ("# only a comment", "add at least one layer"),
        ("relu\n" * 65, "at most 64 layers"),
    ],
)
def test_stack_errors_name_the_line_and_the_problem(text: str, expected: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        summarize_stack(text, 3, 8, 8)
    assert raised.value.field == "layers"
    assert expected in raised.value.message


def test_stack_input_fields_are_checked_by_name() -> None:
    with pytest.raises(InvalidInput) as raised:
        summarize_stack("relu", 3, 0, 8)
    assert raised.value.field == "height"


def test_summarize_names_a_module_that_never_runs_with_no_shape() -> None:
    summary = summarize_architecture("inception_v3", 299, 299)
    aux = [row for row in summary.rows if row.name.startswith("AuxLogits")]
    assert aux and all(row.output_shape is None for row in aux)  # eval mode skips the aux head
    assert all(row.params for row in aux if row.layer in ("Conv2d", "Linear"))


def test_summarize_accepts_any_module() -> None:
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.Flatten(), nn.LazyLinear(4)).to("meta")
    with pytest.raises(InvalidInput):
        summarize(model, (3, 8, 8), label="lazy")  # a lazy module cannot infer on meta
    concrete = nn.Sequential(nn.Conv2d(3, 8, 3), nn.Flatten(), nn.Linear(8 * 6 * 6, 4)).to("meta")
    summary = summarize(concrete, (3, 8, 8), label="small")
    assert summary.output_shape == (4,)
    assert summary.total_macs == 8 * 27 * 36 + 8 * 36 * 4
