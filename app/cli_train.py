"""`cvprep train CONFIG.yaml`: the training engine headless, with a terminal progress bar.

The config file is a YAML mapping of RunConfig fields (any field left out takes its default);
`--set key=value` overrides one field, the value read as YAML (`--set lr=0.01`,
`--set residual=true`). The run reports through the same events the web shows, drawn here
with rich: a progress bar with loss, images/s and ETA, one line per epoch, then a table of the
final metrics and the output folder.

Exit codes: 0 succeeded; 1 failed (the message is printed); 2 bad config, before any data is
loaded (the field and the reason); 130 interrupted by Ctrl-C, after the checkpoint is saved —
`--resume` with the same `--out` continues from it. A second Ctrl-C stops at once.

Also `cvprep data fetch cifar10` and `cvprep weights fetch ARCH`, the only commands that go to
the internet; a run never does.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

import yaml
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from app.settings import get_settings

if TYPE_CHECKING:  # the engine imports torch: only the commands that train load it
    from app.worker.training import Event, RunConfig, Started

EXIT_OK, EXIT_FAILED, EXIT_CONFIG, EXIT_INTERRUPTED = 0, 1, 2, 130


def load_config(path: Path, overrides: list[str]) -> RunConfig:
    """The YAML file's mapping with the `key=value` overrides applied, validated.

    Raises InvalidInput naming the field (or "config" for an unreadable file, "--set" for a
    malformed override).
    """
    from app.worker.errors import InvalidInput
    from app.worker.training import RunConfig

    try:
        loaded = yaml.safe_load(path.read_text()) if path.is_file() else None
    except yaml.YAMLError as error:
        raise InvalidInput("config", f"{path} is not valid YAML: {error}") from error
    if not path.is_file():
        raise InvalidInput("config", f"no config file at {path}")
    values: Any = {} if loaded is None else loaded
    if not isinstance(values, dict):
        raise InvalidInput("config", f"{path} must hold a mapping of field: value")
    for override in overrides:
        key, equals, text = override.partition("=")
        if not equals or not key.strip():
            raise InvalidInput("--set", f"expected key=value, got '{override}'")
        try:
            values[key.strip()] = yaml.safe_load(text) if text.strip() else ""
        except yaml.YAMLError as error:
            raise InvalidInput(key.strip(), f"cannot read '{text}' as a value: {error}") from error
    return RunConfig.from_dict(values)


class StopOnInterrupt:
    """First Ctrl-C: ask the run to stop (it saves, then returns). Second: stop at once."""

    def __init__(self) -> None:
        self.requested = threading.Event()
        self.previous: Any = None

    def __enter__(self) -> StopOnInterrupt:
        self.previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        signal.signal(signal.SIGINT, self.previous)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.requested.is_set():
            raise KeyboardInterrupt
        self.requested.set()

    def __call__(self) -> bool:
        return self.requested.is_set()


class TerminalReport:
    """Draws the run's events: a progress bar, a line per epoch, the final table."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.progress = Progress(
            TextColumn("epoch {task.fields[epoch]}/{task.fields[epochs]}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}"),
            TextColumn("{task.fields[rate]} img/s"),
            TextColumn("ETA {task.fields[eta]}"),
            console=console,
            transient=True,
        )
        self.task: Any = None
        self.classes: list[str] = []

    def __call__(self, event: Event) -> None:
        e: Any = event  # dispatched on .kind: the engine's classes load only with torch
        if e.kind == "started":
            self._started(e)
        elif e.kind == "step_progress" and self.task is not None:
            done = (e.epoch - 1) * e.steps + e.step
            self.progress.update(
                self.task,
                completed=done,
                epoch=e.epoch,
                loss=f"{e.loss:.3f}",
                rate=f"{e.images_per_s:,.0f}",
                eta=_duration(e.eta_s),
            )
        elif e.kind == "epoch_end":
            m = e.metrics
            self.console.print(
                f"epoch {e.epoch}/{e.epochs}  train loss {m['train_loss']:.3f} "
                f"acc {m['train_accuracy']:.3f}  val loss {m['val_loss']:.3f} "
                f"acc {m['val_accuracy']:.3f}  macro-F1 {m['macro_f1']:.3f}  "
                f"{m['images_per_s']:,.0f} img/s",
                markup=False,
                soft_wrap=True,
            )
        elif e.kind in ("finished", "failed"):
            self.progress.stop()

    def _started(self, event: Started) -> None:
        data = event.data
        self.classes = event.classes
        self.console.print(
            f"Training on {data.get('dataset')}: {event.train_size} train / {event.val_size} "
            f"val images, {len(event.classes)} classes, {event.device} {event.precision}, "
            f"{event.steps_per_epoch} steps per epoch"
            + (f", resuming at epoch {event.start_epoch}" if event.resumed else "")
            + (
                f"\nPrecision {event.precision}: {event.precision_reason}"
                if event.precision_reason
                else ""
            ),
            markup=False,
            soft_wrap=True,
        )
        skipped = data.get("skipped") or {}
        if skipped:
            listed = ", ".join(f"{reason}: {n}" for reason, n in skipped.items())
            self.console.print(f"Skipped files: {listed}", markup=False, soft_wrap=True)
        total = event.steps_per_epoch * event.epochs
        self.progress.start()
        self.task = self.progress.add_task(
            "train",
            total=total,
            completed=(event.start_epoch - 1) * event.steps_per_epoch,
            epoch=event.start_epoch,
            epochs=event.epochs,
            loss="-",
            rate="-",
            eta="-",
        )


