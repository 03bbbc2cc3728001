"""`run(config, on_event, should_stop, ...)`: one training run, start to finish.

The order, like torchvision's reference `main`: check the config against this machine
(`check_config`, raising ConfigError before any data is read) → seed → load the data onto the
device → build and initialise the model → freeze per strategy → optimiser, schedule, scaler,
loss, augmenter → (resume) → per epoch: train, evaluate, checkpoint, report → write the outputs.

Every outcome after the checks is a RunResult, never an exception: "succeeded"; "cancelled"
when `should_stop()` said so (the checkpoint then holds the exact point reached, mid-epoch
included, and `resume=True` continues to the result an uninterrupted run gives); "failed" with
the message when anything raised (a Failed event is sent; the caller's process carries on).

On CUDA: cudnn.benchmark, channels_last for the model and the batches, the data copied once
to the GPU from pinned memory (non-blocking), bf16/fp16 autocast. On the CPU: fp32, torch's
default intra-op threads (one per physical core) unless `num_threads` is given.
"""

from __future__ import annotations

import contextlib
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from app.worker.training import checkpoint, outputs
from app.worker.training.augment import Augmenter
from app.worker.training.config import ConfigError, RunConfig
from app.worker.training.data import ImageSet, load_data, preflight
from app.worker.training.events import EpochEnd, Event, Failed, Finished, Started, StepProgress
from app.worker.training.loop import (
    EpochStats,
    Evaluation,
    Precision,
    build_optimizer,
    epoch_order,
    evaluate,
    resolve_precision,
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
    check_imagenet,
    load_imagenet,
    load_transfer,
    read_init_checkpoint,
    resolve_init_checkpoint,
    stage_count,
)

PROGRESS_INTERVAL_S = 0.25  # at most ~4 StepProgress events a second


@dataclass
class RunResult:
    """How a run ended. `metrics` is what metrics.json holds."""

    status: str  # "succeeded" | "failed" | "cancelled"
    metrics: dict[str, Any]
    out_dir: Path
    error: str | None = None


@dataclass
class Plan:
    """What `check_config` resolved: where and how the run trains, and what it starts from."""

    device: torch.device
    precision: Precision
    init_checkpoint: dict[str, Any] | None = None
    resume_checkpoint: dict[str, Any] | None = None


