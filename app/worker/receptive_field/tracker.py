"""Receptive fields of every tensor in a forward pass, followed through torch functions.

A `ReceptiveFieldTracker` is a TorchFunctionMode: it sees each torch function a model calls
(`conv2d`, `max_pool2d`, `linear`, `cat`, `permute`, `+`, …) and works out, for its output,
which input rows and columns each output position can depend on (the theoretical receptive
field: borders ignored), kept per axis as whole positions (`spans.Span`):

- convolution, transposed convolution, pooling and adaptive pooling map each output position
  to the positions of their input that it reads; no fractional jump is ever summed, so a
  transposed conv in the stack gives the exact field, not an estimate;
- elementwise ops, concatenation and channel-only ops (a Linear over channels, LayerNorm over
  channels, batch norm in eval mode) read, per position, everything their inputs read;
- anything that mixes every position (global pooling, a Linear over a flattened map,
  attention over the tokens of an image, group/instance norm statistics) makes the output
  depend on the whole input, and so does everything computed from it afterwards;
- where the positions can no longer be followed (window partitions, padding crops,
  interpolation) the field is unknown, never guessed.

It only reads shapes, so it works on the `meta` device.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch.overrides import TorchFunctionMode

from app.worker.receptive_field.spans import Span, TooIrregular, union

Dims = tuple[int, int] | tuple[()] | None


@dataclass(frozen=True)
class Field:
    """Receptive field of a tensor's values, in input pixels (rows, columns).

    `spans` holds, per axis, the input positions each output position reads (None: unknown).
    `dims` says which tensor axes hold the rows and columns of positions: equal when they are
    merged into one axis (a flattened map, a token axis); `()` when no axis is spatial any more
    (a 1×1 map squeezed away), `None` when the layout cannot be followed.
    """

    spans: tuple[Span, Span] | None
    dims: Dims
    whole: bool = False

    @property
    def known(self) -> bool:
        return self.whole or self.spans is not None

    @property
    def pixels(self) -> tuple[int, int] | None:
        """Rows × columns of input one output value can depend on at most (the widest over
        all output positions); None when unknown or the whole input."""
        if self.whole or self.spans is None:
            return None
        return self.spans[0].size, self.spans[1].size


UNKNOWN = Field(None, None)
WHOLE = Field(None, None, whole=True)


def input_field() -> Field:
    """The field of an NCHW input image: each value is one pixel."""
    return Field((Span.identity(), Span.identity()), (2, 3))


_ELEMENT_FREE = {"size", "dim", "numel", "__get__", "__len__", "__bool__", "__format__"}
_REDUCTIONS = {"mean", "sum", "amax", "amin", "std", "var", "norm", "logsumexp", "prod", "nansum"}
_GLOBAL_STATS = {"group_norm", "instance_norm"}
_POOLS = {"max_pool2d", "max_pool2d_with_indices", "_max_pool2d", "avg_pool2d"}
_ADAPTIVE = {
    "adaptive_avg_pool2d",
    "adaptive_max_pool2d",
    "adaptive_max_pool2d_with_indices",
    "_adaptive_max_pool2d",
}
_CONCAT = {"cat", "concat", "concatenate"}
_RESHAPES = {
    "view",
    "reshape",
    "flatten",
    "unflatten",
    "squeeze",
    "unsqueeze",
    "view_as",
    "reshape_as",
}
_TRANSPOSES = {"transpose", "swapaxes", "swapdims"}


def _tensors(value: Any) -> Iterator[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _tensors(item)


def _pair(value: Any) -> tuple[int, int]:
    if isinstance(value, int):
        return value, value
    items = [int(item) for item in value]
    if len(items) == 1:
        return items[0], items[0]
    if len(items) != 2:
        raise ValueError(f"expected one or two sizes, got {items}")
    return items[0], items[1]


def _argument(args: tuple, kwargs: dict, index: int, name: str, default: Any = None) -> Any:
    if name in kwargs:
        return kwargs[name]
    return args[index] if len(args) > index else default


def _reshape_groups(
    before: Sequence[int], after: Sequence[int]
) -> list[tuple[list[int], list[int]]] | None:
    """Match axes of a reshape: groups of input axes and output axes with the same product."""
    if 0 in before or 0 in after:
        return None
    groups: list[tuple[list[int], list[int]]] = []
    i = j = 0
    while i < len(before) and j < len(after):
        ins, outs = [i], [j]
        left, right = before[i], after[j]
        i, j = i + 1, j + 1
        while left != right:
            if left < right:
                if i >= len(before):
                    return None
                ins.append(i)
                left *= before[i]
                i += 1
            else:
                if j >= len(after):
                    return None
                outs.append(j)
                right *= after[j]
                j += 1
        groups.append((ins, outs))
    # Trailing axes of size one belong to no group; they carry no positions.
    if any(before[k] != 1 for k in range(i, len(before))) or any(
        after[k] != 1 for k in range(j, len(after))
    ):
        return None
    return groups


def _reshaped_dims(field: Field, before: Sequence[int], after: Sequence[int]) -> Dims:
    if field.dims is None or field.dims == ():
        return field.dims
    rows, cols = field.dims  # type: ignore[misc]
    groups = _reshape_groups(before, after)
    if groups is None:
        return None
    located: dict[int, list[int]] = {}
    for ins, outs in groups:
        real_outs = [axis for axis in outs if after[axis] != 1] or outs[:1]
        for axis in ins:
            located[axis] = real_outs
    if rows not in located or cols not in located:
        # Both spatial axes had size one and were squeezed away: a single position.
        return () if before[rows] == 1 and before[cols] == 1 else None
    row_out, col_out = located[rows], located[cols]
    if rows == cols:  # merged positions: kept merged, or split back into rows and columns
        if len(row_out) == 1:
            return row_out[0], row_out[0]
        if len(row_out) == 2:
            return row_out[0], row_out[1]
        return None
    if len(row_out) == 1 and len(col_out) == 1:
        return row_out[0], col_out[0]
    return None


def _union(fields: Sequence[Field], dims: Dims) -> Field:
    if any(field.whole for field in fields):
        return WHOLE
    spans = [f.spans for f in fields if f.spans is not None]
    if len(spans) < len(fields):
        return UNKNOWN
    try:
        rows, cols = union([s[0] for s in spans]), union([s[1] for s in spans])
    except TooIrregular:
        return UNKNOWN
    return Field((rows, cols), dims)


def _normalise(axis: int, ndim: int) -> int:
    return axis + ndim if axis < 0 else axis


class ReceptiveFieldTracker(TorchFunctionMode):
    """Follows receptive fields from `start(x)` through every torch function called after it."""

    def __init__(self) -> None:
        super().__init__()
        # id(tensor) → (tensor, field); the tensor is kept so that its id is not reused.
        self._fields: dict[int, tuple[torch.Tensor, Field]] = {}

    def start(self, tensor: torch.Tensor) -> None:
        self._fields[id(tensor)] = (tensor, input_field())

    def field_of(self, tensor: torch.Tensor) -> Field | None:
        entry = self._fields.get(id(tensor))
        return entry[1] if entry is not None and entry[0] is tensor else None

    def _set(self, tensor: torch.Tensor, field: Field | None) -> None:
        self._fields[id(tensor)] = (tensor, UNKNOWN if field is None else field)

    def __torch_function__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        name = getattr(func, "__name__", "")
        if name in _ELEMENT_FREE:
            return out
        tracked = [
            (tensor, field)
            for tensor in _tensors((args, tuple(kwargs.values())))
            if (field := self.field_of(tensor)) is not None
        ]
        outputs = list(_tensors(out))
        if not tracked or not outputs:
            return out
        try:
            self._propagate(name, args, kwargs, tracked, outputs)
        except (ValueError, TypeError, IndexError, KeyError, ZeroDivisionError):
            # An argument form this tracker does not know, or a TooIrregular pattern: unknown.
            for tensor in outputs:
                self._set(tensor, None)
        return out

    def _propagate(
        self,
        name: str,
        args: tuple,
        kwargs: dict,
        tracked: list[tuple[torch.Tensor, Field]],
        outputs: list[torch.Tensor],
    ) -> None:
        source, field = tracked[0]
        result = outputs[0]
        new: Field | None
        if any(field.whole for _, field in tracked) or self._covers_everything(
            name, args, kwargs, source
        ):
            for tensor in outputs:
                self._set(tensor, WHOLE)
            return
        if any(field.spans is None for _, field in tracked):
            new = None  # an unknown input makes the output unknown
        elif name in ("conv2d", "conv_transpose2d") or name in _POOLS:
            new = self._window(name, args, kwargs, source, field)
        elif name in _ADAPTIVE:
            new = self._adaptive(args, kwargs, source, field)
        elif name in _RESHAPES:
            new = replace(field, dims=_reshaped_dims(field, source.shape, result.shape))
        elif name == "permute":
            order = (
                args[1:]
                if len(args) > 1 and isinstance(args[1], int)
                else _argument(args, kwargs, 1, "dims")
            )
            new = self._moved(field, [_normalise(int(a), source.ndim) for a in order])
        elif name in _TRANSPOSES:
            first, second = (_normalise(int(a), source.ndim) for a in (args[1], args[2]))
            order = list(range(source.ndim))
            order[first], order[second] = order[second], order[first]
            new = self._moved(field, order)
        elif name == "t":
            new = self._moved(field, list(range(source.ndim))[::-1])
        elif name == "linear":
            new = self._mixing(field, source.ndim, [source.ndim - 1], result)
        elif name in ("matmul", "mm", "bmm"):
            new = self._matmul(args, tracked, result)
        elif name in ("softmax", "log_softmax"):
            axis = _argument(args, kwargs, 1, "dim")
            new = self._mixing(field, source.ndim, [_normalise(int(axis), source.ndim)], result)
        elif name == "layer_norm":
            shape = _argument(args, kwargs, 1, "normalized_shape")
            count = 1 if isinstance(shape, int) else len(shape)
            axes = list(range(source.ndim - count, source.ndim))
            new = self._mixing(field, source.ndim, axes, result)
        elif name in _GLOBAL_STATS:
            new = WHOLE
        elif name == "scaled_dot_product_attention":
            key = _argument(args, kwargs, 1, "key")
            key_field = self.field_of(key) if isinstance(key, torch.Tensor) else None
            target = key_field or field
            new = self._mixing(target, key.ndim, [key.ndim - 2], result)
            if new is not None and not new.whole:
                query_field = self.field_of(args[0])
                new = replace(new, dims=query_field.dims if query_field else None)
        elif name == "multi_head_attention_forward":
            key = _argument(args, kwargs, 1, "key")
            key_field = self.field_of(key) if isinstance(key, torch.Tensor) else None
            new = self._mixing(key_field or field, key.ndim, [0], result)
        elif name in _REDUCTIONS or name in ("max", "min"):
            new = self._reduction(name, args, kwargs, source, field, result)
        elif name in _CONCAT:
            # Joining along any axis keeps the layout (ViT prepends its class token this way).
            new = _union(
                [f for _, f in tracked], field.dims if source.ndim == result.ndim else None
            )
        else:
            new = self._elementwise([f for _, f in tracked], source, result)
        for tensor in outputs:
            same_layout = tensor.ndim == result.ndim
            self._set(
                tensor, new if same_layout or new is None or new.whole else replace(new, dims=None)
            )

    @staticmethod
    def _covers_everything(name: str, args: tuple, kwargs: dict, source: torch.Tensor) -> bool:
        """Global pooling, or a reduction over every axis: every output reads every position."""
        if name in _ADAPTIVE:
            requested = _argument(args, kwargs, 1, "output_size")
            wanted = requested if isinstance(requested, list | tuple) else (requested, requested)
            return all(size == 1 for size in wanted)
        if name in _REDUCTIONS or name in ("max", "min"):
            return _argument(args, kwargs, 1, "dim") is None and not (
                len(args) > 1 and isinstance(args[1], torch.Tensor)
            )
        return False

    def _window(
        self, name: str, args: tuple, kwargs: dict, source: torch.Tensor, field: Field
    ) -> Field | None:
        if field.dims != (source.ndim - 2, source.ndim - 1):
            return None
        transposed = name == "conv_transpose2d"
        if name in ("conv2d", "conv_transpose2d"):
            weight = _argument(args, kwargs, 1, "weight")
            kernel = (int(weight.shape[-2]), int(weight.shape[-1]))
            stride = _pair(_argument(args, kwargs, 3, "stride", 1))
            dilation = _pair(_argument(args, kwargs, 7 if transposed else 5, "dilation", 1))
            given = _argument(args, kwargs, 4, "padding", 0)
        else:
            kernel = _pair(_argument(args, kwargs, 1, "kernel_size"))
            given = _argument(args, kwargs, 2, "stride")
            stride = kernel if given is None or given == [] or given == () else _pair(given)
            dilation = _pair(_argument(args, kwargs, 4, "dilation", 1)) if "max" in name else (1, 1)
            given = _argument(args, kwargs, 3, "padding", 0)
        if given == "valid":
            padding = (0, 0)
        elif given == "same":  # PyTorch puts the smaller half before
            padding = (dilation[0] * (kernel[0] - 1) // 2, dilation[1] * (kernel[1] - 1) // 2)
        else:
            padding = _pair(given)
        assert field.spans is not None
        spans = tuple(
            (span.transposed if transposed else span.window)(
                kernel[axis], stride[axis], dilation[axis], padding[axis]
            )
            for axis, span in enumerate(field.spans)
        )
        return Field((spans[0], spans[1]), field.dims)

    def _adaptive(
        self, args: tuple, kwargs: dict, source: torch.Tensor, field: Field
    ) -> Field | None:
        requested = _argument(args, kwargs, 1, "output_size")
        sizes = (int(source.shape[-2]), int(source.shape[-1]))
        wanted = requested if isinstance(requested, list | tuple) else (requested, requested)
        out = tuple(sizes[i] if wanted[i] is None else int(wanted[i]) for i in (0, 1))
        if field.dims != (source.ndim - 2, source.ndim - 1):
            return None
        assert field.spans is not None
        rows, cols = (span.adaptive(sizes[i], out[i]) for i, span in enumerate(field.spans))
        return Field((rows, cols), field.dims)

    @staticmethod
    def _moved(field: Field, order: list[int]) -> Field:
        if not field.dims:
            return field
        rows, cols = field.dims  # type: ignore[misc]
        return replace(field, dims=(order.index(rows), order.index(cols)))

    @staticmethod
    def _mixing(field: Field, ndim: int, axes: list[int], result: torch.Tensor) -> Field | None:
        """An op that combines values along `axes`: whole if those hold positions."""
        if field.dims is None:
            return None
        if field.dims and set(field.dims) & set(axes):
            return WHOLE
        dims = field.dims if result.ndim == ndim else None
        return replace(field, dims=dims)

    def _matmul(
        self, args: tuple, tracked: list[tuple[torch.Tensor, Field]], result: torch.Tensor
    ) -> Field | None:
        left, right = args[0], args[1]
        fields = []
        for tensor, axis in (
            (left, left.ndim - 1),
            (right, right.ndim - 2 if right.ndim > 1 else 0),
        ):
            field = self.field_of(tensor)
            if field is None:
                continue
            if field.dims is None:
                return None
            if field.dims and axis in field.dims:
                return WHOLE
            fields.append(field)
        left_field = self.field_of(left)
        dims: Dims = None
        if left_field is not None and left_field.dims and left.ndim == result.ndim:
            dims = left_field.dims
        return _union(fields, dims) if fields else None

    def _reduction(
        self,
        name: str,
        args: tuple,
        kwargs: dict,
        source: torch.Tensor,
        field: Field,
        result: torch.Tensor,
    ) -> Field | None:
        axes = _argument(args, kwargs, 1, "dim")
        if name in ("max", "min") and isinstance(axes, torch.Tensor):
            return self._elementwise([field], source, result)  # the binary max/min
        axes = [axes] if isinstance(axes, int) else list(axes)
        axes = [_normalise(int(a), source.ndim) for a in axes]
        if field.dims is None:
            return None
        if field.dims and set(field.dims) & set(axes):
            return WHOLE
        if result.ndim == source.ndim or not field.dims:
            return field
        rows, cols = field.dims  # type: ignore[misc]
        shift = lambda axis: axis - sum(1 for a in axes if a < axis)  # noqa: E731
        return replace(field, dims=(shift(rows), shift(cols)))

    def _elementwise(
        self, fields: list[Field], source: torch.Tensor, result: torch.Tensor
    ) -> Field | None:
        """Same-shape or broadcasting ops: the widest input field, positions where they were."""
        if source.ndim > result.ndim:
            return None
        offset = result.ndim - source.ndim
        dims: Dims = None
        main = fields[0]
        if main.dims == ():
            dims = ()
        elif main.dims is not None:
            rows, cols = main.dims  # type: ignore[misc]
            rows, cols = rows + offset, cols + offset
            same = (
                result.shape[rows] == source.shape[rows - offset]
                and result.shape[cols] == source.shape[cols - offset]
            )
            if not same:
                return None
            dims = (rows, cols)
        return _union(fields, dims)
