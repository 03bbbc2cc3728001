"""Training throughput: the engine beside the tutorial loop, same data, model, batch and epochs.

    PYTHONPATH=. python3 -m benchmarks.training [--device cpu|cuda] [--repeats N] [--check]
    bash benchmarks/gpu_check.sh      # on a GPU machine: the CUDA checks, then the GPU bench

An ImageFolder of procedural shapes is written to disk as PNG files (train/ and val/). Each
trainer then runs in a fresh process on it, for `smallcnn` and `resnet18`:
- the engine (`run()` with dataset "folder": decoded once into a uint8 tensor, kept in the
  cache, batches augmented on the device);
- the tutorial loop of question 11 (`ImageFolder` + per-image `transforms.v2` + `DataLoader`
  workers), app/worker/training/tutorial.py.
Both use the same model, optimiser, schedule, normalisation, batch size, image size and
epochs, and the same augmentation recipe (reflect-pad and crop, flip). Reported: training
images/s (evaluation excluded) and their ratio, final validation accuracy, time from the call
to the first finished step, and each process's peak resident memory. Also: how long the shapes
generator takes for 10,000 images at 32 px, and the one-off decode of the folder.

Only torch, torchvision, numpy and Pillow are needed (the GPU machines have no web stack).
Aims (issue 8): ≥ 1.5× on a 2-core CPU at equal accuracy, ≥ 10× on a GPU.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
FOLDER = "bench-shapes"


@dataclass(frozen=True)
class Sizes:
    classes: int
    train_per_class: int
    val_per_class: int
    image_size: dict[str, int]  # per model
    epochs: int
    batch_size: int
    workers: int  # DataLoader workers of the tutorial loop


CPU = Sizes(10, 320, 80, {"smallcnn": 32, "resnet18": 32}, 2, 64, 2)
GPU = Sizes(10, 2000, 200, {"smallcnn": 32, "resnet18": 64}, 3, 256, 8)
QUICK = Sizes(3, 24, 8, {"smallcnn": 16, "resnet18": 16}, 1, 16, 1)


def config_dict(model: str, sizes: Sizes, device: str) -> dict[str, Any]:
    return {
        "dataset": "folder",
        "folder": FOLDER,
        "num_classes": 0,
        "images_per_class": 0,
        "image_size": sizes.image_size[model],
        "model": model,
        "epochs": sizes.epochs,
        "batch_size": sizes.batch_size,
        "augment": "standard",
        "lr": 3e-3,
        "warmup_epochs": 0.5,
        "device": device,
        "max_misclassified": 0,
    }


def write_folder(data_dir: Path, sizes: Sizes, size: int) -> Path:
    """Shapes as PNG files: datasets/bench-shapes-<size>/{train,val}/<class>/<n>.png."""
    from PIL import Image

    from app.worker.training.data import shapes

    root = data_dir / "datasets" / f"{FOLDER}-{size}"
    per_class = sizes.train_per_class + sizes.val_per_class
    images, labels = shapes.generate(sizes.classes, per_class, size, seed=1)
    for index, (pixels, label) in enumerate(zip(images, labels, strict=True)):
        part = "train" if index % per_class < sizes.train_per_class else "val"
        target = root / part / shapes.CLASSES[label]
        target.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels.transpose(1, 2, 0)).save(target / f"{index}.png")
    return root


# ---------------------------------------------------------------- children (one per measurement)


def child_engine(config: dict[str, Any], data_dir: Path, out_dir: Path) -> dict[str, Any]:
    from app.worker.training import RunConfig, StepProgress, run

    first: list[float] = []
    began = time.perf_counter()

    def on_event(event: Any) -> None:
        if isinstance(event, StepProgress) and not first:
            first.append(time.perf_counter() - began)

    result = run(
        RunConfig.from_dict(config), on_event, lambda: False, out_dir=out_dir, data_dir=data_dir
    )
    if result.status != "succeeded":
        raise SystemExit(f"engine run {result.status}: {result.error}")
    return {
        "images_per_s": result.metrics["images_per_s"],
        "val_accuracy": result.metrics["val_accuracy"],
        "first_step_s": first[0],
        "cache": result.metrics["data"]["cache"],
    }


def child_tutorial(config: dict[str, Any], data_dir: Path, workers: int) -> dict[str, Any]:
    import torch

    from app.worker.training import RunConfig
    from app.worker.training.data import load_data
    from app.worker.training.preflight import resolve_device
    from app.worker.training.tutorial import train_tutorial

    run_config = RunConfig.from_dict(config)
    device = resolve_device(run_config.device)
    # The same normalisation as the engine's: the training split's statistics (from the cache).
    stats = load_data(run_config, data_dir, torch.device("cpu"))
    root = data_dir / "datasets" / run_config.folder  # type: ignore[operator]
    result = train_tutorial(
        root, run_config, mean=stats.mean, std=stats.std, device=device, num_workers=workers
    )
    return {
        "images_per_s": result.images_per_s,
        "val_accuracy": result.val_accuracy,
        "first_step_s": result.first_step_s,
    }


def _peak_rss_mib() -> float:
    """This process's peak resident memory. VmHWM, not ru_maxrss: on Linux ru_maxrss keeps the
    parent's resident size from before the exec, which would hide the child's own figure."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child_main(args: argparse.Namespace) -> None:
    config = json.loads(args.config)
    data_dir = Path(args.data_dir)
    if args.child == "engine":
        figures = child_engine(config, data_dir, Path(args.out))
    else:
        figures = child_tutorial(config, data_dir, args.workers)
    figures["peak_rss_mib"] = _peak_rss_mib()
    print("RESULT " + json.dumps(figures))


