"""`run(config, on_event, should_stop, ...)`: one training run, start to finish.

The order, like torchvision's reference `main`: check the config against this machine
(`check_config`, raising InvalidInput before any data is read) → seed → load the data onto the
device → build and initialise the model → freeze per strategy → optimiser, schedule, scaler,
loss, augmenter → (resume) → per epoch: train, evaluate, checkpoint (while that costs at most
CHECKPOINT_SHARE of the epoch; always after the last and on a stop), report → the outputs.

Every outcome after the checks is a RunResult, never an exception: "succeeded"; "cancelled"
when `should_stop()` said so (the checkpoint then holds the exact point reached, mid-epoch
included, and `resume=True` continues to the result an uninterrupted run gives); "failed" with
the message when anything raised (a Failed event is sent; the caller's process carries on).

Model and batches are channels_last (NHWC) on both devices: cuDNN's tensor-core kernels
want it, and oneDNN's CPU convolutions were 1.3–1.4× faster with it for smallcnn at 32 px on
this project's 2-core machine (ResNet-18 about even). On CUDA also: cudnn.benchmark, the data
copied once to the GPU from pinned memory (non-blocking), bf16/fp16 autocast. On the CPU:
bf16 autocast where the CPU computes bf16 natively (`precision: auto`; fp32 elsewhere), torch's default intra-op threads (one per physical core) unless `num_threads` is given.
"""

from __future__ import annotations

import contextlib
import shutil
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from app.worker.training import checkpoint, outputs
from app.worker.training.augment import Augmenter
from app.worker.training.config import RunConfig
from app.worker.training.data import ImageSet, load_data
from app.worker.training.data.folder import DecodeStopped
from app.worker.training.events import EpochEnd, Event, Failed, Finished, Started, StepReporter
from app.worker.training.loop import (
    EpochStats,
    Evaluation,
    build_optimizer,
    epoch_order,
    evaluate,
    optimizer_implementation,
    steps_per_epoch,
    train_batches,
    train_one_epoch,
    warmup_cosine,
)
from app.worker.training.losses import build_loss
from app.worker.training.metrics import classification_report
from app.worker.training.models import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    Net,
    build,
    load_imagenet,
    load_transfer,
)
from app.worker.training.preflight import Plan, check_config
from app.worker.training.tutorial import TutorialBatches, write_image_folder

TUTORIAL_FOLDER = "tutorial-data"  # loop "tutorial": the training split as PNGs, removed at the end
PROGRESS_INTERVAL_S = 0.25  # at most ~4 StepProgress events a second
CHANNELS_LAST = True  # NHWC model and batches (see above)
# A checkpoint after an epoch that is not the last is written only while the last one took at
# most this share of an epoch's training time (always at the end and on a stop).
CHECKPOINT_SHARE = 0.05
# The validation figures at the top of metrics.json (classification_report's, renamed).
REPORT_KEYS = (
    "val_loss",
    "val_size",
    "val_accuracy",
    "val_top5_accuracy",
    "per_class",
    "macro_f1",
    "macro_f1_definition",
    "weighted_f1",
    "confusion_matrix",
    "roc_auc",
    "ece",
    "reliability",
    "nll",
)


@dataclass
class RunResult:
    """How a run ended. `metrics` is what metrics.json holds."""

    status: str  # "succeeded" | "failed" | "cancelled"
    metrics: dict[str, Any]
    out_dir: Path
    error: str | None = None


