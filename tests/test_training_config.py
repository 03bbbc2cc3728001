"""RunConfig: every field validated with its name and allowed values; the form description."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from app.worker.errors import InvalidInput
from app.worker.training import RunConfig
from app.worker.training.config import DATASETS, MODELS, FieldSpec

SPECS = RunConfig.fields()


def wrong_type(spec: FieldSpec) -> Any:
    return {"int": "many", "float": "fast", "bool": "yes", "str": 3, "str?": 3}[spec.type]


def out_of_range(spec: FieldSpec) -> Any:
    if spec.choices:
        return "nonsense"
    if spec.maximum is not None:
        return spec.maximum * 2 + 1
    return None


@pytest.mark.parametrize("spec", SPECS, ids=lambda spec: spec.name)
def test_every_field_rejects_a_wrong_type_naming_itself(spec: FieldSpec) -> None:
    with pytest.raises(InvalidInput) as error:
        RunConfig.from_dict({spec.name: wrong_type(spec)})
    assert error.value.field == spec.name
    assert str(error.value).startswith(f"{spec.name}: expected ")


@pytest.mark.parametrize(
    "spec", [s for s in SPECS if out_of_range(s) is not None], ids=lambda spec: spec.name
)
def test_every_bounded_field_rejects_a_value_outside_its_range(spec: FieldSpec) -> None:
    with pytest.raises(InvalidInput) as error:
        RunConfig.from_dict({spec.name: out_of_range(spec)})
    assert error.value.field == spec.name
    message = str(error.value)
    if spec.choices:
        assert all(choice in message for choice in spec.choices)  # the valid ones listed
    else:
        low, high = (
            f"{v:g}" if spec.type == "float" else str(v) for v in (spec.minimum, spec.maximum)
        )
        assert f"from {low} to {high}" in message


def test_every_field_has_a_default_help_and_group() -> None:
    config = RunConfig()
    for spec in SPECS:
        assert spec.help and spec.group
        assert getattr(config, spec.name) == spec.default
        json.dumps(spec.to_dict())  # a form can be rendered from it
    assert {s.name for s in SPECS} >= {
        "dataset",
        "folder",
        "image_size",
        "images_per_class",
        "num_classes",
        "imbalance_ratio",
        "val_fraction",
        "model",
        "batch_norm",
        "residual",
        "depth",
        "width",
        "downsample",
        "init",
        "strategy",
        "unfreeze_stages",
        "backbone_lr_mult",
        "loss",
        "focal_gamma",
        "focal_alpha",
        "label_smoothing",
        "sampler",
        "augment",
        "mixup_alpha",
        "cutmix_alpha",
        "optimizer",
        "lr",
        "momentum",
        "nesterov",
        "weight_decay",
        "warmup_epochs",
        "epochs",
        "batch_size",
        "seed",
        "precision",
        "device",
    }


def test_unknown_field_lists_the_known_ones() -> None:
    with pytest.raises(InvalidInput) as error:
        RunConfig.from_dict({"epoch": 3})
    assert error.value.field == "epoch"
    assert "epochs" in str(error.value) and "unknown field" in str(error.value)


def test_unknown_dataset_and_model_list_the_valid_ones() -> None:
    with pytest.raises(InvalidInput) as error:
        RunConfig.from_dict({"dataset": "imagenet"})
    assert all(name in str(error.value) for name in DATASETS)
    with pytest.raises(InvalidInput) as error:
        RunConfig.from_dict({"model": "vit"})
    assert all(name in str(error.value) for name in MODELS)


@pytest.mark.parametrize(
    ("values", "field", "fragment"),
    [
        ({"init": "pretrained"}, "init", "scratch, imagenet, run:<id>"),
        ({"init": "run:../etc"}, "init", "not a valid run id"),
        ({"init": "imagenet"}, "init", "not smallcnn"),
        ({"dataset": "folder"}, "folder", "needs the folder"),
        ({"folder": "mine"}, "folder", "only used with dataset 'folder'"),
        ({"dataset": "folder", "folder": "../x"}, "folder", "relative path"),
        ({"num_classes": 11}, "num_classes", "2 to 10"),
        ({"num_classes": 1, "dataset": "digits"}, "num_classes", "at least 2"),
        ({"images_per_class": 1}, "images_per_class", "at least 2"),
        ({"images_per_class": 1, "dataset": "digits"}, "images_per_class", "at least 2"),
        (
            {"images_per_class": 1, "dataset": "folder", "folder": "pets"},
            "images_per_class",
            "held out for validation",
        ),
        ({"epochs": 2, "warmup_epochs": 3}, "warmup_epochs", "at most epochs"),
        ({"device": "cpu", "precision": "fp16"}, "precision", "fp16 needs CUDA"),
        ({"epochs": 2.5}, "epochs", "integer"),
        ({"lr": float("nan")}, "lr", "number"),
        ({"batch_norm": 1}, "batch_norm", "true or false"),
    ],
)
def test_combinations_that_cannot_run(values: dict[str, Any], field: str, fragment: str) -> None:
    with pytest.raises(InvalidInput) as error:
        RunConfig.from_dict(values)
    assert error.value.field == field
    assert fragment in str(error.value)


def test_a_config_round_trips_through_yaml_and_json() -> None:
    config = RunConfig.from_dict(
        {"dataset": "folder", "folder": "pets/v1", "model": "resnet18", "init": "run:42", "lr": 1}
    )
    assert config.lr == 1.0 and isinstance(config.lr, float)
    assert RunConfig.from_dict(yaml.safe_load(yaml.safe_dump(config.to_dict()))) == config
    assert RunConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    assert RunConfig.from_dict({"epochs": 3.0}).epochs == 3  # YAML may write 3.0
    assert RunConfig.from_dict({"folder": ""}).folder is None  # an empty form field
    assert config.replace(epochs=9).epochs == 9
    with pytest.raises(InvalidInput):
        config.replace(epochs=0)


def test_the_smallest_api_body_is_valid() -> None:
    config = RunConfig.from_dict({"dataset": "shapes", "model": "smallcnn", "epochs": 1})
    assert config.warmup_epochs <= config.epochs


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"lr": 10**400}, "lr"),  # float() of it overflows
        ({"lr": "1" * 400}, "lr"),  # as text, too long to be a number anyone means
        ({"epochs": 10**5000}, "epochs"),  # too long even to print
        ({"weight_decay": -(10**309)}, "weight_decay"),
    ],
)
def test_numbers_too_large_to_convert_are_a_config_error(
    values: dict[str, Any], field: str
) -> None:
    with pytest.raises(InvalidInput) as raised:
        RunConfig.from_dict(values)
    assert raised.value.field == field
    assert len(str(raised.value)) < 300


@pytest.mark.parametrize("folder", ["a" * 5000, "bad\x00name"])
def test_a_folder_name_the_file_system_refuses_is_a_config_error(tmp_path, folder: str) -> None:
    from app.worker.training.data.folder import resolve_folder

    with pytest.raises(InvalidInput) as raised:
        resolve_folder(tmp_path, folder)
    assert raised.value.field == "folder"
