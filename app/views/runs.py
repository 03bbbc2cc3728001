"""Pages for training runs: the New-run form, the list, one run (live, then its results).

Each works without JavaScript (forms post and redirect; a live run's page refreshes itself
through a `<noscript>` meta refresh); htmx makes the form check itself as it changes and the
run page poll a fragment once a second until the run ends.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import Engine

from app.auth import ActingUser, CsrfChecked, OptionalUser
from app.datasets import runs as dataset_runs
from app.datasets import store
from app.db import read_session
from app.deps import JobsDep, SettingsDep
from app.experiments.presets import PRESETS
from app.models import Run, User
from app.models.datasets import Dataset
from app.models.runs import QUEUED, best_val_accuracy
from app.repos import datasets as dataset_rows
from app.repos import experiments as experiment_rows
from app.repos import runs as run_rows
from app.runs import choices, dispatch, prefill, present
from app.runs.backend import BackendUnavailable
from app.runs.choices import Option
from app.runs.estimate import estimate
from app.runs.files import present_downloads
from app.runs.form import (
    config_or_errors,
    config_yaml,
    display_values,
    form_groups,
    full_yaml,
    query_values,
    read_form,
    train_command,
)
from app.runs.limits import QueueFull
from app.runs.validate import check_for_user
from app.settings import Settings
from app.web import render
from app.worker.training import ConfigError, RunConfig

router = APIRouter(prefix="/runs", tags=["runs"], include_in_schema=False)

RunId = Annotated[int, Path(ge=1, le=2**31 - 1)]


def _runs_of(engine: Engine, user: User | None) -> list[Run]:
    if user is None or user.id is None:
        return []
    with read_session(engine) as session:
        return list(run_rows.runs_of(session, owner_id=user.id))


def _run_or_404(engine: Engine, run_id: int, user: User | None) -> Run:
    run = dispatch.owned_run(engine, run_id=run_id, owner=user)
    if run is None:
        raise HTTPException(status_code=404, detail=f"No run {run_id} of yours.")
    return run


# --- the list ------------------------------------------------------------------------------


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
    request: Request, user: User | None, jobs: Any, compare_problem: str | None = None
) -> dict[str, Any]:
    """What the runs list shows; `compare_problem` explains a Compare that could not be made."""
    engine = request.app.state.engine
    runs = _runs_of(engine, user)
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


@router.get("", response_class=HTMLResponse)
def list_page(request: Request, user: OptionalUser, jobs: JobsDep) -> HTMLResponse:
    context = list_context(request, user, jobs)
    return render(request, "pages/runs.html", context, fragment="partials/_run_list.html")


# --- the form ------------------------------------------------------------------------------


def _init_options(runs: list[Run], settings: Settings, names: dict[str, str]) -> list[Option]:
    cached = choices.cached_imagenet()
    imagenet = Option("imagenet", "ImageNet weights (torchvision's, from the torch cache)")
    if cached:
        imagenet.label += f": here for {', '.join(cached)}"
    else:
        imagenet.disabled = "not in this server's torch cache"
        imagenet.name = "ImageNet weights"
    options = [Option("scratch", "Random (from scratch)"), imagenet]
    for run in runs:
        if (settings.runs_dir / str(run.id) / "checkpoint.pt").is_file():
            best = best_val_accuracy(run)
            label = f"Run {run.id}: {present.run_title(run, names)}"
            if best is not None:
                label += f", {present.pct(best)} val"
            options.append(Option(f"run:{run.id}", label))
    return options


def _options(
    runs: list[Run], datasets: list[Dataset], settings: Settings, typed: dict[str, Any]
) -> dict[str, list[Option]]:
    """Every select's choices as this server and this learner make them."""
    names = choices.upload_names(datasets)
    options = {
        "dataset": choices.dataset_options(settings, datasets, str(typed.get("dataset") or "")),
        "init": _init_options(runs, settings, names),
    }
    reasons = choices.runtime_reasons()
    for spec in RunConfig.fields():
        if spec.choices and spec.name != "dataset":
            options[spec.name] = [
                Option(str(c), str(c), reasons.get((spec.name, str(c)))) for c in spec.choices
            ]
    return options


def _form_context(
    request: Request,
    *,
    user: User | None,
    settings: Settings,
    typed: dict[str, Any],
    errors: dict[str, str],
    config: RunConfig | None,
    note: str | None = None,
    problem: str | None = None,
) -> dict[str, Any]:
    runs = _runs_of(request.app.state.engine, user)
    datasets = store.list_for(request.app.state.engine, user)
    typed = {**typed, "dataset": choices.choice_value(typed, datasets)}
    for hidden in ("folder", dataset_runs.FIELD):  # the data set choice stands for both
        if hidden in errors:
            errors.setdefault("dataset", errors.pop(hidden))
    limits = {"epochs": settings.run_max_epochs, "image_size": settings.run_max_image_size}
    return {
        "groups": form_groups(typed, errors, _options(runs, datasets, settings, typed), limits),
        "estimate": estimate(config, runs, datasets) if config else None,
        "duration": present.duration,
        "errors": errors,
        "config": config,
        "yaml": config_yaml(config) if config else None,
        "command": train_command(config) if config else None,
        "note": note,
        "problem": problem,
        "limits": settings,
    }


