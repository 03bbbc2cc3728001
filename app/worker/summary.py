"""Per-layer summary of any model on the `meta` device: shapes, parameters, MACs, receptive fields.

Nothing is allocated or computed: the model is built on the meta device (tensors with shapes
and no data) and one forward pass records, per module,

- the output shape, from a forward hook;
- its own parameters (`parameters(recurse=False)`, each tensor counted once), and how many of
  those train;
- its own MACs: a TorchDispatchMode counts the FLOPs of every matrix multiply, convolution and
  attention kernel with the formulas of `torch.utils.flop_counter` and gives them, halved, to
  the innermost module running. Normalisation, activations, pooling and additions count zero,
  as in torchvision's GFLOPS (which are GMACs: ResNet-50 is 4.089 both ways);
- the receptive field of its output (see `app.worker.receptive_field`).

Rows are the leaf modules plus any module that owns parameters or MACs itself (an attention
block with its own projection weights), so the rows add up to the totals exactly.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import torch
import torchvision
from torch import nn
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry

from app.worker.errors import InvalidInput
from app.worker.receptive_field import ReceptiveFieldTracker

Trainable = Literal["all", "head"]
TRAINABLE_CHOICES: tuple[str, ...] = ("all", "head")

# Every classification model torchvision defines, in its own (alphabetical) order.
ARCHITECTURES: tuple[str, ...] = tuple(torchvision.models.list_models(module=torchvision.models))

# Built as torchvision's pretrained weights build them, so that the parameter count equals
# `weights.meta["num_params"]`: GoogLeNet drops its auxiliary heads, Inception v3 keeps them
# (they do not run in eval mode). `init_weights=False` skips a scipy-based init the meta device
# does not need.
BUILD_KWARGS: dict[str, dict[str, Any]] = {
    "googlenet": {"aux_logits": False, "init_weights": False},
    "inception_v3": {"init_weights": False},
}

MAX_INPUT_SIZE = 4096

_FACTORIES = {
    torch.empty,
    torch.zeros,
    torch.ones,
    torch.full,
    torch.rand,
    torch.randn,
    torch.randint,
    torch.empty_strided,
    torch.eye,
}


class _MetaParameters(TorchFunctionMode):
    """Puts new parameter-like tensors on the meta device but leaves `arange`/`tensor` on CPU."""

    def __torch_function__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        kwargs = dict(kwargs or {})
        if func in _FACTORIES and kwargs.get("device") is None:
            kwargs["device"] = "meta"
        return func(*args, **kwargs)


def check_architecture(arch: str) -> str:
    if arch not in ARCHITECTURES:
        known = ", ".join(ARCHITECTURES)
        raise InvalidInput("arch", f"unknown architecture {arch!r}; known: {known}")
    return arch


def build_meta_model(arch: str) -> nn.Module:
    """torchvision's `arch` with no weights, on the meta device, in eval mode."""
    check_architecture(arch)
    kwargs = BUILD_KWARGS.get(arch, {})
    try:
        with torch.device("meta"):
            model = torchvision.models.get_model(arch, weights=None, **kwargs)
    except NotImplementedError:
        # RegNet derives its stage widths from tensor arithmetic it reads back with `.tolist()`,
        # which meta tensors cannot do: keep that arithmetic on the CPU, the parameters on meta.
        with _MetaParameters():
            model = torchvision.models.get_model(arch, weights=None, **kwargs)
    return model.eval()


