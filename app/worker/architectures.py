"""Facts about torchvision's classification architectures, all read offline.

Parameters are counted from the model definition (built on the meta device); top-1, top-5,
GFLOPS and the weights' file size come from the metadata torchvision ships with each weights
enum (`weights.meta`), so nothing is downloaded. The figures the papers report are not here:
the web layer takes them from the question's own table (questions/04) and sets them beside.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import torchvision

from app.worker.errors import InvalidInput
from app.worker.summary import build_meta_model, check_architecture

# Used when the question's table is missing: one builder per landmark, in order of arrival.
CLASSIC_BUILDERS: tuple[str, ...] = (
    "alexnet",
    "vgg16",
    "googlenet",
    "inception_v3",
    "resnet50",
    "densenet121",
    "mobilenet_v2",
    "efficientnet_b0",
    "vit_b_16",
    "convnext_tiny",
)


@dataclass(frozen=True)
class ArchitectureFacts:
    builder: str  # torchvision.models builder, e.g. "resnet50"
    weights: str  # weights enum member, e.g. "IMAGENET1K_V2"
    params: int  # counted: sum(p.numel()) of the model definition
    weights_params: int  # weights.meta["num_params"]
    top1: float  # ImageNet-1K top-1 %, weights.meta["_metrics"]
    top5: float
    gflops: float  # weights.meta["_ops"]: GFLOPS at the weights' evaluation size (multiply-adds)
    file_size_mb: float  # weights.meta["_file_size"]
    min_size: tuple[int, int]


def weights_for(builder: str, weights: str | None = None):  # type: ignore[no-untyped-def]
    """The weights enum member (DEFAULT when `weights` is None)."""
    check_architecture(builder)
    enum = torchvision.models.get_model_weights(builder)
    if weights is None:
        return enum.DEFAULT
    try:
        return enum[weights]
    except KeyError:
        known = ", ".join(member.name for member in enum)
        raise InvalidInput(
            "weights", f"{builder} has no weights {weights!r}; known: {known}"
        ) from None


@cache
def architecture_facts(builder: str, weights: str | None = None) -> ArchitectureFacts:
    """Counted parameters beside the metadata of `builder`'s weights (DEFAULT if not named)."""
    member = weights_for(builder, weights)
    model = build_meta_model(builder)
    meta = member.meta
    metrics = meta["_metrics"]["ImageNet-1K"]
    return ArchitectureFacts(
        builder=builder,
        weights=member.name,
        params=sum(parameter.numel() for parameter in model.parameters()),
        weights_params=int(meta["num_params"]),
        top1=float(metrics["acc@1"]),
        top5=float(metrics["acc@5"]),
        gflops=float(meta["_ops"]),
        file_size_mb=float(meta["_file_size"]),
        min_size=tuple(meta["min_size"]),  # type: ignore[arg-type]
    )
