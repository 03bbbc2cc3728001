"""The engine fields experiments need: first_class, loop "tutorial", eval_train."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from app.worker.errors import InvalidInput
from app.worker.training import RunConfig, run
from app.worker.training.checkpoint import FILENAME
from app.worker.training.data import load_data, shapes
from app.worker.training.engine import TUTORIAL_FOLDER
from app.worker.training.models import build

TINY = {
    "images_per_class": 24,
    "image_size": 8,
    "width": 4,
    "batch_size": 8,
    "epochs": 2,
    "warmup_epochs": 0,
}


def tiny(**changes: Any) -> RunConfig:
    return RunConfig.from_dict({**TINY, **changes})


def train(config: RunConfig, out: Path, data_dir: Path) -> tuple[Any, list[Any]]:
    events: list[Any] = []
    result = run(config, events.append, lambda: False, out_dir=out, data_dir=data_dir)
    return result, events


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"first_class": -1}, "first_class"),
        ({"first_class": 1000}, "first_class"),
        ({"first_class": 9}, "first_class"),  # one shape class left
        ({"first_class": 5, "num_classes": 6}, "first_class"),  # past the tenth
        ({"loop": "fast"}, "loop"),
        ({"loop": "tutorial", "augment": "strong"}, "augment"),
        ({"loop": "tutorial", "mixup_alpha": 0.2}, "mixup_alpha"),
        ({"loop": "tutorial", "cutmix_alpha": 1.0}, "cutmix_alpha"),
        ({"loop": "tutorial", "sampler": "balanced"}, "sampler"),
        ({"eval_train": "yes"}, "eval_train"),
    ],
)
def test_bad_values_name_their_field(values: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidInput) as error:
        RunConfig.from_dict(values)
    assert error.value.field == field


def test_defaults_change_nothing() -> None:
    config = RunConfig()
    assert (config.first_class, config.loop, config.eval_train) == (0, "engine", False)
    assert RunConfig.from_dict({"first_class": 5, "num_classes": 5}).first_class == 5


def test_first_class_keeps_the_same_pixels_of_the_later_classes(data_dir: Path) -> None:
    config = tiny(first_class=5, num_classes=3, val_fraction=0.25)
    data = load_data(config, data_dir, torch.device("cpu"))
    assert data.classes == list(shapes.CLASSES[5:8])
    images, labels = shapes.generate(8, 24, 8, 0)
    expected = images[labels >= 5]
    got = torch.cat([data.train_images, data.val_images])
    # Every kept image is one of the shapes generator's images of classes 5-7, with the label
    # renumbered from 0.
    for image, label in zip(got, torch.cat([data.train_labels, data.val_labels]), strict=True):
        matches = (expected == image).flatten(1).all(1).nonzero().flatten()
        assert len(matches) == 1
        assert int(labels[labels >= 5][matches[0]]) - 5 == int(label)
    assert len(got) == 3 * 24
    assert set(data.info["train_counts"]) == set(shapes.CLASSES[5:8])


def test_first_class_past_a_folders_classes_is_a_data_error(tmp_path: Path) -> None:
    from PIL import Image

    for name in ("a", "b"):
        folder = tmp_path / "datasets" / "two" / name
        folder.mkdir(parents=True)
        for n in range(3):
            Image.new("RGB", (8, 8), (n * 40, 0, 0)).save(folder / f"{n}.png")
    config = tiny(dataset="folder", folder="two", first_class=1)
    result, _ = train(config, tmp_path / "out", tmp_path)
    assert result.status == "failed"
    assert "first_class" in (result.error or "")


def test_the_tutorial_loop_reports_the_same_events_and_cleans_up(
    data_dir: Path, tmp_path: Path
) -> None:
    config = tiny(num_classes=3, loop="tutorial")
    result, events = train(config, tmp_path / "tutorial", data_dir)
    engine, engine_events = train(config.replace(loop="engine"), tmp_path / "engine", data_dir)
    assert result.status == engine.status == "succeeded"
    kinds = [e.kind for e in events]
    assert kinds[0] == "started" and kinds[-1] == "finished"
    assert kinds.count("epoch_end") == 2
    assert {e.kind for e in events} == {e.kind for e in engine_events}
    history = result.metrics["history"]
    assert [h["train_images"] for h in history] == [
        h["train_images"] for h in engine.metrics["history"]
    ]
    assert all(h["images_per_s"] > 0 for h in history)
    assert all(v > 0 for v in history[-1]["grad_norms"].values())
    assert not (tmp_path / "tutorial" / TUTORIAL_FOLDER).exists()


def test_eval_train_is_the_saved_models_accuracy_on_the_training_split(
    data_dir: Path, tmp_path: Path
) -> None:
    config = tiny(num_classes=3, eval_train=True, augment="strong")
    result, _ = train(config, tmp_path / "out", data_dir)
    last = result.metrics["history"][-1]
    assert "train_eval_accuracy" in last and "train_eval_loss" in last
    assert (
        "train_eval_accuracy"
        not in train(tiny(num_classes=3), tmp_path / "plain", data_dir)[0].metrics["history"][-1]
    )
    # Recompute with torch from the checkpoint: normalise, forward in eval mode, argmax.
    saved = torch.load(tmp_path / "out" / FILENAME, weights_only=False)
    data = load_data(config, data_dir, torch.device("cpu"))
    net = build(config, 3)
    net.model.load_state_dict(saved["model"])
    net.model.eval()
    norm = saved["normalization"]
    mean = torch.tensor(norm["mean"]).view(1, 3, 1, 1)
    std = torch.tensor(norm["std"]).view(1, 3, 1, 1)
    with torch.inference_mode():
        logits = net.model((data.train_images.float() / 255 - mean) / std)
    accuracy = float((logits.argmax(1) == data.train_labels).float().mean())
    loss = float(F.cross_entropy(logits, data.train_labels))
    assert last["train_eval_accuracy"] == pytest.approx(accuracy, abs=1e-6)
    assert last["train_eval_loss"] == pytest.approx(loss, rel=1e-4)
    assert np.isfinite(last["train_eval_loss"])
