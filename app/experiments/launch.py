"""Launch a preset as a group of queued runs, and describe an experiment for the API and pages.

A launch is all or nothing: every run's config is checked as a single run would be (the
engine's checks, the user's `init`, the per-run limits, this machine), the user may have at
most EXPERIMENT_MAX_LIVE experiments with runs still queued or running (an experiment counts
as one, whatever the number of runs it queues, so every preset can launch on a fresh install),
and the runs and the experiment row are written in one transaction. Runs that start from the
experiment's own pretraining run (`init` "run:{pretrain}") are checked with `init` scratch, as
their starting checkpoint does not exist yet; they wait for it to succeed
(app.repos.runs.claim_next) and fail with the reason if it does not.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import Engine

from app.db import read_session, write_session
from app.experiments import evidence as charts_of
from app.experiments.presets import PRESETS, PRETRAIN, Cell, Preset
from app.experiments.rules import Evidence
from app.experiments.verdict import INCONCLUSIVE, PENDING, Verdict, mean_spread
from app.models import Experiment, Run, User
from app.models.common import utcnow
from app.models.runs import LIVE_STATUSES, QUEUED, RUNNING, SUCCEEDED
from app.repos import experiments as experiment_rows
from app.repos import runs as run_rows
from app.repos.locks import lock_guests, lock_owner
from app.runs.backend import BackendUnavailable, JobBackend
from app.runs.limits import check_experiments_live, check_guest_experiments
from app.runs.validate import check_for_user
from app.settings import Settings
from app.worker.errors import InvalidInput
from app.worker.training import RunConfig
from app.worker.training.outputs import PREDICTIONS, run_folder

# RunConfig accepts "run:<id>" only with a valid id: until the rows are written the preset's
# "run:{pretrain}" stands as run 0, which no run has (ids start at 1).
PLACEHOLDER = "run:0"


def launch_experiment(
    preset: Preset,
    *,
    owner: User,
    engine: Engine,
    settings: Settings,
    backend: JobBackend,
    size: str = "default",
) -> Experiment:
    """Queue the preset's runs at `size` for `owner`, record the experiment, hand the runs over.

    Raises InvalidInput naming the field ("size" for an unknown size, "preset" for
    EXPERIMENT_MAX_LIVE); nothing is written then. Raises BackendUnavailable when the job queue
    cannot take the runs: every run made here that is still queued is then marked failed with
    that message. Blocking: call it from a worker thread.
    """
    assert owner.id is not None
    if size not in preset.sizes:
        raise InvalidInput("size", "expected one of " + ", ".join(s for s in preset.sizes))
    with read_session(engine) as session:
        earlier = experiment_rows.count_of(session, owner_id=owner.id, preset=preset.name)
    cells = preset.plan(size, first_seed=earlier * preset.sizes[size].seeds)
    configs = [_checked(preset.config(cell, size)) for cell in cells]
    with read_session(engine) as session:
        for values in configs:
            checked = RunConfig.from_dict(values)
            if checked.init == PLACEHOLDER:
                checked = checked.replace(init="scratch")
            check_for_user(checked, session, owner_id=owner.id, settings=settings)
    with write_session(engine) as session:
        lock_owner(session, owner.id)
        live = experiment_rows.live_count(session, owner_id=owner.id, live_statuses=LIVE_STATUSES)
        check_experiments_live(live, settings)
        if owner.is_guest:
            lock_guests(session)
            guests = experiment_rows.live_count(session, owner_id=None, live_statuses=LIVE_STATUSES)
            check_guest_experiments(guests, settings)
        now = utcnow()
        ids: list[int] = []
        pretrain_id: int | None = None
        for cell, values in zip(cells, configs, strict=True):
            if values["init"] == PLACEHOLDER:
                assert pretrain_id is not None, "a `once` arm comes first in the plan"
                values = {**values, "init": f"run:{pretrain_id}"}
            made = run_rows.create_run(session, owner_id=owner.id, config=values, now=now)
            assert made.id is not None
            if preset.arm(cell.arm).once:
                pretrain_id = made.id
            ids.append(made.id)
        experiment = experiment_rows.create_experiment(
            session,
            owner_id=owner.id,
            preset=preset.name,
            run_ids=ids,
            cells=[[cell.arm, cell.seed] for cell in cells],
            size=size,
            now=now,
        )
        session.commit()
        session.refresh(experiment)
    try:
        for run_id in ids:
            backend.submit(run_id)
    except BackendUnavailable as error:
        with write_session(engine) as session:
            for run_id in ids:
                run_rows.fail_queued(session, run_id=run_id, reason=str(error), now=utcnow())
        raise
    return experiment


def _checked(values: dict[str, Any]) -> dict[str, Any]:
    """The config validated and complete, with the PRETRAIN placeholder kept as run 0."""
    if values.get("init") == PRETRAIN:
        values = {**values, "init": PLACEHOLDER}
    return RunConfig.from_dict(values).to_dict()


# ---------------------------------------------------------------- reading an experiment


def experiment_status(runs: list[Run], expected: int) -> str:
    """running (one is training), queued (others wait to start), succeeded (all), or failed
    (some ended otherwise, or were deleted)."""
    if any(run.status == RUNNING for run in runs):
        return "running"
    if any(run.status == QUEUED for run in runs):
        return "queued"
    if len(runs) == expected and all(run.status == SUCCEEDED for run in runs):
        return "succeeded"
    return "failed"


@functools.lru_cache(maxsize=512)
def _read_predictions(path: str, mtime_ns: int) -> tuple[np.ndarray, np.ndarray] | None:
    try:
        with np.load(path, allow_pickle=False) as saved:
            return saved["y_true"].astype(np.int64), saved["y_prob"].argmax(axis=1)
    except (OSError, KeyError, ValueError):
        return None


def predictions_in(runs_dir: Path) -> Any:
    """A reader of runs' last validation predictions: run id → (y_true, y_pred) or None."""

    def read(run_id: int) -> tuple[np.ndarray, np.ndarray] | None:
        path = run_folder(runs_dir, run_id) / PREDICTIONS
        try:
            mtime = path.stat().st_mtime_ns
        except OSError:
            return None
        return _read_predictions(str(path), mtime)

    return read


