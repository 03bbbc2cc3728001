"""What the run pages show beyond one run: the list's labels, the form's choices, what a
delete would touch. Kept apart from the routes in app.views.runs."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from sqlalchemy import Engine

from app.datasets import store
from app.db import read_session
from app.experiments.presets import PRESETS
from app.models import Run, User
from app.models.datasets import Dataset
from app.models.runs import best_val_accuracy
from app.repos import experiments as experiment_rows
from app.repos import runs as run_rows
from app.runs import choices, present
from app.runs.choices import Option
from app.runs.files import has_checkpoint
from app.settings import Settings
from app.worker.training import RunConfig


def runs_of(engine: Engine, user: User | None) -> list[Run]:
    """The user's runs, newest first (none for a visitor)."""
    if user is None or user.id is None:
        return []
    with read_session(engine) as session:
        return list(run_rows.runs_of(session, owner_id=user.id))


def experiment_labels(engine: Engine, owner_id: int) -> dict[int, tuple[int, str]]:
    """run id → (experiment id, "Experiment 12: max pool, seed 1") for the owner's runs that
    an experiment launched."""
    labels: dict[int, tuple[int, str]] = {}
    with read_session(engine) as session:
        rows = experiment_rows.experiments_of(session, owner_id=owner_id)
    for row in reversed(rows):  # oldest first: a run keeps the label of its first experiment
        preset = PRESETS.get(row.preset)
        arms = {arm.key: arm.label for arm in preset.arms} if preset else {}
        cells = row.cells if len(row.cells) == len(row.run_ids) else []
        for index, run_id in enumerate(row.run_ids):
            if run_id in labels:
                continue
            text = f"Experiment {row.id}"
            if cells:
                arm, seed = cells[index]
                text += f": {arms.get(arm, arm)}" + (f", seed {seed}" if seed is not None else "")
            labels[run_id] = (row.id or 0, text)
    return labels


def list_context(
    request: Request,
    engine: Engine,
    user: User | None,
    jobs: Any,
    compare_problem: str | None = None,
) -> dict[str, Any]:
    """What the runs list shows; `compare_problem` explains a Compare that could not be made."""
    runs = runs_of(engine, user)
    uploaded = store.list_for(engine, user)
    return {
        "runs": runs,
        "dataset_links": {d.folder: (d.id, d.name) for d in uploaded},
        "experiment_labels": experiment_labels(engine, user.id) if user and user.id else {},
        "best": {run.id: best_val_accuracy(run) for run in runs},
        "any_live": any(run.live for run in runs),
        "health": jobs.health(),
        "duration": present.duration,
        "pct": present.pct,
        "compare_problem": compare_problem,
        "ticked": set(),
    }


def init_options(runs: list[Run], settings: Settings, names: dict[str, str]) -> list[Option]:
    cached = choices.cached_imagenet()
    imagenet = Option("imagenet", "ImageNet weights (torchvision's, from the torch cache)")
    if cached:
        imagenet.label += f": here for {', '.join(cached)}"
    else:
        imagenet.disabled = "not in this server's torch cache"
        imagenet.name = "ImageNet weights"
    options = [Option("scratch", "Random (from scratch)"), imagenet]
    for run in runs:
        if run.id is not None and has_checkpoint(settings, run.id):
            best = best_val_accuracy(run)
            label = f"Run {run.id}: {present.run_title(run, names)}"
            if best is not None:
                label += f", {present.pct(best)} val"
            options.append(Option(f"run:{run.id}", label))
    return options


def form_options(
    runs: list[Run], datasets: list[Dataset], settings: Settings, typed: dict[str, Any]
) -> dict[str, list[Option]]:
    """Every select's choices as this server and this learner make them."""
    names = choices.upload_names(datasets)
    options = {
        "dataset": choices.dataset_options(settings, datasets, str(typed.get("dataset") or "")),
        "init": init_options(runs, settings, names),
    }
    reasons = choices.runtime_reasons()
    for spec in RunConfig.fields():
        if spec.choices and spec.name != "dataset":
            options[spec.name] = [
                Option(str(c), str(c), reasons.get((spec.name, str(c)))) for c in spec.choices
            ]
    return options


def delete_context(engine: Engine, run: Run) -> dict[str, Any]:
    """The confirmation before a run is deleted: what depends on it (the experiments that used
    it, the runs that start from its weights), or why it cannot be deleted now."""
    run_id = run.id
    depends: list[tuple[tuple[str, str], str | None]] = []
    with read_session(engine) as session:
        for row in experiment_rows.experiments_of(session, owner_id=run.owner_id):
            if run_id in row.run_ids:
                depends.append(
                    (
                        (
                            f"Experiment {row.id}",
                            f" ({row.preset}) loses this run: it can no longer be read, and its "
                            "question page shows your latest experiment whose runs are all kept",
                        ),
                        f"/experiments/{row.id}",
                    )
                )
        for other in run_rows.runs_of(session, owner_id=run.owner_id):
            if other.config.get("init") == f"run:{run_id}":
                depends.append(
                    (
                        (f"Run {other.id}", " started from its weights: it keeps its own results"),
                        f"/runs/{other.id}",
                    )
                )
    blocked = None
    if run.live:
        blocked = f"Run {run_id} is {run.status}: cancel it before deleting it."
    context = {
        "crumbs": [("Runs", "/runs"), (f"Run {run_id}", f"/runs/{run_id}")],
        "heading": f"Delete run {run_id}?",
        "intro": (
            f"Run {run_id} ({run.config.get('model')}, {run.status}) and its files (metrics, "
            "checkpoint, predictions, images) are deleted for good."
        ),
        "depends": depends,
        "blocked": blocked,
        "blocked_href": f"/runs/{run_id}" if blocked else None,
        "action": f"/runs/{run_id}/delete",
        "keep_href": f"/runs/{run_id}",
    }
    return context