def run(
    config: RunConfig,
    on_event: Callable[[Event], None],
    should_stop: Callable[[], bool],
    *,
    out_dir: Path,
    data_dir: Path,
    resume: bool = False,
    runs_dir: Path | None = None,
    num_threads: int | None = None,
    progress_interval_s: float = PROGRESS_INTERVAL_S,
) -> RunResult:
    """Train `config`, writing config.yaml, metrics.json, predictions.npz, checkpoint.pt and
    misclassified/<n>.png into `out_dir`; report through `on_event`; stop when `should_stop()`.

    `data_dir` is DATA_DIR (datasets/ and cache/ inside it); `runs_dir/<id>/checkpoint.pt` is
    what init "run:<id>" loads; `resume` continues from out_dir/checkpoint.pt. Raises
    InvalidInput (see check_config) before reading any data; after that, never raises for a
    training error: the result's status is "failed" and its error the message.
    """
    began = time.perf_counter()
    plan = check_config(
        config, data_dir=data_dir, runs_dir=runs_dir, resume_dir=out_dir if resume else None
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    outputs.write_config(out_dir, config.to_dict())
    trainer = _Trainer(config, plan, on_event, should_stop, out_dir, began, progress_interval_s)
    try:
        if num_threads:
            torch.set_num_threads(num_threads)
        return trainer.train(data_dir)
    except DecodeStopped:  # cancelled (or out of time) while the data was decoded
        metrics = {"status": "cancelled", "stopped": "while loading the data"}
        return RunResult("cancelled", metrics, out_dir)
    except Exception as error:
        message = (
            str(error) if isinstance(error, ValueError) else f"{type(error).__name__}: {error}"
        )
        return trainer.fail(message or type(error).__name__, traceback.format_exc())
    finally:
        shutil.rmtree(out_dir / TUTORIAL_FOLDER, ignore_errors=True)


class _Trainer:
    """The state of one run. `train` reads top to bottom; the pieces follow it."""

    def __init__(
        self,
        config: RunConfig,
        plan: Plan,
        on_event: Callable[[Event], None],
        should_stop: Callable[[], bool],
        out_dir: Path,
        began: float,
        progress_interval_s: float,
    ) -> None:
        self.config, self.plan, self.out_dir, self.began = config, plan, out_dir, began
        self.emit, self.should_stop = on_event, should_stop
        self.interval = progress_interval_s
        self.data: ImageSet | None = None
        self.net: Net | None = None
        self.progress: dict[str, Any] = {"history": [], "step_loss": [], "last_report": None}
        self.last_eval: Evaluation | None = None
        self.misclassified: list[dict[str, Any]] = []
        self.model_info: dict[str, Any] = {"arch": config.model, "init": {"kind": config.init_kind}}
        self.runtime: dict[str, Any] = {}
        self.timing: dict[str, float | None] = {"data_s": None}
        self.reporter: StepReporter | None = None
        self.tutorial: TutorialBatches | None = None  # loop "tutorial": its DataLoader

    # ---------------------------------------------------------------- the run

    def train(self, data_dir: Path) -> RunResult:
        config = self.config
        data, net = self._setup(data_dir)
        start_epoch, order, partial = self._resume()
        self.emit(
            Started(
                epochs=config.epochs,
                steps_per_epoch=self.steps,
                train_size=len(data.train_labels),
                val_size=len(data.val_labels),
                classes=data.classes,
                device=self.runtime["device"],
                precision=self.runtime["precision"],
                precision_reason=self.runtime["precision_reason"],
                start_epoch=start_epoch + 1,
                resumed=self.plan.resume_checkpoint is not None,
                data=data.info,
            )
        )
        groups = [name for name, _ in net.groups()]
        for epoch in range(start_epoch, config.epochs):
            if order is None:
                order = epoch_order(data.train_labels, config.sampler, self.generator, self.counts)
            if partial is not None:
                stats = EpochStats.from_state(partial, self.steps, groups, self.plan.device)
            else:
                stats = EpochStats(self.steps, groups, self.plan.device)
            partial = None
            began = time.perf_counter()
            self.reporter.start_epoch(epoch, stats.seen, stats.done)  # type: ignore[union-attr]
            if self.tutorial is not None:
                batches = self.tutorial.epoch(stats.done)
            else:
                batches = train_batches(
                    data.train_images,
                    data.train_labels,
                    order,
                    config.batch_size,
                    self.augmenter,
                    stats.done,
                )
            stopped = train_one_epoch(
                net,
                batches,
                criterion=self.criterion,
                optimizer=self.optimizer,
                scheduler=self.scheduler,
                scaler=self.scaler,
                precision=self.plan.precision,
                stats=stats,
                grad_clip=config.grad_clip,
                should_stop=self.should_stop,
                on_step=self.reporter,
            )
            summary = stats.summary(self.trainable)  # reads the sums: waits for the device
            stats.seconds += time.perf_counter() - began
            if stopped or self.should_stop():
                return self._cancel(epoch, stats, order)
            self._end_epoch(epoch, stats, summary)
            order = None
        return self._finish()

    # ---------------------------------------------------------------- pieces

    def _setup(self, data_dir: Path) -> tuple[ImageSet, Net]:
        """Seed, load the data, build and initialise the model, and everything that trains it."""
        config, device, precision = self.config, self.plan.device, self.plan.precision
        torch.manual_seed(config.seed)  # weights, dropout
        if device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # fixed input shapes: pick the fastest kernels
        else:
            # A dying net's activations and gradients sink into denormals, which x86 CPUs
            # compute many times slower: a learning-rate sweep's failed arms ran at a tenth of
            # the others' images/s here. Flushed to zero, they cost what any number costs.
            torch.set_flush_denormal(True)
        self.generator = torch.Generator(device=device).manual_seed(config.seed)
        self.mix_generator = torch.Generator().manual_seed(config.seed + 1)

        data = self.data = load_data(config, data_dir, device, should_stop=self.should_stop)
        self.timing["data_s"] = time.perf_counter() - self.began
        net = self.net = build(config, len(data.classes))
        mean, std = self._initialise(net, data)
        frozen = net.set_trainable(config.strategy, config.unfreeze_stages)
        self.trainable = {name for name, _ in net.groups() if name not in frozen}
        net.model.to(device)
        if CHANNELS_LAST:
            net.model.to(memory_format=torch.channels_last)
        parameters = list(net.model.parameters())
        self.model_info.update(
            parameters=sum(p.numel() for p in parameters),
            trainable_parameters=sum(p.numel() for p in parameters if p.requires_grad),
            frozen_stages=frozen,
            stages=[name for name, _ in net.stages],
            normalization={"mean": list(mean), "std": list(std)},
        )

        self.counts = data.train_counts
        self.criterion = build_loss(
            config.loss,
            self.counts,
            label_smoothing=config.label_smoothing,
            focal_gamma=config.focal_gamma,
            focal_alpha=config.focal_alpha,
        ).to(device)
        self.optimizer = build_optimizer(net, config, device)
        self.steps = steps_per_epoch(len(data.train_labels), config.batch_size)
        warmup = round(config.warmup_epochs * self.steps)
        schedule = warmup_cosine(warmup, self.steps * config.epochs)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, schedule)
        self.scaler = torch.amp.GradScaler(device.type, enabled=precision.needs_scaler)
        self.augmenter = self._augmenter(config.augment, data.hflip, mean, std)
        if config.loop == "tutorial":  # the same steps, fed the way the tutorial feeds them
            root = self.out_dir / TUTORIAL_FOLDER
            shutil.rmtree(root, ignore_errors=True)
            write_image_folder(data.train_images, data.train_labels, data.classes, root)
            self.tutorial = TutorialBatches(
                root,
                augment=config.augment,
                image_size=config.image_size,
                hflip=data.hflip,
                mean=tuple(mean),
                std=tuple(std),
                batch_size=config.batch_size,
                seed=config.seed,
                device=self.plan.device,
            )
        self.reporter = StepReporter(
            self.emit,
            epochs=config.epochs,
            steps=self.steps,
            interval_s=self.interval,
            lr=lambda: max(group["lr"] for group in self.optimizer.param_groups),
            run_began=self.began,
        )
        self.runtime = {
            "device": str(device),
            "precision": precision.name,
            "precision_reason": precision.reason,
            "optimizer": f"{type(self.optimizer).__name__} ({optimizer_implementation(device)})",
            "channels_last": CHANNELS_LAST,
            "threads": torch.get_num_threads(),
            "versions": checkpoint.versions(device),
        }
        return data, net

    def _augmenter(self, preset: str, hflip: bool, mean: Any, std: Any) -> Augmenter:
        assert self.data is not None
        return Augmenter(
            preset,
            hflip=hflip,
            mean=tuple(mean),
            std=tuple(std),
            device=self.plan.device,
            generator=self.generator,
            mix_generator=self.mix_generator,
            num_classes=len(self.data.classes),
            mixup_alpha=self.config.mixup_alpha,
            cutmix_alpha=self.config.cutmix_alpha,
            channels_last=CHANNELS_LAST,
        )

    def _resume(self) -> tuple[int, torch.Tensor | None, dict[str, Any] | None]:
        """(first epoch, that epoch's order, its sums so far) from the checkpoint, if resuming."""
        saved = self.plan.resume_checkpoint
        if saved is None:
            return 0, None, None
        assert self.net is not None
        self.net.model.load_state_dict(saved["model"])
        self.optimizer.load_state_dict(saved["optimizer"])
        self.scheduler.load_state_dict(saved["scheduler"])
        if saved["scaler"]:
            self.scaler.load_state_dict(saved["scaler"])
        checkpoint.restore_rng(saved["rng"], self.generator, self.mix_generator)
        if self.tutorial is not None and saved.get("tutorial"):
            self.tutorial.restore(saved["tutorial"])
        self.progress = dict(saved["progress"])
        partial = self.progress.pop("partial", None)
        # Stopped inside an epoch: continue it, in its order, from the step reached.
        order = saved["order"].to(self.plan.device) if partial is not None else None
        return saved["epoch"], order, partial

    def _end_epoch(self, epoch: int, stats: EpochStats, summary: dict[str, Any]) -> None:
        """Score the validation set, checkpoint, write metrics.json, send EpochEnd."""
        assert self.net is not None and self.data is not None
        evaluation = evaluate(
            self.net.model,
            self.data.val_images,
            self.data.val_labels,
            augmenter=self.augmenter,
            precision=self.plan.precision,
        )
        report = self._report(evaluation)
        scores = ("val_accuracy", "val_top5_accuracy", "macro_f1", "weighted_f1", "ece", "nll")
        entry = {
            "epoch": epoch + 1,
            **summary,
            "val_loss": evaluation.loss,
            **{key: report[key] for key in scores},
            "lr": max(group["lr"] for group in self.optimizer.param_groups),
            "images_per_s": stats.seen / max(stats.seconds, 1e-9),
            "seconds": stats.seconds,
            "train_images": stats.seen,
        }
        if self.config.eval_train:  # the same model on the training images, un-augmented
            scored = evaluate(
                self.net.model,
                self.data.train_images,
                self.data.train_labels,
                augmenter=self.augmenter,
                precision=self.plan.precision,
            )
            entry.update(train_eval_loss=scored.loss, train_eval_accuracy=scored.accuracy)
        recall = [c["recall"] for c in report["per_class"]]
        self.progress["history"].append({**entry, "per_class_recall": recall})
        self.progress["step_loss"].extend(stats.step_losses.cpu().tolist())
        self.progress["last_report"] = report
        self.last_eval = evaluation
        last = epoch + 1 == self.config.epochs
        saved_s = self.timing.get("checkpoint_s")
        if last or saved_s is None or saved_s <= CHECKPOINT_SHARE * stats.seconds:
            self._save_checkpoint(epoch + 1, 0, None, None)
        outputs.write_metrics(self.out_dir, self.metrics("running"))
        details = {"confusion_matrix": report["confusion_matrix"], "per_class": report["per_class"]}
        self.emit(EpochEnd(epoch + 1, self.config.epochs, {**entry, **details}))

    def _initialise(self, net: Net, data: ImageSet) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """Load the starting weights; returns the normalisation (mean, std) to train with."""
        config, info = self.config, self.model_info["init"]
        saved = self.plan.resume_checkpoint
        if saved is not None:
            norm = saved["normalization"]
            info["resumed_from_epoch"] = saved["epoch"]
            return tuple(norm["mean"]), tuple(norm["std"])
        if config.init_kind == "imagenet":
            load_imagenet(net, len(data.classes))
            return IMAGENET_MEAN, IMAGENET_STD
        if self.plan.init_checkpoint is not None:
            source = self.plan.init_checkpoint
            head_kept = load_transfer(net, source, data.classes)
            info.update(
                source=config.init,
                source_classes=list(source["classes"]),
                head="kept" if head_kept else "new",
            )
            norm = source.get("normalization")
            if norm:
                return tuple(norm["mean"]), tuple(norm["std"])
        return data.mean, data.std

    def _report(self, evaluation: Evaluation) -> dict[str, Any]:
        assert self.data is not None
        labels = self.data.val_labels.cpu().numpy()
        report = classification_report(
            labels, evaluation.probs, self.data.classes, scores=evaluation.log_probs
        )
        renamed = {
            "size": "val_size",
            "accuracy": "val_accuracy",
            "top5_accuracy": "val_top5_accuracy",
        }
        flat = {renamed.get(k, k): v for k, v in report.items()}
        return {"val_loss": evaluation.loss, **flat}

    def _save_checkpoint(
        self, epoch: int, step: int, order: torch.Tensor | None, partial: dict[str, Any] | None
    ) -> None:
        assert self.net is not None and self.data is not None
        began = time.perf_counter()
        checkpoint.save(
            self.out_dir / checkpoint.FILENAME,
            {
                "model": self.net.model.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(),
                "scaler": self.scaler.state_dict() if self.scaler.is_enabled() else {},
                "epoch": epoch,
                "step": step,
                "order": order.cpu() if order is not None else torch.empty(0, dtype=torch.int64),
                "config": self.config.to_dict(),
                "classes": list(self.data.classes),
                "normalization": self.model_info["normalization"],
                "versions": self.runtime["versions"],
                "rng": checkpoint.rng_state(self.generator, self.mix_generator),
                "progress": {**self.progress, "partial": partial},
                # loop "tutorial": its DataLoader's shuffling state ({} for the engine's loop)
                "tutorial": self.tutorial.state(partial is not None) if self.tutorial else {},
            },
        )
        self.timing["checkpoint_s"] = time.perf_counter() - began

    def _write_predictions(self) -> None:
        assert self.data is not None and self.last_eval is not None
        labels = self.data.val_labels.cpu().numpy()
        outputs.write_predictions(self.out_dir, labels, self.last_eval.probs, self.data.classes)
        self.misclassified = outputs.write_misclassified(
            self.out_dir,
            self.data.val_images,
            labels,
            self.last_eval.probs,
            self.data.classes,
            self.config.max_misclassified,
        )

    def _cancel(self, epoch: int, stats: EpochStats, order: torch.Tensor) -> RunResult:
        self._save_checkpoint(epoch, stats.done, order, stats.to_state())
        if self.last_eval is not None:
            self._write_predictions()
        return self._end(
            "cancelled", epoch, partial_losses=stats.step_losses[: stats.done].cpu().tolist()
        )

    def _finish(self) -> RunResult:
        assert self.net is not None and self.data is not None
        if self.last_eval is None:  # resumed after the last epoch: score the saved model once
            self.last_eval = evaluate(
                self.net.model,
                self.data.val_images,
                self.data.val_labels,
                augmenter=self.augmenter,
                precision=self.plan.precision,
            )
            self.progress["last_report"] = self._report(self.last_eval)
        self._write_predictions()
        return self._end("succeeded", self.config.epochs)

    def _end(
        self, status: str, epochs_completed: int, partial_losses: list[float] | None = None
    ) -> RunResult:
        metrics = self.metrics(status, partial_losses)
        metrics["epochs_completed"] = epochs_completed
        outputs.write_metrics(self.out_dir, metrics)
        summary = {k: metrics.get(k) for k in ("val_accuracy", "macro_f1", "ece", "images_per_s")}
        summary.update(seconds=metrics["timing"]["total_s"], out_dir=str(self.out_dir))
        self.emit(Finished(status, epochs_completed, summary))
        return RunResult(status, metrics, self.out_dir)

    def fail(self, message: str, trace: str) -> RunResult:
        metrics = self.metrics("failed")
        metrics.update(error=message, traceback=trace)
        with contextlib.suppress(OSError):
            outputs.write_metrics(self.out_dir, metrics)
        # A broken callback must not turn a failed run into a crash of the caller.
        with contextlib.suppress(Exception):
            self.emit(Failed(message))
        return RunResult("failed", metrics, self.out_dir, message)

    def metrics(self, status: str, partial_losses: list[float] | None = None) -> dict[str, Any]:
        """metrics.json: the last validation report's figures at the top, then the history."""
        history = self.progress["history"]
        seconds = sum(h["seconds"] for h in history)
        images = sum(h["train_images"] for h in history)
        last = history[-1] if history else {}
        # Before the first epoch ends there is no report: its figures are null, not missing.
        report = self.progress["last_report"] or dict.fromkeys(REPORT_KEYS)
        return {
            "status": status,
            "error": None,
            "epochs": self.config.epochs,
            "epochs_completed": len(history),
            "classes": self.data.classes if self.data else [],
            **report,
            "train_loss": last.get("train_loss"),
            "train_accuracy": last.get("train_accuracy"),
            "images_per_s": images / seconds if seconds else None,
            "history": history,
            "step_loss": self.progress["step_loss"] + (partial_losses or []),
            "misclassified": self.misclassified,
            "data": self.data.info if self.data else {},
            "model": self.model_info,
            "runtime": self.runtime,
            "timing": {
                **self.timing,
                "to_first_step_s": self.reporter.first_step_s if self.reporter else None,
                "total_s": time.perf_counter() - self.began,
            },
        }
