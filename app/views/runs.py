"""Pages for training runs: the New-run form, the list, one run (live, then its results).

Each works without JavaScript (forms post and redirect; a live run's page refreshes itself
through a `<noscript>` meta refresh); htmx makes the form check itself as it changes and the
run page poll a fragment once a second until the run ends.
"""

from __future__ import annotations

import functools
import math
from typing import Annotated, Any

import anyio
import anyio.to_thread
from fastapi import APIRouter, HTTPException, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from markupsafe import Markup
from sqlalchemy import Engine

from app.auth import ActingUser, OptionalUser, signed_in_name
from app.csrf import CsrfChecked, csrf_token
from app.datasets import runs as dataset_runs
from app.datasets import store
from app.db import EngineDep, read_session
from app.deps import JobsDep, SettingsDep
from app.models import Run, User
from app.models.runs import QUEUED, best_val_accuracy
from app.repos import datasets as dataset_rows
from app.repos import experiments as experiment_rows
from app.repos import runs as run_rows
from app.runs import choices, confusions, dispatch, page_cache, prefill, present
from app.runs.backend import BackendUnavailable
from app.runs.estimate import estimate
from app.runs.files import has_checkpoint, present_downloads
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
from app.views.runs_context import delete_context, form_options, list_context, runs_of
from app.web import is_fragment_request, render, templates
from app.worker.errors import InvalidInput
from app.worker.training import RunConfig

router = APIRouter(prefix="/runs", tags=["runs"], include_in_schema=False)

RunId = Annotated[int, Path(ge=1, le=2**31 - 1)]


def _run_or_404(engine: Engine, run_id: int, user: User | None) -> Run:
    run = dispatch.owned_run(engine, run_id=run_id, owner=user)
    if run is None:
        raise HTTPException(status_code=404, detail=f"No run {run_id} of yours.")
    return run


# --- the list ------------------------------------------------------------------------------


@router.get("", response_class=HTMLResponse)
def list_page(
    request: Request, engine: EngineDep, user: OptionalUser, jobs: JobsDep
) -> HTMLResponse:
    context = list_context(request, engine, user, jobs)
    return render(request, "pages/runs.html", context, fragment="partials/_run_list.html")


# --- the form ------------------------------------------------------------------------------


def _form_context(
    request: Request,
    engine: Engine,
    *,
    user: User | None,
    settings: Settings,
    typed: dict[str, Any],
    errors: dict[str, str],
    config: RunConfig | None,
    note: str | None = None,
    problem: str | None = None,
) -> dict[str, Any]:
    runs = runs_of(engine, user)
    datasets = store.list_for(engine, user)
    typed = {**typed, "dataset": choices.choice_value(typed, datasets)}
    names = {d.folder: d.name for d in datasets}
    for hidden in ("folder", dataset_runs.FIELD):  # the data set choice stands for both
        if hidden in errors:
            errors.setdefault("dataset", errors.pop(hidden))
    limits = {"epochs": settings.run_max_epochs, "image_size": settings.run_max_image_size}
    return {
        "groups": form_groups(typed, errors, form_options(runs, datasets, settings, typed), limits),
        "estimate": estimate(config, runs, datasets) if config else None,
        "duration": present.duration,
        "errors": errors,
        "config": config,
        "yaml": config_yaml(config, names) if config else None,
        "command": train_command(config, names) if config else None,
        "note": note,
        "problem": problem,
        "limits": settings,
    }


def _with_dataset(
    request: Request, engine: Engine, owner_id: int, values: dict[str, Any], errors: dict[str, str]
) -> dict[str, Any]:
    """The values with the chosen uploaded data set as the folder (a message if it is not
    one of the caller's)."""
    try:
        with read_session(engine) as session:
            return dataset_runs.resolve(values, session, owner_id=owner_id)
    except InvalidInput as error:
        errors[error.field] = error.message
        return {k: v for k, v in values.items() if k != dataset_runs.FIELD}


