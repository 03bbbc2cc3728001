"""A run's folder, `DATA_DIR/runs/<id>/`, and the files in it a user may download.

The engine writes them (app.worker.training.outputs): config.yaml, metrics.json,
predictions.npz, checkpoint.pt and misclassified/<n>.png. Nothing else in the folder is
served, and a name is matched against this list, never joined to a path as given.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from app.settings import Settings
from app.worker.training import checkpoint, outputs

MISCLASSIFIED_NAME = re.compile(rf"{outputs.MISCLASSIFIED}/(0|[1-9][0-9]{{0,3}})\.png")


@dataclass(frozen=True)
class RunFile:
    name: str  # as in the URL: /api/runs/{id}/files/{name}
    label: str  # what a person is offered
    media_type: str


DOWNLOADS = (
    RunFile(
        checkpoint.FILENAME,
        "Checkpoint (torch.load, weights_only=True)",
        "application/octet-stream",
    ),
    RunFile(outputs.METRICS, "Every metric, per epoch and final (JSON)", "application/json"),
    RunFile(
        outputs.PREDICTIONS,
        "Validation predictions: y_true, y_prob, classes (NumPy)",
        "application/octet-stream",
    ),
    RunFile(outputs.CONFIG, "The complete config (cvprep train config.yaml)", "application/yaml"),
)
_BY_NAME = {f.name: f for f in DOWNLOADS}


def run_dir(settings: Settings, run_id: int) -> Path:
    """DATA_DIR/runs/<id>: where the engine writes this run's outputs."""
    return outputs.run_folder(settings.runs_dir, run_id)


def has_checkpoint(settings: Settings, run_id: int) -> bool:
    """Whether the run's folder holds its checkpoint (what init "run:<id>" starts from)."""
    return (run_dir(settings, run_id) / checkpoint.FILENAME).is_file()


def downloadable(settings: Settings, run_id: int, name: str) -> tuple[Path, str] | None:
    """(path, media type) of a file of the run that may be served, if `name` is one and exists."""
    if name in _BY_NAME:
        media_type = _BY_NAME[name].media_type
    elif MISCLASSIFIED_NAME.fullmatch(name):
        media_type = "image/png"
    else:
        return None
    path = run_dir(settings, run_id) / name
    return (path, media_type) if path.is_file() else None


def present_downloads(settings: Settings, run_id: int) -> list[RunFile]:
    """The listed downloads that exist for this run, with their sizes known to exist."""
    folder = run_dir(settings, run_id)
    return [f for f in DOWNLOADS if (folder / f.name).is_file()]


def remove_run_files(settings: Settings, run_id: int) -> None:
    """Delete the run's folder and everything in it (nothing if it is absent)."""
    shutil.rmtree(run_dir(settings, run_id), ignore_errors=True)


def bytes_on_disk(settings: Settings, run_ids: Iterable[int]) -> int:
    """Bytes of every file in these runs' folders (what RUN_QUOTA_BYTES counts)."""
    total = 0
    for run_id in run_ids:
        for root, _dirs, files in os.walk(run_dir(settings, run_id)):
            for name in files:
                with contextlib.suppress(OSError):
                    total += os.lstat(os.path.join(root, name)).st_size
    return total
