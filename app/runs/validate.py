"""A config from a request, checked before a run is queued: every refusal is a InvalidInput
naming the field (a 422 in the API, a message beside the field in the form).

In order: the JSON types (the API; a form's text goes through `app.runs.form`), storable text,
the engine's own checks (`RunConfig.from_dict`), what a web user may start from (`init`: only
scratch, ImageNet or one of their own runs; never a path on the server), the per-run limits,
and what this machine decides (`check_config`: the folder or CIFAR-10 files, the ImageNet
weights in the torch cache, the earlier run's checkpoint, CUDA).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from sqlmodel import Session

from app.datasets.runs import check_upload_folder
from app.inputs import storable
from app.messages import without_paths
from app.models.runs import LIVE_STATUSES
from app.repos import datasets as dataset_rows
from app.repos import runs as run_rows
from app.runs.files import bytes_on_disk, has_checkpoint
from app.runs.limits import check_run_limits
from app.runs.memory import check_memory, images_and_classes
from app.settings import Settings
from app.worker.errors import InvalidInput
from app.worker.numbers import as_finite_float, check_int
from app.worker.training import FieldSpec, RunConfig

RUN_INIT = re.compile(r"run:([0-9]{1,18})", re.ASCII)
MAX_TEXT = 200  # characters of a text field (folder, init): far more than a real value needs
INIT_HERE = "scratch, imagenet, or run:<id> of one of your runs"


def _shown(value: Any) -> str:
    text = repr(value) if not isinstance(value, int) or abs(value) < 10**24 else "a huge number"
    return text if len(text) <= 40 else text[:37] + "..."


def check_json_types(values: Any) -> dict[str, Any]:
    """The body as a mapping whose known fields hold the JSON type the schema gives them.

    Stricter than `RunConfig.from_dict`, which also takes numeric strings (YAML, forms): the API
    documents numbers as numbers. Unknown keys pass through for from_dict to name. Raises
    InvalidInput naming the field.
    """
    if not isinstance(values, dict):
        raise InvalidInput("config", "expected a JSON object of field: value")
    specs = {spec.name: spec for spec in RunConfig.fields()}
    for name, value in values.items():
        spec = specs.get(name)
        if spec is None:
            continue
        try:
            _check_type(spec, value)
        except InvalidInput as error:
            raise InvalidInput(name, error.message) from None
    return values


def _check_type(spec: FieldSpec, value: Any) -> None:
    wrong = InvalidInput(spec.name, f"expected {spec.allowed()}, got {_shown(value)}")
    if spec.type == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise wrong
        check_int(value, field=spec.name)
    elif spec.type == "float":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise wrong
        as_finite_float(value, field=spec.name)
    elif spec.type == "bool":
        if not isinstance(value, bool):
            raise wrong
    elif spec.type == "str?" and value is None:
        return
    elif not isinstance(value, str):
        raise wrong
    if isinstance(value, str):
        try:
            storable(value)
        except ValueError as error:
            raise InvalidInput(spec.name, str(error)) from None


def check_init(config: RunConfig, session: Session, *, owner_id: int, settings: Settings) -> None:
    """`init` may be scratch, imagenet, or run:<id> of the caller's own run with a checkpoint."""
    kind = config.init_kind
    if kind in ("scratch", "imagenet"):
        return
    match = RUN_INIT.fullmatch(config.init)
    if kind == "path" or match is None:
        raise InvalidInput("init", f"expected {INIT_HERE}, got '{config.init[:60]}'")
    run_id = int(match.group(1))
    run = run_rows.get_run(session, run_id=run_id, owner_id=owner_id)
    if run is None:
        raise InvalidInput("init", f"you have no run {run_id} to start from")
    if not has_checkpoint(settings, run_id):
        if run.status in LIVE_STATUSES:
            raise InvalidInput(
                "init",
                f"run {run_id} is still {run.status} and has no checkpoint yet; start from it "
                "once it has succeeded",
            )
        raise InvalidInput("init", f"run {run_id} ({run.status}) has no checkpoint to start from")