def _duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}" if seconds < 3600 else f"{seconds / 3600:.1f} h"


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def final_table(metrics: dict[str, Any]) -> Table:
    """The final figures, one row each."""
    table = Table(title="Validation metrics", show_header=True)
    table.add_column("metric")
    table.add_column("value", justify="right")
    auc = (metrics.get("roc_auc") or {}).get("macro")
    rows = [
        ("accuracy", metrics.get("val_accuracy")),
        ("top-5 accuracy", metrics.get("val_top5_accuracy")),
        ("macro F1", metrics.get("macro_f1")),
        ("weighted F1", metrics.get("weighted_f1")),
        ("ROC-AUC (macro, one-vs-rest)", auc),
        ("ECE (15 bins)", metrics.get("ece")),
        ("NLL", metrics.get("nll")),
        ("train loss (last epoch)", metrics.get("train_loss")),
        ("validation images", metrics.get("val_size")),
        ("epochs completed", f"{metrics.get('epochs_completed')}/{metrics.get('epochs')}"),
        (
            "training images/s",
            f"{metrics['images_per_s']:,.0f}" if metrics.get("images_per_s") else None,
        ),
    ]
    for name, value in rows:
        table.add_row(name, _fmt(value))
    return table


def class_table(metrics: dict[str, Any]) -> Table:
    """Precision, recall, F1 and support of each class."""
    table = Table(title="Per class", show_header=True)
    for column in ("class", "precision", "recall", "F1", "support"):
        table.add_column(column, justify="left" if column == "class" else "right")
    for row in metrics.get("per_class") or []:
        table.add_row(
            row["class"],
            f"{row['precision']:.3f}",
            f"{row['recall']:.3f}",
            f"{row['f1']:.3f}",
            str(row["support"]),
        )
    return table


def train(args: argparse.Namespace) -> int:
    """`cvprep train`: returns the exit code (0, 1, 2 or 130, see the module docstring)."""
    from app.worker.errors import InvalidInput
    from app.worker.training import run

    console, errors = Console(), Console(stderr=True)
    settings = get_settings()
    data_dir = settings.data_dir
    try:
        config = load_config(Path(args.config), args.set or [])
        if args.resume and not args.out:
            raise InvalidInput("--out", "--resume needs the folder of the run to continue")
    except InvalidInput as error:
        errors.print(f"config error: {error}", markup=False, soft_wrap=True)
        return EXIT_CONFIG
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out_dir = (
        Path(args.out) if args.out else data_dir / "train" / f"{Path(args.config).stem}-{stamp}"
    )
    report = TerminalReport(console)
    try:
        with StopOnInterrupt() as stop:
            result = run(
                config,
                report,
                stop,
                out_dir=out_dir,
                data_dir=data_dir,
                resume=args.resume,
                runs_dir=settings.runs_dir,
            )
    except InvalidInput as error:
        report.progress.stop()
        errors.print(f"config error: {error}", markup=False, soft_wrap=True)
        return EXIT_CONFIG
    except KeyboardInterrupt:  # the second Ctrl-C: no saving; the last epoch's checkpoint stays
        report.progress.stop()
        errors.print(
            f"Stopped at once; {out_dir} keeps the last saved checkpoint",
            markup=False,
            soft_wrap=True,
        )
        return EXIT_INTERRUPTED
    if result.status == "failed":
        errors.print(f"Training failed: {result.error}", markup=False, soft_wrap=True)
        console.print(f"Outputs so far: {out_dir}", markup=False, soft_wrap=True)
        return EXIT_FAILED
    if result.metrics.get("val_accuracy") is not None:
        console.print(final_table(result.metrics))
        if len(result.metrics.get("per_class") or []) <= 20:
            console.print(class_table(result.metrics))
    if result.status == "cancelled":
        console.print(
            f"Interrupted; saved to {out_dir}. Continue with --resume --out {out_dir}",
            markup=False,
            soft_wrap=True,
        )
        return EXIT_INTERRUPTED
    console.print(f"Outputs: {out_dir}", markup=False, soft_wrap=True)
    return EXIT_OK