def _with_dataset(
    request: Request, owner_id: int, values: dict[str, Any], errors: dict[str, str]
) -> dict[str, Any]:
    """The values with the chosen uploaded data set as the folder (a message if it is not
    one of the caller's)."""
    try:
        with read_session(request.app.state.engine) as session:
            return dataset_runs.resolve(values, session, owner_id=owner_id)
    except ConfigError as error:
        errors[error.field] = error.reason
        return {k: v for k, v in values.items() if k != dataset_runs.FIELD}


def _checked(
    request: Request,
    user: User | None,
    settings: Settings,
    values: dict[str, Any],
    errors: dict[str, str],
) -> RunConfig | None:
    """The config, with every check a launch makes except the queue (errors filled in).

    A visitor who has saved nothing yet owns no runs (no user has id 0)."""
    owner_id = user.id if user is not None and user.id is not None else 0
    config = config_or_errors(_with_dataset(request, owner_id, values, errors), errors)
    if config is None:
        return None
    try:
        with read_session(request.app.state.engine) as session:
            check_for_user(config, session, owner_id=owner_id, settings=settings)
    except ConfigError as error:
        errors[error.field] = error.reason
        return None
    return config


@router.get("/new", response_class=HTMLResponse)
def new_run_page(
    request: Request,
    user: OptionalUser,
    settings: SettingsDep,
    experiment: Annotated[str | None, Query(max_length=40)] = None,
    source: Annotated[int | None, Query(alias="from", ge=1, le=2**31 - 1)] = None,
    mode: Annotated[str, Query(pattern="^(again|finetune)$")] = "again",
) -> HTMLResponse:
    """The form: defaults, a question's experiment (?experiment=), an earlier run (?from=ID
    &mode=again|finetune), field values in the query (the Preview button, a shared link)."""
    note = None
    start: dict[str, Any] = {}
    if experiment is not None:
        found = prefill.from_preset(experiment)
        if found is None:
            raise HTTPException(status_code=404, detail=f"No experiment is called '{experiment}'.")
        start, note = found
    if source is not None:
        run = _run_or_404(request.app.state.engine, source, user)
        if mode == "finetune":
            start = prefill.fine_tune_from(run)
            note = f"Fine-tuning from run {run.id}: its weights, a tenth of its learning rate."
        else:
            start = prefill.run_again(run)
            note = f"The config of run {run.id}."
    params = dict(request.query_params)
    if params.get("form") == "1":  # the form itself, sent by htmx as it changes
        return _checked_form(request, user, settings, params)
    else:
        typed = display_values({**start, **query_values(params)})
        _, values, errors = read_form(
            {k: ("true" if v is True else v) for k, v in typed.items() if v is not False}
        )
        config = _checked(request, user, settings, values, errors)
    context = _form_context(
        request, user=user, settings=settings, typed=typed, errors=errors, config=config, note=note
    )
    return render(request, "pages/run_new.html", context, fragment="partials/_run_form_check.html")


def _checked_form(
    request: Request, user: User | None, settings: Settings, form: dict[str, Any]
) -> HTMLResponse:
    typed, values, errors = read_form(form)
    config = _checked(request, user, settings, values, errors)
    context = _form_context(
        request, user=user, settings=settings, typed=typed, errors=errors, config=config
    )
    return render(request, "pages/run_new.html", context, fragment="partials/_run_form_check.html")


@router.post("/new", response_class=HTMLResponse, dependencies=[CsrfChecked])
async def check_run_form(request: Request, user: OptionalUser, settings: SettingsDep) -> Response:
    """ "Check and show the config" without JavaScript: the form posted (so the CSRF token
    never lands in an address), answered with the whole form, messages and config."""
    form = await request.form()
    fields = {k: v for k, v in form.items() if isinstance(v, str)}
    return await run_in_threadpool(_checked_form, request, user, settings, fields)


@router.post("", response_class=HTMLResponse, dependencies=[CsrfChecked])
async def create_run(
    request: Request, user: ActingUser, settings: SettingsDep, jobs: JobsDep
) -> Response:
    """Start a run from the form; back to the form with every message if it cannot start."""
    form = await request.form()
    typed, values, errors = read_form({k: v for k, v in form.items() if isinstance(v, str)})
    owner_id = user.id if user.id is not None else 0
    values = await run_in_threadpool(_with_dataset, request, owner_id, values, errors)
    config = config_or_errors(values, errors)
    problem = None
    status = 422
    if config is not None:
        try:
            run = await run_in_threadpool(
                dispatch.launch,
                config,
                owner=user,
                engine=request.app.state.engine,
                settings=settings,
                backend=jobs,
            )
        except ConfigError as error:
            errors[error.field] = error.reason
        except QueueFull as error:
            problem, status = str(error), 429
        except BackendUnavailable as error:
            problem, status = str(error), 503
        else:
            return RedirectResponse(f"/runs/{run.id}", status_code=303)
    context = await run_in_threadpool(
        lambda: _form_context(
            request,
            user=user,
            settings=settings,
            typed=typed,
            errors=errors,
            config=None,
            problem=problem,
        )
    )
    return render(
        request,
        "pages/run_new.html",
        context,
        fragment="partials/_run_form.html",
        status_code=status,
    )


