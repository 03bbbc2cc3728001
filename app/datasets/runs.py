"""Training on an uploaded data set: `dataset_id` in a request becomes the engine's `folder`.

The engine (and `cvprep train`) knows folders under DATA_DIR/datasets only; the web maps
`{"dataset": "folder", "dataset_id": ID}` to `{"dataset": "folder", "folder": <its folder>}`
for the caller's own data set. A folder under `uploads/` given directly (a run started again
from an earlier config) must likewise be one of the caller's data sets: another user's
uploads are never reachable by typing their path.
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from app.models.datasets import Dataset
from app.repos import datasets as rows
from app.settings import Settings
from app.worker.errors import InvalidInput
from app.worker.training import FieldSpec, RunConfig

FIELD = "dataset_id"
# How the New-run form shows the choice (beside the engine's own fields, in the data group).
SPEC = FieldSpec(
    name=FIELD,
    type="str?",
    default=None,
    help="one of your uploaded data sets (with dataset folder): trains on its folder",
    group="data",
)


def _as_id(value: Any, strict: bool) -> int:
    if isinstance(value, bool) or (strict and not isinstance(value, int)):
        raise InvalidInput(FIELD, "expected the id of one of your data sets (an integer)")
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        value = int(value.strip())
    if not isinstance(value, int) or not 1 <= value <= 2**31 - 1:
        raise InvalidInput(FIELD, "expected the id of one of your data sets (an integer)")
    return value


def resolve(
    values: dict[str, Any], session: Session, *, owner_id: int, strict: bool = False
) -> dict[str, Any]:
    """`values` without `dataset_id`; with it, `dataset` "folder" and `folder` its folder.

    An empty `dataset_id` (the form's "none") is dropped; digits as text are read as the id
    unless `strict` (JSON, where the schema says integer). Raises InvalidInput naming
    `dataset_id` for another user's or a missing data set, a non-integer, another `dataset`, or
    a different `folder` given with it.
    """
    values = dict(values)
    raw = values.pop(FIELD, None)
    if raw is None or (not strict and isinstance(raw, str) and not raw.strip()):
        return values
    dataset_id = _as_id(raw, strict)
    row = rows.get_dataset(session, dataset_id=dataset_id, owner_id=owner_id)
    if row is None:
        raise InvalidInput(FIELD, f"you have no data set {dataset_id}")
    dataset = values.get("dataset") or "folder"
    if dataset != "folder":
        raise InvalidInput(FIELD, f"only used with dataset 'folder', not '{str(dataset)[:40]}'")
    folder = values.get("folder")
    if folder not in (None, "", row.folder):
        raise InvalidInput(FIELD, "choose one of your data sets or type a folder, not both")
    values.update(dataset="folder", folder=row.folder)
    return values


def check_upload_folder(
    config: RunConfig, session: Session, *, owner_id: int, settings: Settings
) -> None:
    """Refuse a `folder` inside DATA_DIR/datasets/uploads that is not one of the caller's, and
    one that holds uploads/ (DATA_DIR/datasets itself would make every upload one class)."""
    if config.dataset != "folder" or not config.folder:
        return
    uploads = settings.uploads_dir.resolve()
    try:
        path = (settings.data_dir / "datasets" / config.folder).resolve()
    except (OSError, ValueError):
        return  # the engine's own check names the folder
    if uploads.is_relative_to(path) and path != uploads:
        raise InvalidInput(
            "folder",
            "holds everyone's uploaded data sets; choose a folder beside uploads/, or one of "
            "yours by dataset_id",
        )
    if path != uploads and not path.is_relative_to(uploads):
        return
    mine = {
        (settings.data_dir / "datasets" / row.folder).resolve(): row.folder
        for row in rows.datasets_of(session, owner_id=owner_id)
    }
    shown = config.folder if len(config.folder) <= 60 else config.folder[:57] + "..."
    if path not in mine:
        raise InvalidInput(
            "folder",
            f"uploaded data sets are chosen by dataset_id, and only your own: none of yours "
            f"is in '{shown}' (it was deleted, or is not yours)",
        )
    if config.folder != mine[path]:
        # One spelling per data set (no `/.`, `//` or `..`), so a run's folder always says
        # which data set it trains on and that one cannot be deleted under it.
        raise InvalidInput(
            "folder",
            f"write '{mine[path]}' rather than '{shown}', or choose the data set by dataset_id",
        )


def options(datasets: list[Dataset]) -> list[tuple[str, str]]:
    """The form's choices: none, then each data set as "name · classes · images"."""
    choices = [("", "none (a built-in data set, or a folder on the server)")]
    for row in datasets:
        choices.append(
            (
                str(row.id),
                f"{row.name} · {len(row.classes)} classes · {row.images} images",
            )
        )
    return choices
