"""run(): real short trainings on the CPU, their events, outputs, checkpoints and resumes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import yaml

from app.worker.errors import InvalidInput
from app.worker.training import (
    EpochEnd,
    Event,
    Failed,
    Finished,
    RunConfig,
    Started,
    StepProgress,
    run,
)
from app.worker.training.engine import REPORT_KEYS
from app.worker.training.models import build, imagenet_path

# A run of well under a second: 2 classes, 8 px, a 4-channel smallcnn.
TINY = {
    "num_classes": 2,
    "images_per_class": 24,
    "image_size": 8,
    "width": 4,
    "batch_size": 8,
    "epochs": 2,
    "warmup_epochs": 0,
}


def tiny(**changes: Any) -> RunConfig:
    return RunConfig.from_dict({**TINY, **changes})


class Recorder:
    def __init__(self, stop_at_call: int | None = None) -> None:
        self.events: list[Event] = []
        self.stop_at_call = stop_at_call
        self.calls = 0

    def __call__(self, event: Event) -> None:
        self.events.append(event)

    def should_stop(self) -> bool:
        self.calls += 1
        return self.stop_at_call is not None and self.calls >= self.stop_at_call

    def kinds(self) -> list[str]:
        return [event.kind for event in self.events]


def train(
    config: RunConfig, out: Path, data_dir: Path, recorder: Recorder | None = None, **kw: Any
):  # type: ignore[no-untyped-def]
    recorder = recorder or Recorder()
    result = run(config, recorder, recorder.should_stop, out_dir=out, data_dir=data_dir, **kw)
    return result, recorder


def same_numbers(a: dict[str, Any], b: dict[str, Any]) -> None:
    """Every figure equal except the timings, which no two runs share."""
    timing = {"images_per_s", "seconds", "lr"}
    for key in ("val_accuracy", "val_loss", "macro_f1", "ece", "nll", "confusion_matrix"):
        assert a[key] == b[key], key
    assert a["step_loss"] == b["step_loss"]
    for ha, hb in zip(a["history"], b["history"], strict=True):
        assert {k: v for k, v in ha.items() if k not in timing} == {
            k: v for k, v in hb.items() if k not in timing
        }


def test_a_short_run_on_shapes_learns_well_above_chance(data_dir: Path, tmp_path: Path) -> None:
    config = RunConfig.from_dict(
        {
            "num_classes": 4,
            "images_per_class": 300,
            "image_size": 16,
            "width": 16,
            "batch_size": 16,
            "epochs": 4,
            "augment": "none",
        }
    )
    result, _ = train(config, tmp_path, data_dir)
    assert result.status == "succeeded", result.error
    # Chance is 0.25; with 240 validation images 0.45 is about 7 standard errors above it.
    assert result.metrics["val_accuracy"] >= 0.45
    assert result.metrics["history"][-1]["train_loss"] < result.metrics["history"][0]["train_loss"]


def test_events_outputs_and_metrics_json(data_dir: Path, tmp_path: Path) -> None:
    result, recorder = train(tiny(num_classes=6, max_misclassified=5), tmp_path, data_dir)
    assert result.status == "succeeded", result.error
    kinds = recorder.kinds()
    assert kinds[0] == "started" and kinds[-1] == "finished"
    assert kinds.count("epoch_end") == 2
    started = recorder.events[0]
    assert isinstance(started, Started) and started.train_size > 0
    steps = started.steps_per_epoch
    progress = [e for e in recorder.events if isinstance(e, StepProgress)]
    for epoch in (1, 2):  # the last step of every epoch is always reported
        assert any(e.epoch == epoch and e.step == steps for e in progress)
    assert all(e.images_per_s > 0 and e.eta_s >= 0 and e.steps == steps for e in progress)
    assert progress[-1].eta_s == 0
    for event in recorder.events:
        as_dict = json.loads(json.dumps(event.to_dict()))
        assert as_dict["kind"] == event.kind
    end = next(e for e in recorder.events if isinstance(e, EpochEnd))
    for key in ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "grad_norms"):
        assert key in end.metrics
    assert set(end.metrics["grad_norms"]) == {"stem", "stage1", "stage2", "stage3", "head"}
    finished = recorder.events[-1]
    assert isinstance(finished, Finished) and finished.status == "succeeded"

    out = tmp_path
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics == json.loads(json.dumps(result.metrics, allow_nan=False))
    assert set(REPORT_KEYS) <= set(metrics)  # the report's keys, as run() declares them
    for key in (
        "classes",
        "images_per_s",
        "val_accuracy",
        "val_top5_accuracy",
        "per_class",
        "macro_f1",
        "weighted_f1",
        "confusion_matrix",
        "roc_auc",
        "ece",
        "reliability",
        "nll",
        "history",
        "step_loss",
        "misclassified",
    ):
        assert key in metrics, key
    assert metrics["val_top5_accuracy"] is not None  # six classes
    assert len(metrics["step_loss"]) == 2 * steps
    assert set(metrics["data"]["train_counts"]) == set(metrics["classes"])
    assert metrics["data"]["skipped"] == {}
    assert (
        yaml.safe_load((out / "config.yaml").read_text())
        == tiny(num_classes=6, max_misclassified=5).to_dict()
    )

    predictions = np.load(out / "predictions.npz")
    assert predictions["y_prob"].shape == (metrics["val_size"], 6)
    assert predictions["classes"].tolist() == metrics["classes"]
    assert np.allclose(predictions["y_prob"].sum(axis=1), 1, atol=1e-5)
    wrong = int((predictions["y_prob"].argmax(1) != predictions["y_true"]).sum())
    assert len(metrics["misclassified"]) == min(5, wrong)
    for item in metrics["misclassified"]:
        assert (out / item["image"]).is_file()
        assert item["true"] != item["predicted"]

    saved = torch.load(out / "checkpoint.pt", weights_only=True)
    for key in (
        "model",
        "optimizer",
        "scheduler",
        "scaler",
        "epoch",
        "config",
        "classes",
        "versions",
        "rng",
    ):
        assert key in saved, key
    assert saved["epoch"] == 2 and saved["classes"] == metrics["classes"]
    assert saved["config"] == tiny(num_classes=6, max_misclassified=5).to_dict()


def test_the_same_seed_gives_the_same_metrics_on_cpu(data_dir: Path, tmp_path: Path) -> None:
    config = tiny(augment="strong", mixup_alpha=0.4)
    first, _ = train(config, tmp_path / "a", data_dir)
    second, _ = train(config, tmp_path / "b", data_dir)
    same_numbers(first.metrics, second.metrics)
    other, _ = train(config.replace(seed=1), tmp_path / "c", data_dir)
    assert other.metrics["step_loss"] != first.metrics["step_loss"]


# should_stop() is asked before every step, once more when the epoch's batches run out, and
# once after the epoch: stop_at picks before the first step, mid-epoch, at an epoch's end
# (trained, not yet evaluated) and at the start of the second epoch.
@pytest.mark.parametrize("stop_at", [1, 3, 5, 7])
def test_a_cancelled_run_resumes_to_the_uninterrupted_result(
    data_dir: Path, tmp_path: Path, stop_at: int
) -> None:
    config = tiny(
        augment="strong", cutmix_alpha=1.0, sampler="balanced", imbalance_ratio=2.0, epochs=3
    )
    whole, _ = train(config, tmp_path / "whole", data_dir)
    cut, recorder = train(config, tmp_path / "cut", data_dir, Recorder(stop_at_call=stop_at))
    assert cut.status == "cancelled"
    assert isinstance(recorder.events[-1], Finished) and recorder.events[-1].status == "cancelled"
    assert json.loads((tmp_path / "cut" / "metrics.json").read_text())["status"] == "cancelled"
    steps = recorder.events[0].steps_per_epoch  # type: ignore[attr-defined]
    saved = torch.load(tmp_path / "cut" / "checkpoint.pt", weights_only=True)
    epoch, asked = divmod(stop_at - 1, steps + 2)
    assert (saved["epoch"], saved["step"]) == (epoch, min(asked, steps))
    if epoch == 0:  # no epoch ended: the figures are there, and null
        assert cut.metrics["val_accuracy"] is None and cut.metrics["confusion_matrix"] is None
    assert len(cut.metrics["step_loss"]) == epoch * steps + min(asked, steps)

    resumed, events = train(config, tmp_path / "cut", data_dir, resume=True)
    assert resumed.status == "succeeded", resumed.error
    assert events.events[0].start_epoch == saved["epoch"] + 1  # type: ignore[attr-defined]
    same_numbers(whole.metrics, resumed.metrics)
    a = torch.load(tmp_path / "whole" / "checkpoint.pt", weights_only=True)
    b = torch.load(tmp_path / "cut" / "checkpoint.pt", weights_only=True)
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])


def test_resume_refuses_a_changed_config_or_a_missing_checkpoint(
    data_dir: Path, tmp_path: Path
) -> None:
    with pytest.raises(InvalidInput) as error:
        train(tiny(), tmp_path / "none", data_dir, resume=True)
    assert error.value.field == "resume"
    train(tiny(epochs=1), tmp_path / "done", data_dir)
    with pytest.raises(InvalidInput) as error:
        train(tiny(epochs=1, lr=0.01), tmp_path / "done", data_dir, resume=True)
    assert error.value.field == "lr"


def test_frozen_backbone_gets_no_gradient_and_keeps_its_weights(
    data_dir: Path, tmp_path: Path
) -> None:
    config = tiny(strategy="frozen", lr=0.05)
    torch.manual_seed(config.seed)
    initial = build(config, 2).model.state_dict()  # the run builds the same weights from its seed
    result, recorder = train(config, tmp_path, data_dir)
    assert result.status == "succeeded"
    final = torch.load(tmp_path / "checkpoint.pt", weights_only=True)["model"]
    backbone = [k for k in initial if not k.startswith("head.")]
    assert any("running_mean" in k for k in backbone)  # BN statistics are frozen too (eval mode)
    for key in backbone:
        assert torch.equal(initial[key], final[key]), key
    assert not torch.equal(initial["head.weight"], final["head.weight"])
    norms = next(e for e in recorder.events if isinstance(e, EpochEnd)).metrics["grad_norms"]
    assert norms == {
        "stem": None,
        "stage1": None,
        "stage2": None,
        "stage3": None,
        "head": norms["head"],
    }
    assert norms["head"] > 0
    assert result.metrics["model"]["frozen_stages"] == ["stem", "stage1", "stage2", "stage3"]


def test_last_n_trains_only_the_last_stages(data_dir: Path, tmp_path: Path) -> None:
    config = tiny(strategy="last_n", unfreeze_stages=2, epochs=1)
    result, recorder = train(config, tmp_path, data_dir)
    assert result.status == "succeeded"
    norms = next(e for e in recorder.events if isinstance(e, EpochEnd)).metrics["grad_norms"]
    assert norms["stem"] is None and norms["stage1"] is None
    assert norms["stage2"] > 0 and norms["stage3"] > 0 and norms["head"] > 0
    with pytest.raises(InvalidInput, match="4 backbone stages") as error:
        train(tiny(strategy="last_n", unfreeze_stages=5), tmp_path / "x", data_dir)
    assert error.value.field == "unfreeze_stages"


def test_transfer_from_an_earlier_run_keeps_the_backbone_and_replaces_the_head(
    data_dir: Path, tmp_path: Path
) -> None:
    runs = tmp_path / "runs"
    source, _ = train(tiny(num_classes=3, epochs=1), runs / "7", data_dir)
    assert source.status == "succeeded"
    before = torch.load(runs / "7" / "checkpoint.pt", weights_only=True)["model"]

    # Other classes (the first two shapes): a new 2-way head on the earlier run's backbone.
    config = tiny(init="run:7", strategy="frozen", epochs=1)
    result, _ = train(config, tmp_path / "new", data_dir, runs_dir=runs)
    assert result.status == "succeeded", result.error
    after = torch.load(tmp_path / "new" / "checkpoint.pt", weights_only=True)["model"]
    assert after["head.weight"].shape == (2, before["head.weight"].shape[1])
    for key in before:
        if not key.startswith("head."):
            assert torch.equal(before[key], after[key]), key
    assert result.metrics["model"]["init"]["head"] == "new"
    assert result.metrics["model"]["normalization"] == source.metrics["model"]["normalization"]

    # The same classes: the head comes along too (a path works as well as run:<id>).
    same = tiny(num_classes=3, epochs=1, lr=1e-7, init=str(runs / "7" / "checkpoint.pt"))
    kept, _ = train(same, tmp_path / "same", data_dir)
    assert kept.metrics["model"]["init"]["head"] == "kept"

    with pytest.raises(InvalidInput, match="width") as error:
        train(tiny(init="run:7", width=8), tmp_path / "bad", data_dir, runs_dir=runs)
    assert error.value.field == "init"
    with pytest.raises(InvalidInput, match="no checkpoint"):
        train(tiny(init="run:8"), tmp_path / "bad", data_dir, runs_dir=runs)


def test_imagenet_weights_come_from_the_local_torch_cache(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from torchvision.models import resnet18

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    path, url = imagenet_path("resnet18")
    assert path.is_relative_to(tmp_path / "torch")
    config = tiny(model="resnet18", init="imagenet", strategy="frozen", epochs=1, image_size=16)
    with pytest.raises(InvalidInput) as error:
        train(config, tmp_path / "missing", data_dir)
    assert error.value.field == "init"
    assert str(path) in str(error.value) and url in str(error.value)
    assert "cvprep weights fetch resnet18" in str(error.value)

    torch.manual_seed(123)
    weights = resnet18().state_dict()  # a locally made stand-in for the published file
    path.parent.mkdir(parents=True)
    torch.save(weights, path)
    result, _ = train(config, tmp_path / "run", data_dir)
    assert result.status == "succeeded", result.error
    trained = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)["model"]
    assert torch.equal(trained["conv1.weight"], weights["conv1.weight"])
    assert torch.equal(trained["layer4.1.bn2.running_var"], weights["layer4.1.bn2.running_var"])
    assert trained["fc.weight"].shape == (2, 512)
    assert result.metrics["model"]["normalization"]["mean"] == [0.485, 0.456, 0.406]


def test_a_run_that_raises_mid_way_fails_with_its_message(data_dir: Path, tmp_path: Path) -> None:
    recorder = Recorder()

    def on_event(event: Event) -> None:
        recorder(event)
        if isinstance(event, EpochEnd):
            raise OSError("disk full while saving the epoch")

    result = run(tiny(), on_event, lambda: False, out_dir=tmp_path, data_dir=data_dir)
    assert result.status == "failed"
    assert result.error == "OSError: disk full while saving the epoch"
    assert isinstance(recorder.events[-1], Failed)
    assert recorder.events[-1].message == result.error
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["status"] == "failed" and metrics["error"] == result.error
    assert len(metrics["history"]) == 1  # what was done is kept
    # The process carries on: the next run in it works.
    again, _ = train(tiny(epochs=1), tmp_path / "again", data_dir)
    assert again.status == "succeeded"


def test_a_data_problem_found_while_loading_fails_the_run(data_dir: Path, tmp_path: Path) -> None:
    from PIL import Image

    one_class = data_dir / "datasets" / "lonely" / "cats"
    one_class.mkdir(parents=True)
    Image.new("RGB", (8, 8)).save(one_class / "a.png")
    result, recorder = train(
        tiny(dataset="folder", folder="lonely", num_classes=0), tmp_path, data_dir
    )
    assert result.status == "failed" and "at least two class folders" in (result.error or "")
    assert recorder.kinds() == ["failed"]


def test_cifar10_absent_is_a_config_error_before_any_data(data_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="cvprep data fetch cifar10") as error:
        train(tiny(dataset="cifar10", num_classes=0), tmp_path, data_dir)
    assert error.value.field == "dataset"
    assert not (tmp_path / "config.yaml").exists()


def test_cuda_asked_for_where_there_is_none(data_dir: Path, tmp_path: Path) -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(InvalidInput, match="CUDA is not available") as error:
        train(tiny(device="cuda"), tmp_path, data_dir)
    assert error.value.field == "device"
    with pytest.raises(InvalidInput) as error:
        train(tiny(precision="fp16"), tmp_path, data_dir)
    assert error.value.field == "precision"
