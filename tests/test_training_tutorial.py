"""The tutorial-loop baseline and the bench that sets the engine beside it."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from app.worker.training import RunConfig, run
from app.worker.training.tutorial import train_tutorial
from benchmarks import training as bench


def test_the_tutorial_loop_trains_on_an_image_folder(tmp_path: Path) -> None:
    root = bench.write_folder(tmp_path, bench.QUICK, 16)
    config = RunConfig.from_dict(
        {**bench.config_dict("smallcnn", bench.QUICK, "cpu"), "folder": root.name, "epochs": 2}
    )
    result = train_tutorial(
        root, config, mean=(0.5,) * 3, std=(0.25,) * 3, device=torch.device("cpu"), num_workers=0
    )
    assert result.images_per_s > 0 and result.train_seconds > 0
    assert 0.0 <= result.val_accuracy <= 1.0
    assert result.first_step_s > 0


@pytest.mark.slow
def test_the_bench_compares_both_trainers_in_fresh_processes(tmp_path: Path) -> None:
    rows = bench.compare(tmp_path, "cpu", bench.QUICK, models=("smallcnn",))
    (row,) = rows
    for trainer in ("engine", "tutorial"):
        figures = row[trainer]
        assert figures["images_per_s"] > 0 and figures["peak_rss_mib"] > 50
        assert 0.0 <= figures["val_accuracy"] <= 1.0
    assert row["engine"]["cache"] == "hit"  # the measured run read the decoded copy
    assert row["ratio"] == pytest.approx(
        row["engine"]["images_per_s"] / row["tutorial"]["images_per_s"]
    )


# should_stop() is asked before every step, once when an epoch's batches run out and once
# after it (4 steps an epoch): 1 stops before any step, 3 inside the first epoch, 6 at its
# end, 7 before the second epoch's first step and 9 inside it.
@pytest.mark.parametrize("stop_at", [1, 3, 6, 7, 9])
def test_the_tutorial_loop_cancelled_and_resumed_equals_the_uninterrupted_run(
    tmp_path: Path, stop_at: int
) -> None:
    config = RunConfig.from_dict(
        {
            "loop": "tutorial",
            "augment": "standard",
            "num_classes": 2,
            "images_per_class": 24,
            "image_size": 8,
            "width": 4,
            "batch_size": 8,
            "epochs": 2,
            "warmup_epochs": 0,
        }
    )
    data = tmp_path / "data"

    def train(out: Path, stop: int | None = None, resume: bool = False):  # type: ignore[no-untyped-def]
        calls = [0]

        def should_stop() -> bool:
            calls[0] += 1
            return stop is not None and calls[0] >= stop

        return run(config, lambda e: None, should_stop, out_dir=out, data_dir=data, resume=resume)

    whole = train(tmp_path / "whole")
    cut = train(tmp_path / "cut", stop=stop_at)
    assert cut.status == "cancelled"
    resumed = train(tmp_path / "cut", resume=True)
    assert resumed.status == "succeeded", resumed.error
    assert resumed.metrics["step_loss"] == whole.metrics["step_loss"]
    assert resumed.metrics["val_loss"] == whole.metrics["val_loss"]
    a = torch.load(tmp_path / "whole" / "checkpoint.pt", weights_only=True)
    b = torch.load(tmp_path / "cut" / "checkpoint.pt", weights_only=True)
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])


def test_the_ceiling_bench_times_bare_steps_in_both_precisions() -> None:
    from benchmarks import ceiling

    config = bench.config_dict("smallcnn", ceiling.QUICK, "cpu")
    for precision in ("fp32", "bf16"):
        assert ceiling.ceiling(config, precision, steps=2) > 0