def measure(kind: str, config: dict[str, Any], data_dir: Path, workers: int) -> dict[str, Any]:
    out = data_dir / "runs" / f"{kind}-{config['model']}-{time.time_ns()}"
    command = [
        sys.executable,
        "-m",
        "benchmarks.training",
        "--child",
        kind,
        "--config",
        json.dumps(config),
        "--data-dir",
        str(data_dir),
        "--out",
        str(out),
        "--workers",
        str(workers),
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(command, env=env, capture_output=True, text=True, cwd=ROOT, timeout=3600)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"{kind} failed:\n{done.stdout}\n{done.stderr}")
    result: dict[str, Any] = json.loads(lines[-1][len("RESULT ") :])
    return result


# ---------------------------------------------------------------- the comparison


def shapes_speed() -> float:
    """Median seconds to draw 10,000 shapes at 32 px (three tries after a warm-up)."""
    from app.worker.training.data import shapes

    shapes.generate(10, 10, 32, 0)
    times = []
    for seed in range(3):
        start = time.perf_counter()
        shapes.generate(10, 1000, 32, seed)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def compare(
    data_dir: Path,
    device: str = "cpu",
    sizes: Sizes = CPU,
    repeats: int = 1,
    models: tuple[str, ...] = ("smallcnn", "resnet18"),
) -> list[dict[str, Any]]:
    """Engine and tutorial loop per model; returns one row of figures per model."""
    import torch

    from app.worker.training import RunConfig
    from app.worker.training.data import load_data

    rows = []
    for model in models:
        size = sizes.image_size[model]
        root = data_dir / "datasets" / f"{FOLDER}-{size}"
        if not root.is_dir():
            write_folder(data_dir, sizes, size)
        config = {**config_dict(model, sizes, device), "folder": root.name}
        start = time.perf_counter()
        decoded = load_data(RunConfig.from_dict(config), data_dir, torch.device("cpu"))
        decode_s = time.perf_counter() - start
        engine, tutorial, ratios = [], [], []
        for repeat in range(repeats):
            # Back to back, the order swapped each time: a burst of other work on the machine
            # then slows both of a pair, and the pair's ratio stays meaningful.
            kinds = ("engine", "tutorial") if repeat % 2 == 0 else ("tutorial", "engine")
            pair = {kind: measure(kind, config, data_dir, sizes.workers) for kind in kinds}
            engine.append(pair["engine"])
            tutorial.append(pair["tutorial"])
            ratios.append(pair["engine"]["images_per_s"] / pair["tutorial"]["images_per_s"])
        best_engine = max(engine, key=lambda r: r["images_per_s"])
        best_tutorial = max(tutorial, key=lambda r: r["images_per_s"])
        rows.append(
            {
                "model": model,
                "image_size": size,
                "train_images": len(decoded.train_labels),
                "decode_s": decode_s,
                "decoded": decoded.info["cache"],
                "engine": best_engine,
                "tutorial": best_tutorial,
                "ratio": statistics.median(ratios),  # of the back-to-back pairs
                "ratios": ratios,
            }
        )
    return rows


