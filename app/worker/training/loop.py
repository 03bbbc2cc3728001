"""The loop: batches from the in-memory tensors, `train_one_epoch`, `evaluate`.

Shaped like torchvision's reference trainer and the loop of question 11, with airbench's data
path: an epoch is a `randperm` of the training indices (or, for balanced sampling, a
class-weighted draw with replacement, as `WeightedRandomSampler` does); a batch is one gather
from the uint8 tensor, augmented on its device. Inside a step, the order is
`zero_grad(set_to_none)` → forward under autocast → `scaler.scale(loss).backward()` →
`scaler.unscale_` → per-group gradient norms and clipping on the true gradients →
`scaler.step` → `scaler.update` → `scheduler.step` (per step). Running sums stay on the
device; nothing syncs with the GPU except when progress is reported.
"""

from __future__ import annotations

import math
import platform
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from app.worker.errors import InvalidInput
from app.worker.training.augment import Augmenter
from app.worker.training.models import Net

EVAL_BATCH = 256  # images per evaluation forward pass (activations of 512 at 32 px: ~130 MB)


# ---------------------------------------------------------------- precision


@dataclass(frozen=True)
class Precision:
    """How the forward pass runs: fp32, or autocast to bf16/fp16 (fp16 with a GradScaler).

    `reason` says in words why this precision was chosen (asked for, or what `auto` found).
    """

    name: str  # "fp32" | "bf16" | "fp16"
    device_type: str
    reason: str = field(default="", compare=False)

    @property
    def dtype(self) -> torch.dtype:
        """The autocast dtype (float32 when autocast is off)."""
        return {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[self.name]

    @property
    def needs_scaler(self) -> bool:
        """fp16 gradients can underflow: the loss is scaled (Micikevicius et al., 2018)."""
        return self.name == "fp16"

    def autocast(self) -> torch.autocast:
        """The context the forward pass and the loss run in."""
        return torch.autocast(self.device_type, dtype=self.dtype, enabled=self.name != "fp32")


def cpu_bf16_native() -> tuple[bool, str]:
    """(whether this CPU computes bf16 natively, the evidence in words).

    oneDNN's own check (`torch.ops.mkldnn._is_mkldnn_bf16_supported`, what torch's CPU autocast
    tests use) is also true on AVX-512 CPUs without bf16 instructions, where oneDNN emulates
    bf16 and runs slower than fp32; on x86 the CPU must also have `avx512_bf16` or AMX tiles
    (`torch.cpu._is_avx512_bf16_supported`, `_is_amx_tile_supported`). On Arm the oneDNN check
    reads the bf16 extension itself.
    """
    if not torch.backends.mkldnn.is_available():
        return False, "this torch build has no oneDNN"
    if not torch.ops.mkldnn._is_mkldnn_bf16_supported():
        return False, "oneDNN finds no bf16 support on this CPU"
    if platform.machine().lower() in ("x86_64", "amd64", "i386", "i686", "x86"):
        if torch.cpu._is_amx_tile_supported():
            return True, "the CPU has AMX tiles"
        if torch.cpu._is_avx512_bf16_supported():
            return True, "the CPU has avx512_bf16"
        return False, "AVX-512 without avx512_bf16: oneDNN would emulate bf16, slower than fp32"
    return True, "oneDNN finds native bf16 on this CPU"


def resolve_precision(requested: str, device: torch.device) -> Precision:
    """auto: bf16 where the device computes it natively; else fp16 on CUDA, fp32 on the CPU.

    CUDA: `torch.cuda.is_bf16_supported()` alone is also true where bf16 is emulated (T4,
    V100), hence `including_emulation=False`. CPU: see `cpu_bf16_native`. The Precision's
    `reason` says why. Raises InvalidInput for fp16 on the CPU.
    """
    if requested == "auto":
        if device.type == "cuda":
            if torch.cuda.is_bf16_supported(including_emulation=False):
                return Precision("bf16", "cuda", "auto: the GPU has native bf16")
            return Precision(
                "fp16", "cuda", "auto: the GPU has no native bf16; fp16 with loss scaling"
            )
        native, evidence = cpu_bf16_native()
        if native:
            return Precision("bf16", device.type, f"auto: bf16 autocast, {evidence}")
        return Precision("fp32", device.type, f"auto: fp32, {evidence}")
    if requested == "fp16" and device.type != "cuda":
        raise InvalidInput("precision", "fp16 needs CUDA; on the CPU use fp32 or bf16")
    return Precision(requested, device.type, "asked for in the config")


# ---------------------------------------------------------------- optimisation


def parameter_groups(net: Net, config: Any) -> list[dict[str, Any]]:
    """Backbone and head, each split into decayed weights and undecayed norms/biases.

    Every tensor with one dimension (biases, BN/LN scales and shifts) gets no weight decay
    (He et al., 2019, "Bag of Tricks"); the backbone's learning rate is lr × backbone_lr_mult.
    Frozen parameters are left out.
    """
    head_ids = {id(p) for p in net.head.parameters()}
    buckets: dict[tuple[bool, bool], list[nn.Parameter]] = {}
    for parameter in net.model.parameters():
        if not parameter.requires_grad:
            continue
        key = (id(parameter) in head_ids, parameter.ndim > 1)
        buckets.setdefault(key, []).append(parameter)
    groups = []
    for (is_head, decays), params in sorted(buckets.items()):
        lr = config.lr * (1.0 if is_head else config.backbone_lr_mult)
        decay = config.weight_decay if decays else 0.0
        groups.append({"params": params, "lr": lr, "weight_decay": decay})
    return groups


def optimizer_implementation(device: torch.device) -> str:
    """ "fused" where torch has fused AdamW/SGD kernels for the device (CPU and CUDA since
    PyTorch 2.4), else "foreach" where it has multi-tensor kernels, else "for-loop".

    Fused: one kernel updates every parameter (on this project's 2-core CPU, AdamW over
    ResNet-18's weights took 29 ms fused against 78 ms foreach and 129 ms for-loop; SGD 24 ms
    fused, 38 ms for-loop, 52 ms foreach, whose CPU kernels are a loop).
    """
    fused = torch.utils._foreach_utils._get_fused_kernels_supported_devices()
    foreach = torch.utils._foreach_utils._get_foreach_kernels_supported_devices()
    if device.type in fused:
        return "fused"
    return "foreach" if device.type in foreach else "for-loop"


def build_optimizer(net: Net, config: Any, device: torch.device) -> torch.optim.Optimizer:
    """AdamW (β1 = momentum, β2 = 0.999) or SGD (momentum, Nesterov) over `parameter_groups`.

    AdamW's weight decay is decoupled (w ← w − lr·λ·w, Loshchilov and Hutter, 2019); SGD's is
    L2, λ·w added to the gradient before momentum (torch.optim.SGD's `weight_decay`). The
    kernels are `optimizer_implementation(device)`'s; the update is the same either way up to
    float rounding.
    """
    groups = parameter_groups(net, config)
    kind = optimizer_implementation(device)
    fast: dict[str, bool] = {"fused": True} if kind == "fused" else {"foreach": kind == "foreach"}
    if config.optimizer == "sgd":
        return torch.optim.SGD(
            groups,
            lr=config.lr,
            momentum=config.momentum,
            nesterov=config.nesterov and config.momentum > 0,
            **fast,
        )
    return torch.optim.AdamW(groups, lr=config.lr, betas=(config.momentum, 0.999), **fast)


def warmup_cosine(warmup_steps: int, total_steps: int) -> Callable[[int], float]:
    """The LR factor at a step: linear warm-up to 1, then a half cosine to 0.

    step < W: (step + 1) / W;  else ½ · (1 + cos(π · (step − W) / (T − W))) (Loshchilov and
    Hutter, 2017, without restarts; the formula of question 11).
    """

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return factor


# ---------------------------------------------------------------- batches


def epoch_order(
    labels: torch.Tensor, sampler: str, generator: torch.Generator, class_counts: list[int]
) -> torch.Tensor:
    """The epoch's sample indices (N,) int64, on the labels' device.

    shuffle: a random permutation. balanced: N draws with replacement, each image weighted
    1 / (its class's count), so every class is drawn equally often on average.
    """
    n = len(labels)
    if sampler == "balanced":
        counts = torch.tensor(class_counts, dtype=torch.float32, device=labels.device)
        weights = 1.0 / counts.clamp_min(1)[labels]
        return torch.multinomial(weights, n, replacement=True, generator=generator)
    return torch.randperm(n, generator=generator, device=labels.device)


def steps_per_epoch(train_size: int, batch_size: int) -> int:
    """Full batches per epoch (the last partial batch is dropped); at least one."""
    return max(1, train_size // batch_size)


def train_batches(
    images: torch.Tensor,
    labels: torch.Tensor,
    order: torch.Tensor,
    batch_size: int,
    augmenter: Augmenter,
    start_step: int = 0,
) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """(normalised images, targets, class indices) per step, from `start_step` on."""
    size = min(batch_size, len(order))
    for step in range(start_step, steps_per_epoch(len(order), batch_size)):
        index = order[step * size : (step + 1) * size]
        batch_labels = labels[index]
        x, targets = augmenter.train_batch(images[index], batch_labels)
        yield x, targets, batch_labels


# ---------------------------------------------------------------- one epoch


@dataclass
class EpochStats:
    """Running sums of one training epoch, kept on the device until the epoch ends."""

    steps: int
    groups: list[str]
    device: torch.device
    done: int = 0  # steps completed
    seen: int = 0  # images trained on
    seconds: float = 0.0  # wall time spent training (kept by the caller, who syncs first)
    loss_sum: torch.Tensor = field(init=False)  # Σ loss · batch size
    correct: torch.Tensor = field(init=False)
    step_losses: torch.Tensor = field(init=False)  # (steps,)
    norm_sums: torch.Tensor = field(init=False)  # (groups,) Σ of per-step group norms
    norm_counts: torch.Tensor = field(init=False)  # (groups,) finite norms summed

    def __post_init__(self) -> None:
        d = self.device
        self.loss_sum = torch.zeros((), device=d)
        self.correct = torch.zeros((), dtype=torch.int64, device=d)
        self.step_losses = torch.full((self.steps,), float("nan"), device=d)
        self.norm_sums = torch.zeros(len(self.groups), device=d)
        self.norm_counts = torch.zeros(len(self.groups), device=d)

    def to_state(self) -> dict[str, Any]:
        """Plain values and CPU tensors, for a mid-epoch checkpoint."""
        return {
            "done": self.done,
            "seen": self.seen,
            "seconds": self.seconds,
            "tensors": {
                name: getattr(self, name).detach().cpu()
                for name in ("loss_sum", "correct", "step_losses", "norm_sums", "norm_counts")
            },
        }

    @classmethod
    def from_state(
        cls, state: dict[str, Any], steps: int, groups: list[str], device: torch.device
    ) -> EpochStats:
        """The sums saved by `to_state`, back on `device`."""
        stats = cls(steps, groups, device, state["done"], state["seen"], state["seconds"])
        for name, tensor in state["tensors"].items():
            setattr(stats, name, tensor.to(device))
        return stats

    def summary(self, trainable: set[str]) -> dict[str, Any]:
        """train_loss, train_accuracy and mean gradient norms per group (null if frozen)."""
        seen = max(1, self.seen)
        counts = self.norm_counts.clamp_min(1).cpu()
        means = (self.norm_sums.cpu() / counts).tolist()
        return {
            "train_loss": float(self.loss_sum) / seen,
            "train_accuracy": float(self.correct) / seen,
            "grad_norms": {
                g: (m if g in trainable else None) for g, m in zip(self.groups, means, strict=True)
            },
        }


def group_grad_norms(
    grouped: Sequence[Sequence[torch.Tensor]], device: torch.device
) -> torch.Tensor:
    """L2 norm of each group's gradients (G,); 0 for a group with none."""
    norms = []
    for params in grouped:
        grads = [p.grad for p in params if p.grad is not None]
        if grads:
            norms.append(torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads))))
        else:
            norms.append(torch.zeros((), device=device))
    return torch.stack(norms).float()