# --- one run -------------------------------------------------------------------------------


def _run_context(request: Request, run: Run, settings: Settings) -> dict[str, Any]:
    """What the run page shows. While the run is live (polled every second by each viewer)
    only the progress and the curves are computed; the results once it has ended."""
    assert run.id is not None
    live = present.is_live(run)
    with read_session(request.app.state.engine) as session:
        names = choices.upload_names(list(dataset_rows.datasets_of(session, owner_id=run.owner_id)))
    context: dict[str, Any] = {
        "run": run,
        "title": present.run_title(run, names),
        "finished": len(run.history or []),
        "live": live,
        "position": None,
        "progress": present.progress(run),
        "curves": present.curves(run),
        "duration": present.duration,
        "pct": present.pct,
        "num": present.num,
    }
    if run.status == QUEUED:
        with read_session(request.app.state.engine) as session:
            context["position"] = run_rows.queue_position(session, run=run)
    if live:
        return context
    metrics = run.metrics or {}
    with read_session(request.app.state.engine) as session:
        groups = experiment_rows.experiments_of(session, owner_id=run.owner_id)
    context.update(
        experiments=[e for e in groups if run.id in e.run_ids],
        results=present.results_charts(run),
        metrics=metrics,
        wrong=present.wrong_predictions(metrics),
        info=run.info or {},
        downloads=present_downloads(settings, run.id),
        yaml=full_yaml(RunConfig.from_dict(run.config), names),
        dataset_label=(
            f"your upload '{names[run.config['folder']]}'"
            if run.config.get("folder") in names
            else None
        ),
        checkpoint=(settings.runs_dir / str(run.id) / "checkpoint.pt").is_file(),
        best=best_val_accuracy(run),
    )
    return context


@router.get("/{run_id}", response_class=HTMLResponse)
def run_page(
    request: Request, run_id: RunId, user: OptionalUser, settings: SettingsDep
) -> HTMLResponse:
    """The run; htmx polls the same URL for the status fragment while it is live."""
    run = _run_or_404(request.app.state.engine, run_id, user)
    context = _run_context(request, run, settings)
    return render(request, "pages/run.html", context, fragment="partials/_run_status.html")


@router.post("/{run_id}/cancel", dependencies=[CsrfChecked])
def cancel_run(request: Request, run_id: RunId, user: OptionalUser, jobs: JobsDep) -> Response:
    run = _run_or_404(request.app.state.engine, run_id, user)
    dispatch.cancel(run, engine=request.app.state.engine, backend=jobs)
    return RedirectResponse(f"/runs/{run_id}", status_code=303)


@router.get("/{run_id}/delete", response_class=HTMLResponse)
def confirm_delete_run(request: Request, run_id: RunId, user: OptionalUser) -> HTMLResponse:
    """Before a run is deleted: what depends on it (the experiments that used it, the runs
    that start from its weights), and a button that posts the delete."""
    run = _run_or_404(request.app.state.engine, run_id, user)
    depends: list[tuple[tuple[str, str], str | None]] = []
    with read_session(request.app.state.engine) as session:
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
    return render(request, "pages/confirm_delete.html", context)


@router.post("/{run_id}/delete", dependencies=[CsrfChecked])
def delete_run(
    request: Request, run_id: RunId, user: OptionalUser, settings: SettingsDep
) -> Response:
    run = _run_or_404(request.app.state.engine, run_id, user)
    if not dispatch.delete(run, engine=request.app.state.engine, settings=settings):
        raise HTTPException(
            status_code=409, detail=f"Run {run_id} is {run.status}: cancel it before deleting it."
        )
    return RedirectResponse("/runs", status_code=303)


@router.get("/{run_id}/confusion", response_class=HTMLResponse)
def confusion_cell(
    request: Request,
    run_id: RunId,
    user: OptionalUser,
    true: Annotated[int, Query(ge=0, le=999)],
    predicted: Annotated[int, Query(ge=0, le=999)],
) -> HTMLResponse:
    """The validation images behind one cell of the confusion matrix, as far as they were kept."""
    run = _run_or_404(request.app.state.engine, run_id, user)
    metrics = run.metrics or {}
    classes = metrics.get("classes") or []
    matrix = metrics.get("confusion_matrix") or []
    if true >= len(classes) or predicted >= len(classes):
        raise HTTPException(
            status_code=422, detail=f"true, predicted: class indices from 0 to {len(classes) - 1}"
        )
    kept = present.misclassified_for(metrics, classes[true], classes[predicted])
    context = {
        "run": run,
        "true_class": classes[true],
        "predicted_class": classes[predicted],
        "count": matrix[true][predicted] if matrix else 0,
        "kept": kept,
        "all_kept": len(metrics.get("misclassified") or []),
        "limit": run.config.get("max_misclassified"),
        "pct": present.pct,
    }
    return render(request, "pages/run_cell.html", context, fragment="partials/_run_cell.html")
