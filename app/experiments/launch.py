"""Launch a preset as a group of queued runs, and describe an experiment for the API and pages.

A launch is all or nothing: every run's config is checked as a single run would be (the
engine's checks, the user's `init`, the per-run limits, this machine), the whole group must fit
under RUN_MAX_QUEUED, and the runs and the experiment row are written in one transaction.
Runs that start from the group's own pretraining run (`init` "run:{pretrain}") are checked
with `init` scratch, as their starting checkpoint does not exist yet; they wait for it to
succeed (app.repos.runs.claim_next) and fail with the reason if it does not.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from app.db import read_session, write_session
from app.experiments.presets import Preset
from app.models import Experiment, Run, User
from app.models.common import utcnow
from app.models.runs import QUEUED, RUNNING, SUCCEEDED
from app.repos import experiments as experiment_rows
from app.repos import runs as run_rows
from app.runs.backend import BackendUnavailable, JobBackend
from app.runs.dispatch import _lock_owner
from app.runs.validate import check_for_user
from app.settings import Settings
from app.worker.training import ConfigError, RunConfig

PRETRAIN = "run:{pretrain}"  # in a preset's config: start from the group's pretraining run
# A pretraining run is reused when these fields match the preset's (the weights fit then).
REUSE_KEYS = (
    "dataset",
    "model",
    "width",
    "depth",
    "batch_norm",
    "residual",
    "downsample",
    "image_size",
    "first_class",
    "num_classes",
)


DEFAULTS = RunConfig().to_dict()


def reusable_pretrain(
    session: Session, *, owner_id: int, wanted: dict[str, Any], runs_dir: Path
) -> int | None:
    """The owner's newest succeeded run matching `wanted` on REUSE_KEYS with a checkpoint."""
    rows = session.exec(
        select(Run)
        .where(col(Run.owner_id) == owner_id, col(Run.status) == SUCCEEDED)
        .order_by(col(Run.id).desc())
        .limit(200)
    ).all()
    for row in rows:
        # A run stored before a field existed has that field's default.
        if all(row.config.get(key, DEFAULTS[key]) == wanted.get(key) for key in REUSE_KEYS):
            assert row.id is not None
            if (runs_dir / str(row.id) / "checkpoint.pt").is_file():
                return row.id
    return None


def launch_experiment(
    preset: Preset,
    *,
    owner: User,
    engine: Engine,
    settings: Settings,
    backend: JobBackend,
    quick: bool = False,
) -> Experiment:
    """Queue the preset's runs for `owner` and record the experiment; hand the runs over.

    `quick` shrinks every run to test size (tests only). Raises ConfigError naming the field
    (with "preset" for the queue limit RUN_MAX_QUEUED); nothing is written then. Raises
    BackendUnavailable when the job queue cannot take the runs: every run made here that is
    still queued is then marked failed with that message. Blocking: call it from a worker
    thread.
    """
    assert owner.id is not None
    configs = [RunConfig.from_dict(c).to_dict() for c in _fill(preset.configs(quick=quick))]
    wanted = preset.pretrain_config(quick=quick)
    pretrain_id: int | None = None
    with read_session(engine) as session:
        if wanted is not None:
            wanted = RunConfig.from_dict(wanted).to_dict()
            pretrain_id = reusable_pretrain(
                session, owner_id=owner.id, wanted=wanted, runs_dir=settings.runs_dir
            )
        for values in ([wanted] if wanted is not None and pretrain_id is None else []) + configs:
            checked = RunConfig.from_dict(values)
            if checked.init == PLACEHOLDER:
                checked = checked.replace(init="scratch")
            check_for_user(checked, session, owner_id=owner.id, settings=settings)
    new_runs = len(configs) + (1 if wanted is not None and pretrain_id is None else 0)
    with write_session(engine) as session:
        _lock_owner(session, owner.id)
        live = run_rows.count_live(session, owner_id=owner.id)
        if live + new_runs > settings.run_max_queued:
            raise ConfigError(
                "preset",
                f"'{preset.name}' queues {new_runs} runs; you have {live} queued or running and "
                f"at most {settings.run_max_queued} may be at once (RUN_MAX_QUEUED): wait for "
                "some to end or cancel them",
            )
        now = utcnow()
        ids: list[int] = []
        queued: list[int] = []  # the runs made now (a reused pretraining run has ended)
        if wanted is not None:
            if pretrain_id is None:
                made = run_rows.create_run(session, owner_id=owner.id, config=wanted, now=now)
                assert made.id is not None
                pretrain_id = made.id
                queued.append(made.id)
            ids.append(pretrain_id)
        for values in configs:
            if values["init"] == PLACEHOLDER:
                values = {**values, "init": f"run:{pretrain_id}"}
            made = run_rows.create_run(session, owner_id=owner.id, config=values, now=now)
            assert made.id is not None
            ids.append(made.id)
            queued.append(made.id)
        experiment = experiment_rows.create_experiment(
            session, owner_id=owner.id, preset=preset.name, run_ids=ids, now=now
        )
        session.commit()
        session.refresh(experiment)
    try:
        for run_id in queued:
            backend.submit(run_id)
    except BackendUnavailable as error:
        with write_session(engine) as session:
            for run_id in queued:
                run_rows.fail_queued(session, run_id=run_id, reason=str(error), now=utcnow())
        raise
    return experiment


# RunConfig accepts "run:<id>" only with a valid id: until the rows are written the preset's
# "run:{pretrain}" stands as run 0, which no run has (ids start at 1).
PLACEHOLDER = "run:0"


def _fill(configs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**c, "init": PLACEHOLDER} if c.get("init") == PRETRAIN else c for c in configs]


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


def describe(experiment: Experiment, preset: Preset, runs: list[Run]) -> dict[str, Any]:
    """The experiment as the API returns it (the page shows the same)."""
    labels = preset.labels()
    by_id = {run.id: run for run in runs}
    shown, summary = preset.finding(runs)
    return {
        "id": experiment.id,
        "preset": preset.name,
        "title": preset.title,
        "question": preset.question,
        "claim": preset.claim,
        "notice": preset.notice,
        "status": experiment_status(runs, len(experiment.run_ids)),
        "runs": [
            {
                "id": run_id,
                "label": label,
                "status": by_id[run_id].status if run_id in by_id else "deleted",
                "val_accuracy": (by_id[run_id].metrics or {}).get("val_accuracy")
                if run_id in by_id
                else None,
                "error": by_id[run_id].error if run_id in by_id else None,
                **_progress(by_id.get(run_id)),
            }
            for run_id, label in zip(experiment.run_ids, labels, strict=False)
        ],
        "finding": {"shown": shown, "summary": summary},
        "created": experiment.created_at,
    }


def _progress(run: Run | None) -> dict[str, Any]:
    """A running run's epoch (from 1; 0 before the first), of how many, and the seconds left
    at the current rate (None until the engine has an estimate); None for the others."""
    if run is None or run.status != RUNNING:
        return {"epoch": None, "epochs": None, "eta_s": None}
    return {"epoch": run.epoch, "epochs": run.epochs or None, "eta_s": run.eta_s}