def train_one_epoch(
    net: Net,
    batches: Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]],
    *,
    criterion: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    scaler: torch.amp.GradScaler,
    precision: Precision,
    stats: EpochStats,
    grad_clip: float = 0.0,
    should_stop: Callable[[], bool] = lambda: False,
    on_step: Callable[[EpochStats, torch.Tensor], None] | None = None,
) -> bool:
    """Train on `batches` (updating `stats` in place); True when stopped early.

    `should_stop()` is asked before every step; `on_step(stats, loss)` is called after each.
    `loss` is the step's loss as a 0-d device tensor (reading it syncs with the GPU).
    """
    net.train_mode()
    grouped: list[list[torch.Tensor]] = [
        [p for p in m.parameters() if p.requires_grad] for _, m in net.groups()
    ]
    trainable = [p for params in grouped for p in params]
    while True:
        if should_stop():  # before drawing the batch, so its random draws stay unspent
            return True
        batch = next(batches, None)
        if batch is None:
            return False
        x, targets, labels = batch
        optimizer.zero_grad(set_to_none=True)
        with precision.autocast():
            logits = net.model(x)
            loss = criterion(logits, targets)
        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)  # norms and clipping see the true gradients
        norms = group_grad_norms(grouped, stats.device)
        if grad_clip > 0:
            nn.utils.clip_grad_norm_(trainable, grad_clip)
        scaler.step(optimizer)  # skipped when fp16 gradients overflowed
        scaler.update()
        scheduler.step()

        finite = torch.isfinite(norms)
        stats.norm_sums += torch.where(finite, norms, torch.zeros_like(norms))
        stats.norm_counts += finite.float()
        detached = loss.detach().float()
        stats.loss_sum += detached * len(labels)
        stats.correct += (logits.detach().argmax(dim=1) == labels).sum()
        stats.step_losses[stats.done] = detached
        stats.seen += len(labels)
        stats.done += 1
        if on_step is not None:
            on_step(stats, detached)


