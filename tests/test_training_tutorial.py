"""The tutorial-loop baseline and the bench that sets the engine beside it."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from app.worker.training import RunConfig
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
