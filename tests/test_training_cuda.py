"""The engine's CUDA path; these run only where CUDA is present (skipped elsewhere).

The same checks, without pytest or the web stack, run on a GPU machine with
`PYTHONPATH=. python3 -m benchmarks.training --device cuda --check` (benchmarks/training.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from app.worker.training import RunConfig, StepProgress, run
from app.worker.training.augment import Augmenter
from app.worker.training.data import load_data
from app.worker.training.loop import resolve_precision

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

SMALL = {
    "num_classes": 4,
    "images_per_class": 64,
    "image_size": 16,
    "width": 8,
    "batch_size": 32,
    "epochs": 2,
    "device": "cuda",
}


def test_auto_precision_is_bf16_where_native_else_fp16_with_a_scaler() -> None:
    precision = resolve_precision("auto", torch.device("cuda"))
    native = torch.cuda.is_bf16_supported(including_emulation=False)
    assert precision.name == ("bf16" if native else "fp16")
    assert precision.needs_scaler is (not native)
    with precision.autocast():
        out = torch.nn.Linear(8, 8).cuda()(torch.randn(4, 8, device="cuda"))
    assert out.dtype == precision.dtype


def test_data_lives_on_the_gpu_and_batches_are_channels_last(tmp_path: Path) -> None:
    data = load_data(RunConfig.from_dict(SMALL), tmp_path, torch.device("cuda"))
    assert data.train_images.is_cuda and data.train_images.dtype == torch.uint8
    assert data.val_labels.is_cuda
    augmenter = Augmenter(
        "strong",
        hflip=True,
        mean=data.mean,
        std=data.std,
        device=torch.device("cuda"),
        generator=torch.Generator(device="cuda").manual_seed(0),
        mix_generator=torch.Generator().manual_seed(0),
        num_classes=4,
        cutmix_alpha=1.0,
        channels_last=True,
    )
    x, targets = augmenter.train_batch(data.train_images[:8], data.train_labels[:8])
    assert x.is_cuda and x.is_contiguous(memory_format=torch.channels_last)
    assert targets.shape == (8, 4)


def test_the_non_blocking_copy_to_the_gpu_delivers_the_same_data_as_the_cpu(
    tmp_path: Path,
) -> None:
    """The data go to the GPU once, from pinned memory with non_blocking=True: the copy must
    not race with the pinned buffers being freed; what arrives equals the CPU's tensors."""
    config = RunConfig.from_dict(SMALL)
    on_cpu = load_data(config, tmp_path, torch.device("cpu"))
    on_gpu = load_data(config, tmp_path, torch.device("cuda"))
    # Work queued behind the copies on the same stream, before anything synchronises.
    total = on_gpu.train_images.sum(dtype=torch.int64)
    assert torch.equal(on_gpu.train_images.cpu(), on_cpu.train_images)
    assert torch.equal(on_gpu.val_labels.cpu(), on_cpu.val_labels)
    assert int(total) == int(on_cpu.train_images.sum(dtype=torch.int64))


def test_a_worker_pinned_to_a_gpu_sees_only_that_gpu(tmp_path: Path) -> None:
    """`cvprep worker --gpu N` sets CUDA_VISIBLE_DEVICES before torch is imported; a child
    process that imports torch afterwards sees exactly that one GPU as cuda:0."""
    import subprocess
    import sys

    last = torch.cuda.device_count() - 1
    script = (
        "import os\n"
        "from app.runs.celery_worker import _pin_gpu\n"
        f"_pin_gpu('{last}')\n"
        "import torch\n"
        "print(os.environ['CUDA_VISIBLE_DEVICES'], torch.cuda.device_count(), "
        "torch.cuda.get_device_name(0))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    visible, count, name = done.stdout.strip().split(" ", 2)
    assert (visible, count) == (str(last), "1")
    assert name == torch.cuda.get_device_name(last)


@pytest.mark.parametrize("precision", ["auto", "fp16", "bf16", "fp32"])
def test_a_short_cuda_run(tmp_path: Path, precision: str) -> None:
    if precision == "bf16" and not torch.cuda.is_bf16_supported(including_emulation=False):
        pytest.skip("no native bf16 on this GPU")
    events: list[object] = []
    config = RunConfig.from_dict(
        {**SMALL, "precision": precision, "augment": "strong", "mixup_alpha": 0.2}
    )
    result = run(config, events.append, lambda: False, out_dir=tmp_path, data_dir=tmp_path / "data")
    assert result.status == "succeeded", result.error
    runtime = result.metrics["runtime"]
    assert runtime["device"].startswith("cuda") and runtime["channels_last"] is True
    assert torch.backends.cudnn.benchmark is True
    expected = resolve_precision(precision, torch.device("cuda")).name
    assert runtime["precision"] == expected
    assert any(isinstance(e, StepProgress) for e in events)
    saved = torch.load(tmp_path / "checkpoint.pt", weights_only=True, map_location="cpu")
    assert ("scale" in saved["scaler"]) is (expected == "fp16")  # the GradScaler's state kept
    assert result.metrics["val_accuracy"] is not None


def test_a_cuda_checkpoint_resumes_on_the_cpu(tmp_path: Path) -> None:
    config = RunConfig.from_dict({**SMALL, "epochs": 1})
    assert (
        run(config, lambda e: None, lambda: False, out_dir=tmp_path, data_dir=tmp_path / "d").status
        == "succeeded"
    )
    saved = torch.load(tmp_path / "checkpoint.pt", weights_only=True, map_location="cpu")
    assert all(t.device.type == "cpu" for t in saved["model"].values())


@pytest.mark.parametrize("optimizer", ["adamw", "sgd"])
def test_the_optimizer_runs_torchs_fused_kernels_on_cuda(optimizer: str) -> None:
    from app.worker.training.loop import build_optimizer
    from app.worker.training.models import build

    config = RunConfig.from_dict({**SMALL, "optimizer": optimizer})
    net = build(config, 3)
    net.model.cuda()
    opt = build_optimizer(net, config, torch.device("cuda"))
    assert opt.defaults["fused"] is True
    net.model(torch.randn(2, 3, 16, 16, device="cuda")).sum().backward()
    opt.step()  # the fused kernel accepts the CUDA parameters