class _MacCounter(TorchDispatchMode):
    """Counts MACs (FLOPs / 2) of each aten op `torch.utils.flop_counter` has a formula for."""

    def __init__(self, on_macs: Callable[[int], None]) -> None:
        super().__init__()
        self._on_macs = on_macs

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        kwargs = kwargs or {}
        packet = func._overloadpacket
        if packet not in flop_registry and func is not torch.ops.prim.device.default:
            # A composite op (reached here in no-grad mode): count its parts instead.
            with self:
                decomposed = func.decompose(*args, **kwargs)
                if decomposed is not NotImplemented:
                    return decomposed
        out = func(*args, **kwargs)
        if packet in flop_registry:
            self._on_macs(int(flop_registry[packet](*args, **kwargs, out_val=out)) // 2)
        return out


@dataclass(frozen=True)
class SummaryRow:
    name: str  # the module's path in the model, e.g. "layer1.0.conv1"
    layer: str  # its class, e.g. "Conv2d"
    depth: int
    output_shape: tuple[int, ...] | None  # without the batch axis; None: it did not run
    params: int
    trainable: int
    macs: int
    receptive_field: tuple[int, int] | None  # input rows × columns; None: not followed
    whole_input: bool  # its outputs depend on every input pixel


@dataclass(frozen=True)
class ModelSummary:
    label: str
    input_shape: tuple[int, int, int]
    output_shape: tuple[int, ...]
    rows: tuple[SummaryRow, ...]
    total_params: int
    trainable_params: int
    total_macs: int
    code: str = ""

    def share(self, row: SummaryRow) -> float:
        """The row's percentage of all parameters."""
        return 100.0 * row.params / self.total_params if self.total_params else 0.0


@dataclass
class _Record:
    order: int
    output_shape: tuple[int, ...] | None = None
    macs: int = 0
    receptive_field: tuple[int, int] | None = None
    whole_input: bool = False
    ran: bool = False


@dataclass
class _Recorder:
    tracker: ReceptiveFieldTracker
    records: dict[str, _Record] = field(default_factory=dict)
    stack: list[str] = field(default_factory=list)
    started: int = 0

    def add_macs(self, macs: int) -> None:
        if self.stack:
            self.records[self.stack[-1]].macs += macs

    def hooks(self, name: str) -> tuple[Callable[..., None], Callable[..., None]]:
        def before(module: nn.Module, inputs: Any) -> None:
            record = self.records[name]
            if not record.ran:
                record.order, record.ran = self.started, True
                self.started += 1
            self.stack.append(name)

        def after(module: nn.Module, inputs: Any, output: Any) -> None:
            self.stack.pop()
            record = self.records[name]
            tensor = _first_tensor(output)
            if record.output_shape is None and tensor is not None:
                record.output_shape = tuple(int(n) for n in tensor.shape[1:])
                found = self.tracker.field_of(tensor)
                if found is not None:
                    record.whole_input = found.whole
                    record.receptive_field = found.pixels

        return before, after


def _first_tensor(value: Any) -> torch.Tensor | None:
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, list | tuple):
        for item in value:
            found = _first_tensor(item)
            if found is not None:
                return found
    return None


@contextmanager
def _hooked(model: nn.Module, recorder: _Recorder) -> Iterator[None]:
    handles = []
    for name, module in model.named_modules():
        recorder.records[name] = _Record(order=-1)
        before, after = recorder.hooks(name)
        handles.append(module.register_forward_pre_hook(before))
        handles.append(module.register_forward_hook(after))
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def summarize(
    model: nn.Module,
    input_shape: tuple[int, int, int],
    *,
    label: str,
    trainable: Trainable = "all",
    code: str = "",
) -> ModelSummary:
    """Run `model` (on meta) on one `input_shape` image and tabulate every layer.

    `trainable="head"` counts only the last module with parameters to run as trainable, as in
    feature extraction with a frozen backbone. Raises InvalidInput("height", …) when the model
    cannot take that input size, quoting PyTorch's reason.
    """
    if trainable not in TRAINABLE_CHOICES:
        raise InvalidInput("trainable", f"must be 'all' or 'head' (got {trainable!r})")
    tracker = ReceptiveFieldTracker()
    recorder = _Recorder(tracker)
    image = torch.zeros((1, *input_shape), device="meta")
    try:
        with _hooked(model, recorder), torch.no_grad(), tracker, _MacCounter(recorder.add_macs):
            tracker.start(image)
            output = model(image)
    except (RuntimeError, ValueError, AssertionError, IndexError, NotImplementedError) as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        c, h, w = input_shape
        raise InvalidInput("height", f"{label} cannot take a {c}×{h}×{w} input: {reason}") from None
    final = _first_tensor(output)
    output_shape = tuple(int(n) for n in final.shape[1:]) if final is not None else ()
    return _tabulate(model, recorder, input_shape, output_shape, label, trainable, code)