def main(work_dir: Path, device: str = "cpu", repeats: int = 3, sizes: Sizes | None = None) -> None:
    import torch

    sizes = sizes or (GPU if device == "cuda" else CPU)
    data_dir = work_dir / "data"
    print(f"\nTraining: the engine beside the tutorial loop (question 11), device {device}")
    print(
        f"  {os.cpu_count()} CPU cores, torch {torch.__version__}, {torch.get_num_threads()} threads; other work on this machine shares them"
    )
    print(f"  load average at the start: {os.getloadavg()[0]:.1f}")
    print(f"  shapes generator: 10,000 images at 32 px in {shapes_speed():.2f} s (median of 3)")
    rows = compare(data_dir, device, sizes, repeats)
    print(f"  load average at the end: {os.getloadavg()[0]:.1f}")
    print(
        f"  images/s: the best of {repeats} run(s) each; ratio: the median over back-to-back pairs"
    )
    print(
        f"  {sizes.classes} classes, {sizes.train_per_class}/{sizes.val_per_class} train/val images each, {sizes.epochs} epochs, batch {sizes.batch_size}, tutorial DataLoader workers {sizes.workers}"
    )
    header = f"  {'model':<9} {'px':>3} {'engine img/s':>12} {'tutorial img/s':>14} {'ratio':>6} {'engine acc':>10} {'tutorial acc':>12} {'1st step e/t':>13} {'peak RSS e/t MiB':>17}"
    print(header)
    for row in rows:
        e, t = row["engine"], row["tutorial"]
        print(
            f"  {row['model']:<9} {row['image_size']:>3} {e['images_per_s']:>12,.0f} {t['images_per_s']:>14,.0f} "
            f"{row['ratio']:>5.2f}x {e['val_accuracy']:>10.3f} {t['val_accuracy']:>12.3f} "
            f"{e['first_step_s']:>5.2f}/{t['first_step_s']:<5.2f}s "
            f"{e['peak_rss_mib']:>7.0f}/{t['peak_rss_mib']:<7.0f}"
        )
        print(
            f"  {'':<9} the engine decoded the {row['train_images']} training PNGs (and the val ones) once in {row['decode_s']:.2f} s; its runs then read the cache"
        )
    aim = 10.0 if device == "cuda" else 1.5
    for row in rows:
        verdict = "meets" if row["ratio"] >= aim else "MISSES"
        pairs = ", ".join(f"{r:.2f}" for r in row["ratios"])
        print(f"  {row['model']}: {row['ratio']:.2f}x (pairs: {pairs}) {verdict} the {aim:g}x aim")


# ---------------------------------------------------------------- CUDA checks (GPU machines)