def _checked(
    request: Request,
    engine: Engine,
    user: User | None,
    settings: Settings,
    values: dict[str, Any],
    errors: dict[str, str],
) -> RunConfig | None:
    """The config, with every check a launch makes except the queue (errors filled in).

    A visitor who has saved nothing yet owns no runs (no user has id 0)."""
    owner_id = user.id if user is not None and user.id is not None else 0
    config = config_or_errors(_with_dataset(request, engine, owner_id, values, errors), errors)
    if config is None:
        return None
    try:
        with read_session(engine) as session:
            check_for_user(config, session, owner_id=owner_id, settings=settings)
    except InvalidInput as error:
        errors[error.field] = error.message
        return None
    return config


@router.get("/new", response_class=HTMLResponse)
def new_run_page(
    request: Request,
    engine: EngineDep,
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
        run = _run_or_404(engine, source, user)
        if mode == "finetune":
            start = prefill.fine_tune_from(run)
            note = f"Fine-tuning from run {run.id}: its weights, a tenth of its learning rate."
        else:
            start = prefill.run_again(run)
            note = f"The config of run {run.id}."
    params = dict(request.query_params)
    if params.get("form") == "1":  # the form itself, sent by htmx as it changes
        return _checked_form(request, engine, user, settings, params)
    else:
        typed = display_values({**start, **query_values(params)})
        _, values, errors = read_form(
            {k: ("true" if v is True else v) for k, v in typed.items() if v is not False}
        )
        config = _checked(request, engine, user, settings, values, errors)
    context = _form_context(
        request,
        engine,
        user=user,
        settings=settings,
        typed=typed,
        errors=errors,
        config=config,
        note=note,
    )
    return render(request, "pages/run_new.html", context, fragment="partials/_run_form_check.html")


def _checked_form(
    request: Request, engine: Engine, user: User | None, settings: Settings, form: dict[str, Any]
) -> HTMLResponse:
    typed, values, errors = read_form(form)
    config = _checked(request, engine, user, settings, values, errors)
    context = _form_context(
        request, engine, user=user, settings=settings, typed=typed, errors=errors, config=config
    )
    return render(request, "pages/run_new.html", context, fragment="partials/_run_form_check.html")


@router.post("/new", response_class=HTMLResponse, dependencies=[CsrfChecked])
async def check_run_form(
    request: Request, engine: EngineDep, user: OptionalUser, settings: SettingsDep
) -> Response:
    """ "Check and show the config" without JavaScript: the form posted (so the CSRF token
    never lands in an address), answered with the whole form, messages and config."""
    form = await request.form()
    fields = {k: v for k, v in form.items() if isinstance(v, str)}
    return await run_in_threadpool(_checked_form, request, engine, user, settings, fields)


@router.post("", response_class=HTMLResponse, dependencies=[CsrfChecked])
async def create_run(
    request: Request, engine: EngineDep, user: ActingUser, settings: SettingsDep, jobs: JobsDep
) -> Response:
    """Start a run from the form; back to the form with every message if it cannot start."""
    form = await request.form()
    typed, values, errors = read_form({k: v for k, v in form.items() if isinstance(v, str)})
    owner_id = user.id if user.id is not None else 0
    values = await run_in_threadpool(_with_dataset, request, engine, owner_id, values, errors)
    config = config_or_errors(values, errors)
    problem = None
    status = 422
    if config is not None:
        try:
            run = await run_in_threadpool(
                dispatch.launch,
                config,
                owner=user,
                engine=engine,
                settings=settings,
                backend=jobs,
            )
        except InvalidInput as error:
            errors[error.field] = error.message
        except QueueFull as error:
            problem, status = str(error), 429
        except BackendUnavailable as error:
            problem, status = str(error), 503
        else:
            return RedirectResponse(f"/runs/{run.id}", status_code=303)
    context = await run_in_threadpool(
        lambda: _form_context(
            request,
            engine,
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


def _run_context(request: Request, engine: Engine, run: Run, settings: Settings) -> dict[str, Any]:
    """What the run page shows. While the run is live (polled every second by each viewer)
    only the progress and the curves are computed; the results once it has ended."""
    assert run.id is not None
    live = present.is_live(run)
    with read_session(engine) as session:
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
        with read_session(engine) as session:
            context["position"] = run_rows.queue_position(session, run=run)
    if live:
        return context
    metrics = run.metrics or {}
    with read_session(engine) as session:
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
        checkpoint=has_checkpoint(settings, run.id),
        best=best_val_accuracy(run),
        confusions=_confusions(metrics),
    )
    return context


def _confusions(metrics: dict[str, Any]) -> dict[str, Any] | None:
    """For a run of many classes: the top confusions (the page shows no full matrix)."""
    found = confusions.matrix_of(metrics)
    if found is None or len(found[0]) <= confusions.MATRIX_MAX_CLASSES:
        return None
    classes, matrix = found
    return {"classes": classes, "top": confusions.top(matrix), "limit": confusions.TOP}


@router.get("/{run_id}", response_class=HTMLResponse)
async def run_page(
    request: Request, engine: EngineDep, run_id: RunId, user: OptionalUser, settings: SettingsDep
) -> HTMLResponse:
    """The run; htmx polls the same URL for the status fragment while it is live.

    Served to one user at most RUN_PAGE_RATE a second (the others wait their turn, a 429
    past RUN_PAGE_MAX_WAIT), rendered in a worker thread, at most `page_cache.HEAVY_PAGES`
    at once: the others wait without holding the interpreter, so 20 viewers do not slow
    every other route."""
    if user is not None and user.id is not None:
        pace: page_cache.Pace = request.app.state.__dict__.setdefault(
            "run_page_pace", page_cache.Pace(settings.run_page_rate, settings.run_page_max_wait)
        )
        reserved, wait = pace.reserve(user.id)
        if not reserved:
            raise HTTPException(
                status_code=429,
                detail=(
                    f"More than {settings.run_page_rate:g} run pages a second asked for "
                    "(RUN_PAGE_RATE): wait a moment and reload."
                ),
                headers={"Retry-After": str(max(1, math.ceil(wait - settings.run_page_max_wait)))},
            )
        if wait:
            await anyio.sleep(wait)
    return await anyio.to_thread.run_sync(
        functools.partial(_run_page, request, engine, run_id, user, settings),
        limiter=page_cache.limiter(),
    )


def _run_page(
    request: Request, engine: Engine, run_id: int, user: User | None, settings: Settings
) -> HTMLResponse:
    state = request.app.state.__dict__
    results: page_cache.ResultsCache = state.setdefault("run_results", page_cache.ResultsCache())
    pages: page_cache.ResultsCache = state.setdefault("run_pages", page_cache.ResultsCache())
    owned, key = page_cache.ended_key(engine, settings, run_id=run_id, owner=user)
    if not owned:
        raise HTTPException(status_code=404, detail=f"No run {run_id} of yours.")
    token = csrf_token(request)
    # A link with a query shows it in the header's login link: such views are not kept.
    page_key = None
    if key is not None and not request.url.query:
        page_key = (key, is_fragment_request(request), signed_in_name(request))
        html = pages.get(page_key)
        if html is not None:
            return HTMLResponse(page_cache.with_token(html, token), headers={"Vary": "HX-Request"})
    cached = results.get(key) if key is not None else None
    run = page_cache.run_without_metrics(engine, run_id=run_id) if cached else None
    if run is None:
        run, cached = _run_or_404(engine, run_id, user), None
    context = _run_context(request, engine, run, settings)
    if key is not None and cached is None:
        cached = templates.env.get_template("partials/_run_results.html").render(
            {**context, "request": request}
        )
        results.put(key, cached)
    context["results_html"] = Markup(cached) if cached else None
    response = render(request, "pages/run.html", context, fragment="partials/_run_status.html")
    if page_key is not None:
        pages.put(page_key, page_cache.without_token(bytes(response.body).decode(), token))
    return response


@router.post("/{run_id}/cancel", dependencies=[CsrfChecked])
def cancel_run(
    request: Request, engine: EngineDep, run_id: RunId, user: OptionalUser, jobs: JobsDep
) -> Response:
    run = _run_or_404(engine, run_id, user)
    dispatch.cancel(run, engine=engine, backend=jobs)
    return RedirectResponse(f"/runs/{run_id}", status_code=303)


@router.get("/{run_id}/delete", response_class=HTMLResponse)
def confirm_delete_run(
    request: Request, engine: EngineDep, run_id: RunId, user: OptionalUser
) -> HTMLResponse:
    """Before a run is deleted: what depends on it (the experiments that used it, the runs
    that start from its weights), and a button that posts the delete."""
    run = _run_or_404(engine, run_id, user)
    context = delete_context(engine, run)
    return render(request, "pages/confirm_delete.html", context)


@router.post("/{run_id}/delete", dependencies=[CsrfChecked])
def delete_run(
    request: Request, engine: EngineDep, run_id: RunId, user: OptionalUser, settings: SettingsDep
) -> Response:
    run = _run_or_404(engine, run_id, user)
    if not dispatch.delete(run, engine=engine, settings=settings):
        raise HTTPException(
            status_code=409, detail=f"Run {run_id} is {run.status}: cancel it before deleting it."
        )
    return RedirectResponse("/runs", status_code=303)


@router.get("/{run_id}/confusion", response_class=HTMLResponse)
def confusion_cell(
    request: Request,
    engine: EngineDep,
    run_id: RunId,
    user: OptionalUser,
    true: Annotated[int, Query(ge=0, le=2**31 - 1)],
    predicted: Annotated[int, Query(ge=0, le=2**31 - 1)],
) -> HTMLResponse:
    """The validation images behind one cell of the confusion matrix, as far as they were kept."""
    run = _run_or_404(engine, run_id, user)
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


@router.get("/{run_id}/confusions", response_class=HTMLResponse)
def class_confusions(
    request: Request,
    engine: EngineDep,
    run_id: RunId,
    user: OptionalUser,
    name: Annotated[str, Query(alias="class", max_length=200)] = "",
) -> HTMLResponse:
    """One class's row and column of the confusion matrix (the search of a many-class run)."""
    run = _run_or_404(engine, run_id, user)
    found = confusions.matrix_of(run.metrics or {})
    if found is None:
        raise HTTPException(status_code=404, detail=f"Run {run_id} has no confusion matrix yet.")
    classes, matrix = found
    index = confusions.find_class(classes, name)
    row, column = confusions.of_class(matrix, index) if index is not None else ([], [])
    context = {
        "run": run,
        "query": name,
        "index": index,
        "classes": classes,
        "row": row,
        "column": column,
        "limit": confusions.TOP,
        "pct": present.pct,
    }
    return render(
        request, "pages/run_confusions.html", context, fragment="partials/_run_confusions.html"
    )


@router.get("/{run_id}/confusion.csv")
def confusion_csv(
    request: Request, engine: EngineDep, run_id: RunId, user: OptionalUser
) -> StreamingResponse:
    """The whole confusion matrix as CSV, streamed a row at a time (any number of classes)."""
    run = _run_or_404(engine, run_id, user)
    found = confusions.matrix_of(run.metrics or {})
    if found is None:
        raise HTTPException(status_code=404, detail=f"Run {run_id} has no confusion matrix yet.")
    classes, matrix = found
    return StreamingResponse(
        confusions.csv_rows(classes, matrix),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="run-{run_id}-confusion.csv"'},
    )
