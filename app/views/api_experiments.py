"""JSON API for experiments: the presets, launching one, and an experiment's state and finding.

Another user's experiment is a 404, like one that does not exist. A launch is checked as the
runs it queues would be one by one, and as a whole against RUN_MAX_QUEUED (a 422 naming it).
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Request
from pydantic import BaseModel, Field

from app.auth import ActingUser, OptionalUser
from app.db import EngineDep, SessionDep
from app.deps import JobsDep, SettingsDep
from app.errors import API_ERRORS, ErrorBody
from app.experiments.launch import describe
from app.experiments.presets import PRESETS
from app.repos import experiments as experiment_rows
from app.views.api_quiz import NOT_JSON, require_json
from app.views.experiments import launch_preset

router = APIRouter(prefix="/api/experiments", tags=["experiments"], responses=API_ERRORS)

ExperimentId = Annotated[int, Path(ge=1, le=2**31 - 1, description="The experiment's id")]
MAX_BODY_BYTES = 4096


class ExperimentAccepted(BaseModel):
    id: int
    runs: list[int] = Field(description="The runs' ids in the preset's order")


class ComparisonOut(BaseModel):
    arm: str
    baseline: str
    metric: str
    arm_values: list[float] = Field(description="The arm's figure, seed by seed")
    baseline_values: list[float] = Field(description="The baseline's figure, seed by seed")
    diffs: list[float] = Field(description="Per seed, in the claim's direction (> 0 favours it)")
    mean: float | None
    noise: float | None = Field(description="Half-width of the 95 % t interval over the seeds")
    margin: float
    noninferior: bool = Field(description="The claim is 'no worse than': compared with −margin")
    mcnemar: dict[str, float] | None = Field(
        description="McNemar's exact test on the same validation images: {b, c, n, p}"
    )
    bootstrap: list[float] | None = Field(
        description="95 % paired bootstrap interval over the same images (macro-F1)"
    )
    outcome: str


class FindingOut(BaseModel):
    outcome: str = Field(description="shown | not shown | inconclusive | pending")
    shown: bool | None = Field(
        description="true: shown; false: not shown; null: inconclusive or not finished"
    )
    summary: str
    comparisons: list[ComparisonOut]
    evidence: list[str] = Field(description="Each comparison in one sentence, every number")
    notes: list[str]


class ArmOut(BaseModel):
    key: str
    label: str
    once: bool = Field(description="Trained once, not per seed (transfer's pretraining run)")
    val_accuracy: list[float | None] = Field(description="Per seed (one value for a `once` arm)")
    mean: float | None
    spread: float | None = Field(description="Sample standard deviation over the seeds")
    comparable: bool = Field(description="False for a figure measured on other classes")


class ExperimentRunOut(BaseModel):
    id: int
    arm: str | None
    seed: int | None
    label: str
    status: str
    val_accuracy: float | None
    error: str | None
    epoch: int | None = Field(description="While running: the epoch under way, from 1")
    epochs: int | None = Field(description="While running: the epochs it trains")
    eta_s: float | None = Field(
        description="While running: seconds until it ends at the current rate, once known"
    )


class ExperimentOut(BaseModel):
    id: int
    preset: str
    title: str
    question: str = Field(description="The question's slug: /questions/{question}")
    claim: str
    design: str
    notice: str
    size: str = Field(description="default | full")
    seeds: int
    seed_values: list[int] = Field(
        description="The seeds used (each sets seed and data_seed); a rerun takes the next ones"
    )
    status: str = Field(description="queued | running | succeeded | failed")
    runs: list[ExperimentRunOut]
    arms: list[ArmOut]
    finding: FindingOut
    training_seconds: float | None = Field(description="Summed over the runs, s")


class PresetArmOut(BaseModel):
    key: str
    label: str
    once: bool
    series: str
    x: float | None


class PresetOut(BaseModel):
    name: str
    question: str
    title: str
    claim: str
    design: str
    notice: str
    arms: list[PresetArmOut]
    seeds: int
    runs: int = Field(description="How many runs a launch at the default size queues")
    minutes: float | None = Field(description="Expected wall time on a quiet 2-core CPU")
    sizes: dict[str, dict[str, Any]]
    configs: list[dict[str, Any]] = Field(description="Every run's config, in queueing order")


@router.get("/presets", response_model=list[PresetOut])
def list_presets() -> list[dict[str, Any]]:
    """Every preset: its question, claim, what to notice and the runs it queues."""
    return [preset.to_dict() for preset in PRESETS.values()]


@router.post(
    "",
    status_code=202,
    response_model=ExperimentAccepted,
    dependencies=[Depends(require_json)],
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "properties": {
                            "preset": {"type": "string", "enum": list(PRESETS)},
                            "size": {"type": "string", "enum": ["default", "full", "test"]},
                        },
                        "required": ["preset"],
                        "additionalProperties": False,
                    }
                }
            },
        }
    },
    responses={
        **NOT_JSON,
        422: {
            "description": "Unknown preset or size, or a run over a limit (the limit named, "
            "e.g. EXPERIMENT_MAX_LIVE); nothing is created",
            "model": ErrorBody,
        },
        503: {
            "description": "The job queue cannot be reached; the runs were recorded as failed",
            "model": ErrorBody,
        },
    },
)
async def create_experiment(
    request: Request, engine: EngineDep, user: ActingUser, settings: SettingsDep, jobs: JobsDep
) -> ExperimentAccepted:
    """Launch a preset: its runs are queued; poll `GET /api/experiments/{id}`."""
    raw = await request.body()
    if len(raw) > MAX_BODY_BYTES:
        raise HTTPException(status_code=413, detail=f"body: larger than {MAX_BODY_BYTES} bytes")
    try:
        values = json.loads(raw)
    except (ValueError, RecursionError):
        raise HTTPException(status_code=400, detail="body: not valid JSON") from None
    if not isinstance(values, dict) or set(values) - {"preset", "size"}:
        raise HTTPException(
            status_code=422, detail='body: expected {"preset": NAME, "size"?: SIZE} only'
        )
    experiment = await launch_preset(
        engine,
        values.get("preset"),
        user=user,
        settings=settings,
        jobs=jobs,
        size=values.get("size"),
    )
    assert experiment.id is not None
    return ExperimentAccepted(id=experiment.id, runs=list(experiment.run_ids))


@router.get(
    "/{experiment_id}",
    response_model=ExperimentOut,
    responses={404: {"description": "No such experiment of yours", "model": ErrorBody}},
)
def read_experiment(
    experiment_id: ExperimentId, session: SessionDep, user: OptionalUser, settings: SettingsDep
) -> dict[str, Any]:
    """The experiment's claim, status, runs and finding."""
    experiment = None
    if user is not None and user.id is not None:
        experiment = experiment_rows.get_experiment(
            session, experiment_id=experiment_id, owner_id=user.id
        )
    preset = PRESETS.get(experiment.preset) if experiment is not None else None
    if experiment is None or preset is None:
        raise HTTPException(status_code=404, detail=f"No experiment {experiment_id} of yours.")
    runs = experiment_rows.runs_in_order(session, experiment=experiment)
    return describe(experiment, preset, runs, settings.runs_dir)
