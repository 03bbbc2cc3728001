"""The demos' JSON API over HTTP: the /api/shapes/conv contract, summaries, pooling, facts."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch
import torchvision
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

from app.main import create_app
from app.settings import Settings
from app.worker.summary import ARCHITECTURES


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """One app for the module (the demos keep no state between requests), not one per test."""
    app_settings = Settings(DATA_DIR=tmp_path_factory.mktemp("data"), SECRET_KEY="test-secret-key")
    with TestClient(create_app(app_settings)) as test_client:
        yield test_client


RESNET_STEM = {
    "in_channels": 3,
    "height": 224,
    "width": 224,
    "out_channels": 64,
    "kernel_size": 7,
    "stride": 2,
    "padding": 3,
    "bias": False,
}


def test_conv_api_returns_shape_params_and_macs(client: TestClient) -> None:
    response = client.post("/api/shapes/conv", json=RESNET_STEM)
    assert response.status_code == 200
    body = response.json()
    assert {
        key: body[key] for key in ("out_channels", "out_height", "out_width", "params", "macs")
    } == {
        "out_channels": 64,
        "out_height": 112,
        "out_width": 112,
        "params": 9408,
        "macs": 112 * 112 * 64 * 3 * 7 * 7,
    }
    assert body["module"] == "nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False)"


def test_conv_api_takes_pairs_and_padding_words(client: TestClient) -> None:
    body = {
        **RESNET_STEM,
        "kernel_size": [3, 5],
        "stride": 1,
        "padding": "same",
        "dilation": [1, 2],
    }
    response = client.post("/api/shapes/conv", json=body)
    assert response.status_code == 200
    assert (response.json()["out_height"], response.json()["out_width"]) == (224, 224)
    assert response.json()["padding"] == [[1, 1], [4, 4]]


def _torch_conv(body: dict) -> tuple[int, int, int, int, int] | None:
    """(out_channels, out_height, out_width, params, macs) from nn.Conv2d, or None if it refuses."""
    try:
        layer = nn.Conv2d(
            body["in_channels"],
            body["out_channels"],
            body["kernel_size"],
            body["stride"],
            body["padding"],
            body["dilation"],
            body["groups"],
            body["bias"],
        )
        out = layer(torch.zeros(1, body["in_channels"], body["height"], body["width"]))
    except (RuntimeError, ValueError):
        return None
    _, channels, height, width = out.shape
    params = sum(p.numel() for p in layer.parameters())
    return channels, height, width, params, layer.weight.numel() * height * width


sides = st.one_of(st.integers(1, 5), st.lists(st.integers(1, 5), min_size=2, max_size=2))
pads = st.one_of(
    st.integers(0, 3),
    st.lists(st.integers(0, 3), min_size=2, max_size=2),
    st.sampled_from(["same", "valid"]),
)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    st.fixed_dictionaries(
        {
            "in_channels": st.integers(1, 8),
            "height": st.integers(1, 14),
            "width": st.integers(1, 14),
            "out_channels": st.integers(1, 8),
            "kernel_size": sides,
            "stride": sides,
            "padding": pads,
            "dilation": sides,
            "groups": st.integers(1, 4),
            "bias": st.booleans(),
        }
    )
)
def test_conv_api_equals_torch_conv2d_for_every_input(client: TestClient, body: dict) -> None:
    response = client.post("/api/shapes/conv", json=body)
    expected = _torch_conv(body)
    if expected is None:
        assert response.status_code == 422, body
        return
    assert response.status_code == 200, (body, response.json())
    got = response.json()
    assert (
        got["out_channels"],
        got["out_height"],
        got["out_width"],
        got["params"],
        got["macs"],
    ) == expected


INVALID_CONV = [
    ({"in_channels": 0}, "in_channels"),
    ({"in_channels": -3}, "in_channels"),
    ({"height": 0}, "height"),
    ({"width": -1}, "width"),
    ({"out_channels": 0}, "out_channels"),
    ({"kernel_size": 0}, "kernel_size"),
    ({"kernel_size": [3, 3, 3]}, "kernel_size"),
    ({"kernel_size": [3, 0]}, "kernel_size"),
    ({"stride": 0}, "stride"),
    ({"padding": -1}, "padding"),
    ({"padding": "full"}, "padding"),
    ({"dilation": 0}, "dilation"),
    ({"groups": 0}, "groups"),
    ({"groups": 2}, "groups"),  # 3 input channels
    ({"in_channels": 4, "out_channels": 6, "groups": 4}, "groups"),
    ({"padding": "same", "stride": 2}, "stride"),
    ({"height": 5, "width": 5, "padding": 0}, "kernel_size"),  # a 7×7 kernel: output < 1
    ({"kernel_size": 3, "dilation": 200, "padding": 0}, "dilation"),  # 3 taps alone fit
    ({"in_channels": 10**9}, "in_channels"),
    ({"in_channels": "three"}, "in_channels"),
    ({"in_channels": 3.5}, "in_channels"),
    ({"bias": "yes"}, "bias"),
    ({"kernal_size": 3}, "kernal_size"),
]


@pytest.mark.parametrize(("change", "field"), INVALID_CONV)
def test_invalid_conv_input_is_422_naming_the_field(
    client: TestClient, change: dict, field: str
) -> None:
    response = client.post("/api/shapes/conv", json={**RESNET_STEM, **change})
    assert response.status_code == 422
    assert response.json()["detail"].startswith(field), response.json()["detail"]


def test_missing_conv_field_is_422_naming_it(client: TestClient) -> None:
    body = {key: value for key, value in RESNET_STEM.items() if key != "out_channels"}
    response = client.post("/api/shapes/conv", json=body)
    assert response.status_code == 422
    assert response.json()["detail"].startswith("out_channels")


@pytest.mark.parametrize(
    ("body", "shape"),
    [
        (
            {
                "kind": "conv_transpose2d",
                "in_channels": 16,
                "height": 7,
                "width": 7,
                "out_channels": 8,
                "kernel_size": 4,
                "stride": 2,
                "padding": 1,
            },
            [8, 14, 14],
        ),
        (
            {
                "kind": "max_pool2d",
                "in_channels": 64,
                "height": 112,
                "width": 112,
                "kernel_size": 3,
                "stride": 2,
                "padding": 1,
            },
            [64, 56, 56],
        ),
        (
            {
                "kind": "avg_pool2d",
                "in_channels": 3,
                "height": 7,
                "width": 7,
                "kernel_size": 2,
                "ceil_mode": True,
            },
            [3, 4, 4],
        ),
        ({"kind": "linear", "in_channels": 512, "height": 1, "width": 1, "out_channels": 10}, [10]),
    ],
)
def test_layer_api_covers_every_kind(client: TestClient, body: dict, shape: list[int]) -> None:
    response = client.post("/api/shapes/layer", json=body)
    assert response.status_code == 200
    assert response.json()["output_shape"] == shape


def test_model_api_totals_equal_torchvision(client: TestClient) -> None:
    response = client.post(
        "/api/shapes/model", json={"arch": "resnet50", "height": 224, "width": 224}
    )
    assert response.status_code == 200
    body = response.json()
    meta = torchvision.models.ResNet50_Weights.DEFAULT.meta
    assert body["total_params"] == meta["num_params"] == 25_557_032
    assert body["total_macs"] == 4_089_184_256
    assert sum(layer["params"] for layer in body["layers"]) == body["total_params"]
    assert body["layers"][0] == {
        "name": "conv1",
        "layer": "Conv2d",
        "depth": 1,
        "output_shape": [64, 112, 112],
        "params": 9408,
        "params_percent": pytest.approx(0.0368, abs=1e-4),
        "trainable": 9408,
        "macs": 118_013_952,
        "receptive_field": [7, 7],
        "whole_input": False,
    }


def test_model_api_with_an_unknown_architecture_lists_the_known_ones(client: TestClient) -> None:
    response = client.post("/api/shapes/model", json={"arch": "resnet51"})
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert detail.startswith("arch: unknown architecture 'resnet51'; known: alexnet, ")
    assert all(name in detail for name in ARCHITECTURES)
    assert client.get("/api/shapes/architectures").json() == list(ARCHITECTURES)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"arch": "alexnet", "height": 16, "width": 16}, "height"),
        ({"arch": "resnet18", "height": 0}, "height"),
        ({"arch": "resnet18", "width": 5000}, "width"),
        ({"arch": "resnet18", "trainable": "some"}, "trainable"),
        ({"arch": 5}, "arch"),
    ],
)
def test_model_api_bad_sizes_are_422(client: TestClient, body: dict, field: str) -> None:
    response = client.post("/api/shapes/model", json=body)
    assert response.status_code == 422
    assert response.json()["detail"].startswith(field)


def test_stack_api_tabulates_the_typed_layers(client: TestClient) -> None:
    text = "conv 16 k3 p1\nbn\nrelu\nmaxpool k2\ngap\nflatten\nlinear 10"
    response = client.post("/api/shapes/stack", json={"layers": text, "height": 32, "width": 32})
    assert response.status_code == 200
    body = response.json()
    model = nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1),
        nn.BatchNorm2d(16),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(16, 10),
    )
    assert body["total_params"] == sum(p.numel() for p in model.parameters())
    assert [layer["name"] for layer in body["layers"]] == text.splitlines()
    assert body["layers"][3]["output_shape"] == [16, 16, 16]


def test_stack_api_error_names_the_line(client: TestClient) -> None:
    body = {"layers": "conv 8\nconv 8 k99", "height": 32, "width": 32}
    response = client.post("/api/shapes/stack", json=body)
    assert response.status_code == 422
    assert response.json()["detail"].startswith("layers: line 2 (`conv 8 k99`): kernel `k`:")


def test_pooling_grid_api_returns_outputs_and_autograd_gradients(client: TestClient) -> None:
    grid = [[1, 2, 0, 1], [4, 3, 1, 0], [0, 1, 5, 2], [1, 0, 2, 6]]
    response = client.post("/api/pooling/grid", json={"grid": grid, "kernel": 2})
    assert response.status_code == 200
    methods = {method["method"]: method for method in response.json()["methods"]}
    assert methods["max"]["output"] == [[4, 1], [1, 6]]
    assert methods["avg"]["output"] == [[2.5, 0.5], [0.5, 3.75]]
    assert methods["max"]["gradients"][0][0][1][0] == 1  # the 4 wins the top-left window
    assert methods["avg"]["gradients"][0][0][0][:2] == [0.25, 0.25]
    assert methods["max"]["reads"][1][1] == [[2, 2], [2, 3], [3, 2], [3, 3]]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"grid": [[1, 2], [3]], "kernel": 1}, "grid"),
        ({"grid": [[1, 2], [3, 4]], "kernel": 3}, "kernel"),
        ({"grid": [[1, 2], [3, 4]], "stride": 0}, "stride"),
        ({"grid": "1 2\n3 4"}, "grid"),
    ],
)
def test_pooling_grid_api_bad_input_is_422(client: TestClient, body: dict, field: str) -> None:
    response = client.post("/api/pooling/grid", json=body)
    assert response.status_code == 422
    assert response.json()["detail"].startswith(field)


def test_architectures_api_counts_params_and_reads_weight_metadata(client: TestClient) -> None:
    rows = client.get("/api/architectures").json()
    assert len(rows) >= 8
    for row in rows:
        if row["builder"] is None:
            continue
        weights = torchvision.models.get_model_weights(row["builder"])[row["weights"]]
        assert row["top1"] == weights.meta["_metrics"]["ImageNet-1K"]["acc@1"]
        assert row["gflops"] == weights.meta["_ops"]
        if (
            weights.meta["num_params"]
            == torchvision.models.get_model_weights(row["builder"]).DEFAULT.meta["num_params"]
        ):
            assert row["params"] == weights.meta["num_params"]


def test_demo_endpoints_are_in_the_openapi_schema(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    for path in (
        "/api/shapes/conv",
        "/api/shapes/layer",
        "/api/shapes/stack",
        "/api/shapes/model",
        "/api/pooling/grid",
        "/api/architectures",
    ):
        assert path in paths
    assert "422" in paths["/api/shapes/conv"]["post"]["responses"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": "linear", "kernel_size": 3}, "kernel_size"),
        ({"kind": "max_pool2d", "kernel_size": 2, "groups": 2}, "groups"),
        ({"kind": "avg_pool2d", "kernel_size": 2, "out_channels": 8}, "out_channels"),
        ({"kind": "conv2d", "kernel_size": 3, "ceil_mode": True}, "ceil_mode"),
    ],
)
def test_layer_api_refuses_a_setting_the_kind_does_not_use(
    client: TestClient, body: dict, field: str
) -> None:
    response = client.post(
        "/api/shapes/layer", json={"in_channels": 3, "height": 8, "width": 8, **body}
    )
    assert response.status_code == 422
    assert response.json()["detail"].startswith(f"{field}: "), response.json()["detail"]
    assert "has no" in response.json()["detail"]