def not_ready(experiment: Experiment, preset: Preset, by_id: dict[int, Run]) -> str | None:
    """Why there is no verdict yet (runs deleted, failed or still live), or None."""
    if len(experiment.cells) != len(experiment.run_ids):
        return (
            "This experiment was made by an earlier design of the preset (one run per arm, "
            "one seed): run it again for a verdict."
        )
    gone = [i for i in experiment.run_ids if i not in by_id]
    if gone:
        n = len(experiment.run_ids)
        return (
            f"{len(gone)} of its {n} runs {'was' if len(gone) == 1 else 'were'} deleted: no "
            "verdict."
        )
    labels = {arm.key: arm.label for arm in preset.arms}
    for run_id, (arm, seed) in zip(experiment.run_ids, experiment.cells, strict=True):
        run = by_id[run_id]
        if run.status in ("failed", "cancelled", "interrupted"):
            why = f": {run.error}" if run.error else ""
            where = f", seed {seed}" if seed is not None else ""
            return (
                f"The run '{labels.get(arm, arm)}{where}' (run {run_id}) ended {run.status}{why}."
            )
    done = sum(by_id[i].status == SUCCEEDED for i in experiment.run_ids)
    if done < len(experiment.run_ids):
        return f"Waiting for the runs: {done} of {len(experiment.run_ids)} finished."
    return None


def verdict_of(
    experiment: Experiment, preset: Preset, runs: list[Run], runs_dir: Path
) -> tuple[Verdict, Evidence | None]:
    """The verdict (PENDING while runs are live; INCONCLUSIVE when one failed or is gone)."""
    by_id = {run.id: run for run in runs if run.id is not None}
    waiting = not_ready(experiment, preset, by_id)
    if waiting is not None:
        live = any(run.status in LIVE_STATUSES for run in runs)
        return Verdict(PENDING if live else INCONCLUSIVE, waiting), None
    cells = [Cell(arm, seed) for arm, seed in experiment.cells]
    # Seeds by their order: the rules pair the arms through ordinals 0, 1, 2, ...
    ordinal = {s: i for i, s in enumerate(sorted({c.seed for c in cells if c.seed is not None}))}
    evidence = Evidence(
        labels={arm.key: arm.label for arm in preset.arms_at(experiment.size)},
        seeds=len(ordinal),
        runs={
            (c.arm, None if c.seed is None else ordinal[c.seed]): by_id[i]
            for c, i in zip(cells, experiment.run_ids, strict=True)
        },
        predictions=predictions_in(runs_dir),
    )
    try:
        return preset.rule(evidence), evidence
    except (KeyError, ValueError, ZeroDivisionError) as error:  # a run without a figure
        return Verdict(INCONCLUSIVE, f"A figure the verdict needs is missing: {error}."), None