# ---------------------------------------------------------------- evaluation


@dataclass
class Evaluation:
    """One pass over the validation set."""

    probs: np.ndarray  # (N, K) float32 softmax probabilities
    log_probs: np.ndarray  # (N, K) float32 log-softmax: ranks classes where probs underflow
    loss: float  # mean cross-entropy (no label smoothing), nats
    accuracy: float


@torch.inference_mode()
def evaluate(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    augmenter: Augmenter,
    precision: Precision,
    batch_size: int = EVAL_BATCH,
) -> Evaluation:
    """One pass over uint8 images (N, 3, S, S) in eval mode, keeping every probability.

    The loss is plain cross-entropy computed in float32 from the logits, comparable between
    runs whatever their training loss (label smoothing, weights, focal).
    """
    model.eval()
    chunks = []
    for start in range(0, len(images), batch_size):
        x = augmenter.normalize(images[start : start + batch_size])
        with precision.autocast():
            chunks.append(model(x).float())
    logits = torch.cat(chunks)
    log_probs = F.log_softmax(logits, dim=1)
    loss = F.nll_loss(log_probs, labels)
    accuracy = (logits.argmax(dim=1) == labels).float().mean()
    return Evaluation(
        log_probs.exp().cpu().numpy(), log_probs.cpu().numpy(), float(loss), float(accuracy)
    )