def resolve_device(requested: str) -> torch.device:
    """auto: the current CUDA device when there is one, else the CPU."""
    if requested == "cuda" or (requested == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise ConfigError("device", "CUDA is not available on this machine; use auto or cpu")
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def check_config(
    config: RunConfig,
    *,
    data_dir: Path,
    runs_dir: Path | None = None,
    resume_dir: Path | None = None,
) -> Plan:
    """Everything about the config that this machine decides, before any data is read.

    Raises ConfigError for: CUDA asked for but absent; fp16 on the CPU; more stages to
    unfreeze than the model has; a missing folder or CIFAR-10; ImageNet weights not in the
    torch cache (naming the path and URL); an init run or checkpoint that is missing or of
    another architecture; and, with `resume_dir`, a missing checkpoint or a config that
    differs from the one it was trained with.
    """
    device = resolve_device(config.device)
    precision = resolve_precision(config.precision, device)
    stages = stage_count(config)
    if config.strategy == "last_n" and config.unfreeze_stages > stages:
        raise ConfigError(
            "unfreeze_stages",
            f"{config.model} has {stages} backbone stages; expected 1 to {stages}",
        )
    preflight(config, data_dir)
    plan = Plan(device, precision)
    if resume_dir is not None:
        path = resume_dir / checkpoint.FILENAME
        if not path.is_file():
            raise ConfigError("resume", f"no {checkpoint.FILENAME} in {resume_dir} to resume from")
        try:
            plan.resume_checkpoint = checkpoint.load(path)
        except Exception as error:
            raise ConfigError("resume", f"cannot read {path}: {error}") from error
        saved = plan.resume_checkpoint["config"]
        for key, value in config.to_dict().items():
            if saved.get(key) != value:
                raise ConfigError(
                    key,
                    f"is {value!r} here but {saved.get(key)!r} in the checkpoint; a resumed run keeps its config",
                )
        return plan
    if config.init_kind == "imagenet":
        check_imagenet(config.model)
    elif config.init_kind in ("run", "path"):
        path = resolve_init_checkpoint(config, runs_dir)
        plan.init_checkpoint = read_init_checkpoint(config, path)
    return plan


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
    ConfigError (see check_config) before reading any data; after that, never raises for a
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
    except Exception as error:
        message = (
            str(error) if isinstance(error, ValueError) else f"{type(error).__name__}: {error}"
        )
        return trainer.fail(message or type(error).__name__, traceback.format_exc())


class _Trainer:
    """The state of one run; `train` reads top to bottom."""

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
        self.timing: dict[str, float | None] = {"data_s": None, "to_first_step_s": None}

    # ---------------------------------------------------------------- the run

    def train(self, data_dir: Path) -> RunResult:
        config, device, precision = self.config, self.plan.device, self.plan.precision
        torch.manual_seed(config.seed)  # weights, dropout
        if device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # fixed input shapes: pick the fastest kernels
        self.generator = torch.Generator(device=device).manual_seed(config.seed)
        self.mix_generator = torch.Generator().manual_seed(config.seed + 1)

        data = self.data = load_data(config, data_dir, device)
        self.timing["data_s"] = time.perf_counter() - self.began
        classes = data.classes
        net = self.net = build(config, len(classes))
        mean, std = self._initialise(net, data)
        frozen = net.set_trainable(config.strategy, config.unfreeze_stages)
        self.trainable = {name for name, _ in net.groups() if name not in frozen}
        channels_last = device.type == "cuda"
        net.model.to(device)
        if channels_last:
            net.model.to(memory_format=torch.channels_last)
        self.model_info.update(
            parameters=sum(p.numel() for p in net.model.parameters()),
            trainable_parameters=sum(p.numel() for p in net.model.parameters() if p.requires_grad),
            frozen_stages=frozen,
            stages=[name for name, _ in net.stages],
            normalization={"mean": list(mean), "std": list(std)},
        )

        counts = data.train_counts
        criterion = build_loss(
            config.loss,
            counts,
            label_smoothing=config.label_smoothing,
            focal_gamma=config.focal_gamma,
            focal_alpha=config.focal_alpha,
        ).to(device)
        optimizer = build_optimizer(net, config, device)
        steps = steps_per_epoch(len(data.train_labels), config.batch_size)
        warmup = round(config.warmup_epochs * steps)
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, warmup_cosine(warmup, steps * config.epochs)
        )
        scaler = torch.amp.GradScaler(device.type, enabled=precision.needs_scaler)
        augmenter = Augmenter(
            config.augment,
            hflip=data.hflip,
            mean=mean,
            std=std,
            device=device,
            generator=self.generator,
            mix_generator=self.mix_generator,
            num_classes=len(classes),
            mixup_alpha=config.mixup_alpha,
            cutmix_alpha=config.cutmix_alpha,
            channels_last=channels_last,
        )
        self.runtime = {
            "device": str(device),
            "precision": precision.name,
            "channels_last": channels_last,
            "threads": torch.get_num_threads(),
            "versions": checkpoint.versions(device),
        }

        start_epoch, order, partial = 0, None, None
        saved = self.plan.resume_checkpoint
        if saved is not None:
            net.model.load_state_dict(saved["model"])
            optimizer.load_state_dict(saved["optimizer"])
            scheduler.load_state_dict(saved["scheduler"])
            if saved["scaler"]:
                scaler.load_state_dict(saved["scaler"])
            checkpoint.restore_rng(saved["rng"], self.generator, self.mix_generator)
            self.progress = dict(saved["progress"])
            start_epoch = saved["epoch"]
            partial = self.progress.pop("partial", None)
            if partial is not None:  # stopped inside an epoch: continue with its order
                order = saved["order"].to(device)
        self.parts = (optimizer, scheduler, scaler)

        group_names = [name for name, _ in net.groups()]
        self.emit(
            Started(
                epochs=config.epochs,
                steps_per_epoch=steps,
                train_size=len(data.train_labels),
                val_size=len(data.val_labels),
                classes=classes,
                device=str(device),
                precision=precision.name,
                start_epoch=start_epoch + 1,
                resumed=saved is not None,
                data=data.info,
            )
        )
        for epoch in range(start_epoch, config.epochs):
            if order is None:
                order = epoch_order(data.train_labels, config.sampler, self.generator, counts)
            if partial is not None:
                stats = EpochStats.from_state(partial, steps, group_names, device)
                partial = None
            else:
                stats = EpochStats(steps, group_names, device)
            epoch_began, seen_before, done_before = time.perf_counter(), stats.seen, stats.done
            reporter = self._reporter(
                epoch, steps, scheduler, epoch_began, seen_before, done_before
            )
            batches = train_batches(
                data.train_images,
                data.train_labels,
                order,
                config.batch_size,
                augmenter,
                stats.done,
            )
            stopped = train_one_epoch(
                net,
                batches,
                criterion=criterion,
                optimizer=optimizer,
                scheduler=scheduler,
                scaler=scaler,
                precision=precision,
                stats=stats,
                grad_clip=config.grad_clip,
                should_stop=self.should_stop,
                on_step=reporter,
            )
            summary = stats.summary(self.trainable)  # reads the sums: waits for the device
            stats.seconds += time.perf_counter() - epoch_began
            if stopped or self.should_stop():
                return self._cancel(epoch, stats, order)

            evaluation = evaluate(
                net.model,
                data.val_images,
                data.val_labels,
                augmenter=augmenter,
                precision=precision,
            )
            report = self._report(evaluation)
            entry = {
                "epoch": epoch + 1,
                **summary,
                "val_loss": evaluation.loss,
                **{
                    k: report[k]
                    for k in (
                        "val_accuracy",
                        "val_top5_accuracy",
                        "macro_f1",
                        "weighted_f1",
                        "ece",
                        "nll",
                    )
                },
                "lr": max(group["lr"] for group in optimizer.param_groups),
                "images_per_s": stats.seen / max(stats.seconds, 1e-9),
                "seconds": stats.seconds,
                "train_images": stats.seen,
            }
            self.progress["history"].append(
                {**entry, "per_class_recall": [c["recall"] for c in report["per_class"]]}
            )
            self.progress["step_loss"].extend(stats.step_losses.cpu().tolist())
            self.progress["last_report"] = report
            self.last_eval = evaluation
            order = None
            self._save_checkpoint(epoch + 1, 0, None, None)
            outputs.write_metrics(self.out_dir, self.metrics("running"))
            self.emit(
                EpochEnd(
                    epoch + 1,
                    config.epochs,
                    {
                        **entry,
                        "confusion_matrix": report["confusion_matrix"],
                        "per_class": report["per_class"],
                    },
                )
            )
        return self._finish()

    # ---------------------------------------------------------------- pieces

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

    def _reporter(
        self,
        epoch: int,
        steps: int,
        scheduler: Any,
        epoch_began: float,
        seen_before: int,
        done_before: int,
    ) -> Callable[[EpochStats, torch.Tensor], None]:
        """on_step for train_one_epoch: a StepProgress now and then (always the epoch's last)."""
        last_sent = [0.0]
        epochs = self.config.epochs

        def report(stats: EpochStats, loss: torch.Tensor) -> None:
            now = time.perf_counter()
            first = self.timing["to_first_step_s"] is None
            if not (first or stats.done == steps or now - last_sent[0] >= self.interval):
                return
            value = float(loss)  # the one sync with the device, a few times a second
            now = time.perf_counter()
            elapsed = max(now - epoch_began, 1e-9)
            per_step = elapsed / max(1, stats.done - done_before)
            remaining = (epochs - epoch - 1) * steps + (steps - stats.done)
            lr = max(group["lr"] for group in scheduler.optimizer.param_groups)
            if first:
                self.timing["to_first_step_s"] = now - self.began
            last_sent[0] = now
            self.emit(
                StepProgress(
                    epoch + 1,
                    epochs,
                    stats.done,
                    steps,
                    value,
                    (stats.seen - seen_before) / elapsed,
                    remaining * per_step,
                    lr,
                )
            )

        return report

    def _report(self, evaluation: Evaluation) -> dict[str, Any]:
        assert self.data is not None
        labels = self.data.val_labels.cpu().numpy()
        report = classification_report(labels, evaluation.probs, self.data.classes)
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
        optimizer, scheduler, scaler = self.parts
        checkpoint.save(
            self.out_dir / checkpoint.FILENAME,
            {
                "model": self.net.model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "scaler": scaler.state_dict() if scaler.is_enabled() else {},
                "epoch": epoch,
                "step": step,
                "order": order.cpu() if order is not None else torch.empty(0, dtype=torch.int64),
                "config": self.config.to_dict(),
                "classes": list(self.data.classes),
                "normalization": self.model_info["normalization"],
                "versions": self.runtime["versions"],
                "rng": checkpoint.rng_state(self.generator, self.mix_generator),
                "progress": {**self.progress, "partial": partial},
            },
        )

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
            augmenter = Augmenter(
                "none",
                hflip=False,
                mean=tuple(self.model_info["normalization"]["mean"]),
                std=tuple(self.model_info["normalization"]["std"]),
                device=self.plan.device,
                generator=self.generator,
                mix_generator=self.mix_generator,
                num_classes=len(self.data.classes),
                channels_last=self.plan.device.type == "cuda",
            )
            self.last_eval = evaluate(
                self.net.model,
                self.data.val_images,
                self.data.val_labels,
                augmenter=augmenter,
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
        report = self.progress["last_report"] or {}
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
            "runtime": getattr(self, "runtime", {}),
            "timing": {**self.timing, "total_s": time.perf_counter() - self.began},
        }