def check_on_this_machine(config: RunConfig, settings: Settings) -> None:
    """The engine's `check_config` (files, weights, checkpoints), without touching the GPU.

    `check_config` resolves the device, which initialises CUDA in the calling process; the web
    process must not hold a CUDA context, so the check runs on a CPU copy of the config and
    the CUDA questions are asked here with `torch.cuda.is_available()`, which does not
    create one.
    """
    import torch

    from app.worker.training import check_config

    cuda = torch.cuda.is_available()
    if config.device == "cuda" and not cuda:
        raise InvalidInput("device", "CUDA is not available on this machine; use auto or cpu")
    if config.precision == "fp16" and not cuda:
        raise InvalidInput("precision", "fp16 needs CUDA; on the CPU use fp32 or bf16")
    precision = "fp32" if config.precision == "fp16" else config.precision
    try:
        check_config(
            config.replace(device="cpu", precision=precision),
            data_dir=settings.data_dir,
            runs_dir=settings.runs_dir,
        )
    except OSError as error:  # the file system refused a path (too long, no permission)
        field = "folder" if config.dataset == "folder" else "dataset"
        raise InvalidInput(field, f"cannot be read on this server ({error.strerror})") from None
    except InvalidInput as error:
        raise InvalidInput(error.field, without_server_paths(error.message, settings)) from None


def without_server_paths(text: str, settings: Settings) -> str:
    """`text` with this server's folders named by their settings, not their absolute paths.

    The engine's messages name full paths (right for `cvprep train` on one's own machine);
    a web user is told "DATA_DIR/datasets", never where DATA_DIR, the runs or torch's cache
    live on the server's disk.
    """
    import torch

    roots = [
        (settings.runs_dir, "the runs folder"),
        (settings.data_dir, "DATA_DIR"),
        (Path(torch.hub.get_dir()), "torch's hub cache"),
    ]
    named: list[tuple[str, str]] = []
    for path, name in roots:
        for form in {str(path), str(path.resolve())}:
            named.append((form, name))
    for form, name in sorted(named, key=lambda item: -len(item[0])):  # the longest first
        text = text.replace(form, name)
    return text


def check_text(config: RunConfig) -> None:
    """Text fields within MAX_TEXT characters (a longer path is refused by the file system
    with an error that is not the field's)."""
    for spec in RunConfig.fields():
        value = getattr(config, spec.name)
        if spec.type in ("str", "str?") and isinstance(value, str) and len(value) > MAX_TEXT:
            raise InvalidInput(spec.name, f"at most {MAX_TEXT} characters, got {len(value)}")


def check_run_quota(session: Session, *, owner_id: int, settings: Settings) -> None:
    """InvalidInput naming RUN_QUOTA_BYTES when the owner's runs already keep that many bytes
    on disk (checkpoints, predictions, images): a new run would add more."""
    ids = [run.id for run in run_rows.runs_of(session, owner_id=owner_id, limit=10_000)]
    used = bytes_on_disk(settings, [i for i in ids if i is not None])
    if used >= settings.run_quota_bytes:
        raise InvalidInput(
            "runs",
            f"your runs keep {used:,} bytes on disk, the most allowed is "
            f"{settings.run_quota_bytes:,} (RUN_QUOTA_BYTES); delete runs you no longer need",
        )


def check_run_memory(
    config: RunConfig, session: Session, *, owner_id: int, settings: Settings
) -> None:
    """InvalidInput naming RUN_MAX_MEMORY_MB and the estimate when the run would need more
    memory than a worker may use (app.runs.memory); an uploaded data set is counted by its row."""
    folder = None
    if config.dataset == "folder" and config.folder:
        for row in dataset_rows.datasets_of(session, owner_id=owner_id):
            if row.folder == config.folder:
                folder = (row.images, len(row.classes))
    images, classes = images_and_classes(config, folder)
    check_memory(config, images, classes, settings)


def check_for_user(
    config: RunConfig, session: Session, *, owner_id: int, settings: Settings
) -> None:
    """Everything about a valid config that depends on who asks and on this server.

    Raises InvalidInput naming the field; its message names no absolute path of the server."""
    try:
        check_text(config)
        check_upload_folder(config, session, owner_id=owner_id, settings=settings)
        check_init(config, session, owner_id=owner_id, settings=settings)
        check_run_limits(config, settings)
        check_run_memory(config, session, owner_id=owner_id, settings=settings)
        check_run_quota(session, owner_id=owner_id, settings=settings)
        check_on_this_machine(config, settings)
    except InvalidInput as error:
        reason = without_paths(error.message, settings)
        if reason == error.message:
            raise
        raise InvalidInput(error.field, reason) from None
