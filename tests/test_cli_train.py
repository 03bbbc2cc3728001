"""`cvprep train`: the README's config, exit codes 0/1/2/130, resume; `cvprep weights fetch`."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from app.cli import main
from app.cli_train import load_config
from app.settings import ROOT
from app.worker.errors import InvalidInput
from app.worker.training.models import imagenet_path

TINY = [
    "--set",
    "epochs=1",
    "--set",
    "images_per_class=20",
    "--set",
    "image_size=8",
    "--set",
    "width=4",
]


def readme_config() -> str:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Training from the command line", 1)[1].split("\n## ", 1)[0]
    match = re.search(r"```yaml\n(.*?)```", section, re.S)
    assert match, "the README's training section has a YAML example"
    return match.group(1)


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A DATA_DIR of the test's own, set in the environment as `cvprep train` reads it."""
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"


def test_the_readme_example_parses_and_trains_at_a_tiny_size(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config_file = tmp_path / "shapes.yaml"
    config_file.write_text(readme_config())
    config = load_config(config_file, [])
    assert (config.dataset, config.model, config.epochs) == ("shapes", "smallcnn", 5)
    out = tmp_path / "out"
    assert main(["train", str(config_file), *TINY, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "Validation metrics" in printed and "macro F1" in printed
    runtime = json.loads((out / "metrics.json").read_text())["runtime"]
    said = f"Precision {runtime['precision']}: {runtime['precision_reason']}"
    assert said in " ".join(printed.split())  # which precision ran, and why
    assert f"Outputs: {out}" in printed.replace("\n", "")
    for name in ("config.yaml", "metrics.json", "predictions.npz", "checkpoint.pt"):
        assert (out / name).is_file(), name
    written = yaml.safe_load((out / "config.yaml").read_text())
    assert (written["epochs"], written["image_size"], written["num_classes"]) == (1, 8, 10)


def test_the_default_output_folder_is_under_data_dir(data_dir: Path, tmp_path: Path) -> None:
    config_file = tmp_path / "mini.yaml"
    config_file.write_text("num_classes: 2\n")
    assert main(["train", str(config_file), *TINY]) == 0
    (run_dir,) = (data_dir / "train").iterdir()
    assert run_dir.name.startswith("mini-") and (run_dir / "metrics.json").is_file()


@pytest.mark.parametrize(
    ("text", "extra", "fragment"),
    [
        ("lr: fast\n", [], "lr: expected a number"),
        ("model: vit\n", [], "model: expected one of smallcnn, resnet18"),
        ("epochs: 3\n", ["--set", "epocs=4"], "epocs: unknown field"),
        ("epochs: 3\n", ["--set", "epochs"], "--set: expected key=value"),
        ("- a list\n", [], "config: "),
        ("epochs: [\n", [], "config: "),
        ("dataset: folder\nfolder: nowhere\n", [], "folder: no folder 'nowhere'"),
        ("epochs: 1\n", ["--resume"], "--out: --resume needs"),
    ],
)
def test_a_bad_config_exits_2_naming_the_field_before_any_data(
    data_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    text: str,
    extra: list[str],
    fragment: str,
) -> None:
    config_file = tmp_path / "bad.yaml"
    config_file.write_text(text)
    assert (
        main(
            ["train", str(config_file), *extra, "--out", str(tmp_path / "o")]
            if "--resume" not in extra
            else ["train", str(config_file), *extra]
        )
        == 2
    )
    assert fragment in capsys.readouterr().err.replace("\n", " ")
    assert not (data_dir / "cache").exists()  # nothing was decoded
    assert main(["train", str(tmp_path / "absent.yaml")]) == 2


def test_a_failed_run_exits_1_with_its_message(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from PIL import Image

    only = data_dir / "datasets" / "pets" / "cats"
    only.mkdir(parents=True)
    Image.new("RGB", (8, 8)).save(only / "a.png")
    config_file = tmp_path / "pets.yaml"
    config_file.write_text("dataset: folder\nfolder: pets\n")
    assert main(["train", str(config_file), "--out", str(tmp_path / "o")]) == 1
    assert "at least two class folders" in capsys.readouterr().err.replace("\n", " ")
    assert json.loads((tmp_path / "o" / "metrics.json").read_text())["status"] == "failed"


def test_ctrl_c_saves_exits_130_and_resume_finishes(tmp_path: Path) -> None:
    config_file = tmp_path / "long.yaml"
    config_file.write_text(
        "num_classes: 10\nimages_per_class: 120\nimage_size: 16\nwidth: 8\nepochs: 1\n"
    )
    out = tmp_path / "out"
    env = {
        **os.environ,
        "DATA_DIR": str(tmp_path / "data"),
        "PYTHONPATH": str(ROOT),
        "PYTHONUNBUFFERED": "1",
    }
    command = [sys.executable, "-m", "app.cli", "train", str(config_file), "--out", str(out)]
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert process.stdout is not None
    seen = []
    deadline = time.monotonic() + 120
    for line in process.stdout:  # "Training on ..." is printed as the first step starts
        seen.append(line)
        if line.startswith("Training on") or time.monotonic() > deadline:
            break
    process.send_signal(signal.SIGINT)
    rest, _ = process.communicate(timeout=120)
    assert process.returncode == 130, "".join(seen) + rest
    assert "Interrupted; saved to" in rest
    saved = torch.load(out / "checkpoint.pt", weights_only=True)
    assert saved["epoch"] == 0
    assert json.loads((out / "metrics.json").read_text())["status"] == "cancelled"

    # As the README says: resume from the run's own config.yaml.
    again = [sys.executable, "-m", "app.cli", "train", str(out / "config.yaml"), "--out", str(out)]
    resumed = subprocess.run(
        [*again, "--resume"], env=env, capture_output=True, text=True, timeout=300
    )
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "resuming at epoch 1" in resumed.stdout.replace("\n", " ")
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["status"] == "succeeded" and metrics["epochs_completed"] == 1


def test_weights_fetch_knows_the_architectures_and_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    assert main(["weights", "fetch", "vgg11"]) == 2
    assert "resnet18, mobilenet_v3_small, efficientnet_b0" in capsys.readouterr().err
    path, _ = imagenet_path("mobilenet_v3_small")
    path.parent.mkdir(parents=True)
    path.write_bytes(b"placed by hand")
    assert main(["weights", "fetch", "mobilenet_v3_small"]) == 0
    assert str(path) in capsys.readouterr().out


def test_set_values_are_read_as_yaml(tmp_path: Path) -> None:
    config_file = tmp_path / "c.yaml"
    config_file.write_text("")
    config = load_config(config_file, ["residual=true", "lr=1e-2", "folder=", "init=run:5"])
    assert config.residual is True and config.lr == 0.01 and config.folder is None
    assert config.init == "run:5"
    with pytest.raises(InvalidInput) as error:
        load_config(config_file, ["depth=two"])
    assert error.value.field == "depth"