def _tabulate(
    model: nn.Module,
    recorder: _Recorder,
    input_shape: tuple[int, int, int],
    output_shape: tuple[int, ...],
    label: str,
    trainable: Trainable,
    code: str,
) -> ModelSummary:
    seen: set[int] = set()
    candidates = []
    for position, (name, module) in enumerate(model.named_modules()):
        own = 0
        for parameter in module.parameters(recurse=False):
            if id(parameter) not in seen:
                seen.add(id(parameter))
                own += parameter.numel()
        record = recorder.records[name]
        leaf = next(iter(module.children()), None) is None
        if (leaf and (record.ran or own)) or own or record.macs:
            key = (0, record.order) if record.ran else (1, position)
            candidates.append((key, name, module, own, record))
    candidates.sort(key=lambda item: item[0])
    head = max(
        (item for item in candidates if item[3] and item[4].ran),
        key=lambda item: item[4].order,
        default=None,
    )
    rows = []
    for _, name, module, own, record in candidates:
        trains = own if trainable == "all" or (head is not None and name == head[1]) else 0
        rows.append(
            SummaryRow(
                name=name or "(model)",
                layer=type(module).__name__,
                depth=name.count(".") + 1 if name else 0,
                output_shape=record.output_shape,
                params=own,
                trainable=trains,
                macs=record.macs,
                receptive_field=record.receptive_field,
                whole_input=record.whole_input,
            )
        )
    return ModelSummary(
        label=label,
        input_shape=input_shape,
        output_shape=output_shape,
        rows=tuple(rows),
        total_params=sum(row.params for row in rows),
        trainable_params=sum(row.trainable for row in rows),
        total_macs=sum(row.macs for row in rows),
        code=code,
    )


def head_name(summary: ModelSummary) -> str | None:
    """The module `trainable="head"` leaves trainable: the last one with parameters to run."""
    ran = [row for row in summary.rows if row.params and row.output_shape is not None]
    return ran[-1].name if ran else None


def check_input_size(field_name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(field_name, f"must be a whole number (got {value!r})")
    if not 1 <= value <= MAX_INPUT_SIZE:
        raise InvalidInput(field_name, f"must be between 1 and {MAX_INPUT_SIZE} (got {value})")
    return value


def _model_code(
    arch: str, height: int, width: int, summary: ModelSummary, trainable: Trainable
) -> str:
    kwargs = "".join(f", {key}={value!r}" for key, value in BUILD_KWARGS.get(arch, {}).items())
    shape = ", ".join(str(n) for n in (1, *summary.output_shape))
    lines = [
        "import torch",
        "import torchvision",
        "",
        f'model = torchvision.models.get_model("{arch}", weights=None{kwargs}).eval()',
    ]
    head = head_name(summary)
    if trainable == "head" and head:
        lines += [
            "model.requires_grad_(False)  # freeze everything …",
            f'model.get_submodule("{head}").requires_grad_(True)  # … but the head',
        ]
    lines += [
        f"x = torch.randn(1, 3, {height}, {width})",
        f"print(model(x).shape)  # torch.Size([{shape}])",
        f"print(sum(p.numel() for p in model.parameters()))  # {summary.total_params}",
        f"print(sum(p.numel() for p in model.parameters() if p.requires_grad))  # {summary.trainable_params}",
    ]
    return "\n".join(lines) + "\n"


def summarize_architecture(
    arch: str, height: int = 224, width: int = 224, trainable: Trainable = "all"
) -> ModelSummary:
    """The per-layer table of torchvision's `arch` on a 3×height×width image."""
    check_architecture(arch)
    check_input_size("height", height)
    check_input_size("width", width)
    model = build_meta_model(arch)
    summary = summarize(model, (3, height, width), label=arch, trainable=trainable)
    code = _model_code(arch, height, width, summary, trainable)
    return replace(summary, code=code)