def data_fetch(args: argparse.Namespace) -> int:
    """`cvprep data fetch cifar10`: 0 when the batches are in place, 1 when the download fails."""
    from app.worker.training.data import cifar10

    data_dir = get_settings().data_dir
    try:
        md5 = cifar10.MD5 if args.md5 is None else (args.md5 or None)
        path = cifar10.fetch(data_dir, url=args.url or cifar10.URL, md5=md5)
    except (OSError, RuntimeError, ValueError) as error:
        sys.stderr.write(f"Download failed: {error}\n")
        return EXIT_FAILED
    sys.stdout.write(f"CIFAR-10 is in {path}\n")
    return EXIT_OK


def weights_fetch(args: argparse.Namespace) -> int:
    """`cvprep weights fetch ARCH`: 0 once the file is in the torch cache, 1 on a failed
    download, 2 for an architecture without ImageNet weights."""
    from app.worker.training.config import IMAGENET_MODELS
    from app.worker.training.models import fetch_imagenet, imagenet_path

    if args.arch not in IMAGENET_MODELS:
        sys.stderr.write(f"arch: expected one of {', '.join(IMAGENET_MODELS)}, got '{args.arch}'\n")
        return EXIT_CONFIG
    path, url = imagenet_path(args.arch)
    if path.is_file():
        sys.stdout.write(f"Already in the torch cache: {path}\n")
        return EXIT_OK
    try:
        fetch_imagenet(args.arch)
    except (OSError, RuntimeError, ValueError) as error:
        sys.stderr.write(f"Download of {url} failed: {error}\n")
        return EXIT_FAILED
    sys.stdout.write(f"Saved {path}\n")
    return EXIT_OK


def add_commands(commands: Any) -> None:
    """Register `train`, `data fetch` and `weights fetch` on the main parser's subparsers."""
    train_parser = commands.add_parser("train", help="train a model from a YAML config file")
    train_parser.add_argument("config", help="YAML file of RunConfig fields (others default)")
    train_parser.add_argument(
        "--set", action="append", metavar="KEY=VALUE", help="override one field (repeatable)"
    )
    train_parser.add_argument(
        "--out", help="output folder (default: DATA_DIR/train/<config>-<time>)"
    )
    train_parser.add_argument(
        "--resume", action="store_true", help="continue the run in --out from its checkpoint"
    )
    train_parser.set_defaults(handler=train)

    data_parser = commands.add_parser("data", help="data sets (downloads need the internet)")
    data_commands = data_parser.add_subparsers(dest="data_command", required=True)
    fetch = data_commands.add_parser("fetch", help="download a data set into DATA_DIR/datasets")
    fetch.add_argument("name", choices=["cifar10"])
    fetch.add_argument("--url", help="download from this address instead (a mirror)")
    fetch.add_argument("--md5", help="the archive's expected MD5 ('' skips the check)")
    fetch.set_defaults(handler=data_fetch)

    weights_parser = commands.add_parser("weights", help="ImageNet weights in the torch cache")
    weights_commands = weights_parser.add_subparsers(dest="weights_command", required=True)
    wfetch = weights_commands.add_parser(
        "fetch", help="download an architecture's ImageNet weights"
    )
    wfetch.add_argument("arch", help="resnet18, mobilenet_v3_small or efficientnet_b0")
    wfetch.set_defaults(handler=weights_fetch)
