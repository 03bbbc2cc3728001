"""The engine against the compute ceiling of this machine, and fp32 against bf16 accuracy.

    PYTHONPATH=. python3 -m benchmarks.ceiling [--quick] [--device cpu|cuda]

Per model (ResNet-18 at 64 px, smallcnn at 32 px), on one ImageFolder of procedural shapes
(benchmarks/training.py writes it): training images/s of
- the engine (`run()`, `precision: auto`: bf16 autocast where the device has native bf16),
- the fp32 ceiling and the bf16 ceiling: bare forward + backward + optimiser step of the same
  model (channels_last, the engine's optimiser) on one synthetic batch of the same size, no
  data at all, so nothing a loop does can beat it (in a fresh process; the best of 5 windows
  of 10 steps, since other work on the machine can only slow a window down),
- the tutorial loop (ImageFolder + transforms + DataLoader with 2 workers),
each with its final validation accuracy where it trains on data, and the ratios. Then one
config trained in fp32 and in bf16 over 3 seeds: both accuracies, to show bf16 keeps them.

Each figure's baseline comes from the same run of this script on the same machine; timings
taken while other work runs on the machine are noisier, the ratios less so.
Aims (issue 18, this project's 2-core CPU with avx512_bf16): the engine ≥ 1.5× the fp32
ceiling, ≥ 90 % of the bf16 ceiling, bf16 accuracy within 1 point of fp32 over 3 seeds.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks import training

CPU = training.Sizes(10, 200, 50, {"smallcnn": 32, "resnet18": 64}, 2, 64, 2)
GPU = training.Sizes(10, 1000, 100, {"smallcnn": 32, "resnet18": 64}, 3, 256, 8)
QUICK = training.Sizes(3, 24, 8, {"smallcnn": 16, "resnet18": 16}, 1, 16, 1)
MODELS = ("resnet18", "smallcnn")
SEEDS = (0, 1, 2)


def ceiling(config: dict[str, Any], precision: str, steps: int, windows: int = 1) -> float:
    """Images/s of bare training steps on one synthetic batch (after 3 warm-up steps): the
    best of `windows` timings of `steps` steps each (other work on the machine only slows)."""
    import torch
    import torch.nn.functional as F

    from app.worker.training import RunConfig
    from app.worker.training.loop import build_optimizer, resolve_precision
    from app.worker.training.models import build
    from app.worker.training.preflight import resolve_device

    run_config = RunConfig.from_dict({**config, "precision": precision})
    device = resolve_device(run_config.device)
    chosen = resolve_precision(precision, device)
    torch.manual_seed(0)
    net = build(run_config, 10)
    model = net.model.to(device).to(memory_format=torch.channels_last)
    optimizer = build_optimizer(net, run_config, device)
    size, batch = run_config.image_size, run_config.batch_size
    x = torch.randn(batch, 3, size, size, device=device).contiguous(
        memory_format=torch.channels_last
    )
    y = torch.randint(0, 10, (batch,), device=device)
    model.train()

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with chosen.autocast():
            loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()

    for _ in range(3):
        step()
    best = 0.0
    for _ in range(windows):
        if device.type == "cuda":
            torch.cuda.synchronize()
        began = time.perf_counter()
        for _ in range(steps):
            step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        best = max(best, steps * batch / (time.perf_counter() - began))
    return best


def measure_ceiling(config: dict[str, Any], precision: str, steps: int) -> float:
    """`ceiling` in a fresh process, as the engine and the tutorial loop are measured."""
    command = [sys.executable, "-m", "benchmarks.ceiling", "--child", precision]
    command += ["--config", json.dumps(config), "--steps", str(steps)]
    env = {**os.environ, "PYTHONPATH": str(training.ROOT)}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=1800)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"ceiling {precision} failed:\n{done.stdout}\n{done.stderr}")
    return float(lines[-1].split()[1])


def measure_model(data_dir: Path, model: str, sizes: training.Sizes, device: str) -> dict[str, Any]:
    """Engine, both ceilings and the tutorial loop for one model."""
    size = sizes.image_size[model]
    root = data_dir / "datasets" / f"{training.FOLDER}-{size}"
    if not root.is_dir():
        training.write_folder(data_dir, sizes, size)
    config = {**training.config_dict(model, sizes, device), "folder": root.name}
    steps = 2 if sizes is QUICK else 10
    engine = training.measure("engine", config, data_dir, sizes.workers)
    engine = max(engine, training.measure("engine", config, data_dir, sizes.workers),
                 key=lambda r: r["images_per_s"])  # fmt: skip
    return {
        "model": model,
        "image_size": size,
        "engine": engine,
        "fp32": measure_ceiling(config, "fp32", steps),
        "bf16": measure_ceiling(config, "bf16", steps),
        "tutorial": training.measure("tutorial", config, data_dir, sizes.workers),
    }


def precision_accuracy(
    data_dir: Path, sizes: training.Sizes, device: str, model: str = "smallcnn"
) -> dict[str, list[float]]:
    """Final validation accuracy of one config in fp32 and in bf16, per seed."""
    size = sizes.image_size[model]
    config = {
        **training.config_dict(model, sizes, device),
        "folder": f"{training.FOLDER}-{size}",
        "epochs": sizes.epochs * 2,
    }
    accuracy: dict[str, list[float]] = {"fp32": [], "bf16": []}
    for seed in SEEDS:
        for precision in accuracy:
            figures = training.measure(
                "engine", {**config, "seed": seed, "precision": precision}, data_dir, 0
            )
            accuracy[precision].append(figures["val_accuracy"])
    return accuracy


def main(work_dir: Path, device: str = "cpu", sizes: training.Sizes | None = None) -> None:
    import torch

    from app.worker.training.loop import resolve_precision

    sizes = sizes or (GPU if device == "cuda" else CPU)
    data_dir = work_dir / "data"
    auto = resolve_precision("auto", torch.device(device))
    print(f"\nTraining against the compute ceiling, device {device}")
    print(
        f"  {os.cpu_count()} CPU cores, {torch.get_num_threads()} torch threads, "
        f"load average {os.getloadavg()[0]:.1f} at the start; precision auto = {auto.name} "
        f"({auto.reason})"
    )
    print(
        f"  {sizes.classes} classes, {sizes.train_per_class}/{sizes.val_per_class} train/val "
        f"images each, {sizes.epochs} epochs, batch {sizes.batch_size}; engine: best of 2 runs; "
        f"tutorial: DataLoader with {sizes.workers} workers"
    )
    print(
        f"  {'model':<9} {'px':>3} {'engine':>7} {'fp32 ceil':>9} {'bf16 ceil':>9} "
        f"{'tutorial':>8}  {'e/fp32':>6} {'e/bf16':>6} {'e/tut':>6}  {'acc e/tut':>11}"
    )
    rows = [measure_model(data_dir, model, sizes, device) for model in MODELS]
    for row in rows:
        e, t = row["engine"], row["tutorial"]
        rate = e["images_per_s"]
        print(
            f"  {row['model']:<9} {row['image_size']:>3} {rate:>7,.0f} {row['fp32']:>9,.0f} "
            f"{row['bf16']:>9,.0f} {t['images_per_s']:>8,.0f}  {rate / row['fp32']:>5.2f}x "
            f"{rate / row['bf16']:>5.0%} {rate / t['images_per_s']:>5.2f}x  "
            f"{e['val_accuracy']:.3f}/{t['val_accuracy']:.3f}"
        )
    print("  images/s of training (evaluation excluded); ceilings: bare steps, synthetic batch")
    accuracy = precision_accuracy(data_dir, sizes, device)
    fp32, bf16 = (statistics.mean(accuracy[p]) for p in ("fp32", "bf16"))
    seeds = ", ".join(
        f"{a:.3f}/{b:.3f}" for a, b in zip(accuracy["fp32"], accuracy["bf16"], strict=True)
    )
    print(
        f"  smallcnn, {sizes.epochs * 2} epochs, seeds {SEEDS}: val accuracy fp32 {fp32:.3f}, "
        f"bf16 {bf16:.3f} (mean; per seed fp32/bf16: {seeds}); difference "
        f"{100 * (bf16 - fp32):+.1f} points"
    )
    print(f"  load average at the end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, to check it runs")
    parser.add_argument("--child", choices=["fp32", "bf16"], help=argparse.SUPPRESS)
    parser.add_argument("--config", help=argparse.SUPPRESS)
    parser.add_argument("--steps", type=int, default=10, help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.child:  # one ceiling, best of 5 windows
        rate = ceiling(json.loads(arguments.config), arguments.child, arguments.steps, windows=5)
        print(f"RESULT {rate}")
        raise SystemExit(0)
    with tempfile.TemporaryDirectory(prefix="cvprep-bench-") as tmp:
        main(Path(tmp), arguments.device, QUICK if arguments.quick else None)