def describe(
    experiment: Experiment,
    preset: Preset,
    runs: list[Run],
    runs_dir: Path,
    *,
    with_charts: bool = False,
) -> dict[str, Any]:
    """The experiment as the API returns it; the page adds `charts` (Chart objects)."""
    by_id = {run.id: run for run in runs}
    labels = {arm.key: arm.label for arm in preset.arms}
    verdict, evidence = verdict_of(experiment, preset, runs, runs_dir)
    cells = experiment.cells if len(experiment.cells) == len(experiment.run_ids) else []
    entries = []
    for index, run_id in enumerate(experiment.run_ids):
        run = by_id.get(run_id)
        arm, seed = cells[index] if cells else (None, None)
        entries.append(
            {
                "id": run_id,
                "arm": arm,
                "seed": seed,
                "label": _label(labels.get(arm, arm) if arm else f"run {run_id}", seed),
                "status": run.status if run is not None else "deleted",
                "val_accuracy": (run.metrics or {}).get("val_accuracy") if run else None,
                "error": run.error if run is not None else None,
                **_progress(run),
            }
        )
    seconds = [run.seconds for run in runs if run.seconds is not None]
    return {
        "id": experiment.id,
        "preset": preset.name,
        "title": preset.title,
        "question": preset.question,
        "claim": preset.claim,
        "design": preset.design,
        "notice": preset.notice,
        "size": experiment.size,
        "seeds": preset.sizes[experiment.size].seeds if experiment.size in preset.sizes else 1,
        "seed_values": sorted({seed for _, seed in cells if seed is not None}),
        "status": experiment_status(runs, len(experiment.run_ids)),
        "runs": entries,
        "arms": _arms(preset, experiment, by_id) if cells else [],
        "finding": verdict.to_dict(),
        "training_seconds": sum(seconds) if seconds else None,
        "charts": charts_of.charts(preset, evidence) if with_charts and evidence else [],
        "created": experiment.created_at,
    }


def _label(arm_label: str, seed: int | None) -> str:
    return arm_label if seed is None else f"{arm_label}, seed {seed}"


def _arms(preset: Preset, experiment: Experiment, by_id: dict[int | None, Run]) -> list[dict]:
    """Per arm: its label, each seed's validation accuracy and their mean and spread."""
    values: dict[str, list[float | None]] = {}
    for run_id, (arm, _seed) in zip(experiment.run_ids, experiment.cells, strict=True):
        run = by_id.get(run_id)
        value = (run.metrics or {}).get("val_accuracy") if run is not None else None
        values.setdefault(arm, []).append(float(value) if isinstance(value, int | float) else None)
    out = []
    for arm in preset.arms_at(experiment.size) if experiment.size in preset.sizes else []:
        seen = values.get(arm.key, [])
        numbers = [v for v in seen if v is not None]
        mean, spread = mean_spread(numbers) if numbers else (None, None)
        out.append(
            {
                "key": arm.key,
                "label": arm.label,
                "once": arm.once,
                "val_accuracy": seen,
                "mean": mean,
                "spread": None if spread is None or spread != spread else spread,
                # A pretraining run scores other classes: its figure compares with nothing.
                "comparable": not arm.once,
            }
        )
    return out


def _progress(run: Run | None) -> dict[str, Any]:
    """A running run's epoch (from 1; 0 before the first), of how many, and the seconds left
    at the current rate (None until the engine has an estimate); None for the others."""
    if run is None or run.status != RUNNING:
        return {"epoch": None, "epochs": None, "eta_s": None}
    return {"epoch": run.epoch, "epochs": run.epochs or None, "eta_s": run.eta_s}


def preset_named(name: object) -> Preset | None:
    """The preset called `name`, or None for anything else."""
    return PRESETS.get(name) if isinstance(name, str) else None