def cuda_checks(work_dir: Path) -> bool:
    """The CUDA path of tests/test_training_cuda.py, without pytest; prints one line each."""
    import torch

    from app.worker.training import RunConfig, checkpoint, run
    from app.worker.training.augment import Augmenter
    from app.worker.training.data import load_data
    from app.worker.training.loop import resolve_precision

    small = {
        "num_classes": 4,
        "images_per_class": 64,
        "image_size": 16,
        "width": 8,
        "batch_size": 32,
        "epochs": 2,
        "device": "cuda",
    }
    results: list[tuple[str, bool, str]] = []

    def check(name: str, ok: bool, detail: str = "") -> None:
        results.append((name, ok, detail))
        print(f"  {'PASS' if ok else 'FAIL'}  {name}  {detail}")

    cuda = torch.device("cuda")
    native = torch.cuda.is_bf16_supported(including_emulation=False)
    precision = resolve_precision("auto", cuda)
    check(
        "auto precision: bf16 where native, else fp16 + GradScaler",
        precision.name == ("bf16" if native else "fp16") and precision.needs_scaler is (not native),
        f"{torch.cuda.get_device_name()}: {precision.name}",
    )
    with precision.autocast():
        out = torch.nn.Linear(8, 8).cuda()(torch.randn(4, 8, device="cuda"))
    check("autocast computes in the low precision", out.dtype == precision.dtype, str(out.dtype))
    data = load_data(RunConfig.from_dict(small), work_dir / "check-data", cuda)
    check(
        "data held on the GPU as uint8",
        data.train_images.is_cuda and data.train_images.dtype == torch.uint8,
    )
    augmenter = Augmenter(
        "strong",
        hflip=True,
        mean=data.mean,
        std=data.std,
        device=cuda,
        generator=torch.Generator(device="cuda").manual_seed(0),
        mix_generator=torch.Generator().manual_seed(0),
        num_classes=4,
        cutmix_alpha=1.0,
        channels_last=True,
    )
    x, _ = augmenter.train_batch(data.train_images[:8], data.train_labels[:8])
    check(
        "batches augmented on the GPU, channels_last",
        x.is_cuda and x.is_contiguous(memory_format=torch.channels_last),
    )
    for name in ("auto", "fp16", "bf16", "fp32"):
        if name == "bf16" and not native:
            continue
        config = RunConfig.from_dict(
            {**small, "precision": name, "augment": "strong", "mixup_alpha": 0.2}
        )
        out_dir = work_dir / f"check-{name}"
        result = run(
            config, lambda e: None, lambda: False, out_dir=out_dir, data_dir=work_dir / "check-data"
        )
        runtime = result.metrics.get("runtime", {})
        saved = (
            torch.load(out_dir / checkpoint.FILENAME, weights_only=True, map_location="cpu")
            if result.status == "succeeded"
            else {}
        )
        expected = resolve_precision(name, cuda).name
        ok = (
            result.status == "succeeded"
            and runtime.get("precision") == expected
            and runtime.get("channels_last") is True
            and torch.backends.cudnn.benchmark is True
            and ("scale" in saved.get("scaler", {})) is (expected == "fp16")
        )
        check(
            f"short run, precision {name}",
            ok,
            f"{result.status} {runtime.get('precision')} val acc {result.metrics.get('val_accuracy')} {result.error or ''}",
        )
    return all(ok for _, ok, _ in results)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument(
        "--repeats", type=int, default=3, help="back-to-back pairs of runs per model"
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes, to check the bench runs")
    parser.add_argument(
        "--check", action="store_true", help="run the CUDA checks first (with --device cuda)"
    )
    parser.add_argument("--child", choices=["engine", "tutorial"], help=argparse.SUPPRESS)
    parser.add_argument("--config", help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--workers", type=int, default=2, help=argparse.SUPPRESS)
    return parser.parse_args()


if __name__ == "__main__":
    arguments = parse_args()
    if arguments.child:
        child_main(arguments)
    else:
        with tempfile.TemporaryDirectory(prefix="cvprep-bench-") as tmp:
            if arguments.check:
                print("\nCUDA checks")
                if not cuda_checks(Path(tmp)):
                    raise SystemExit("a CUDA check failed")
            main(Path(tmp), arguments.device, arguments.repeats, QUICK if arguments.quick else None)
