"""Experiments: presets launched as groups of runs, trained end to end by the real worker code,
their findings; the API and pages; launch limits; dependencies between the runs."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlmodel import func, select

from app.db import make_engine, read_session, write_session
from app.experiments.launch import describe, launch_experiment
from app.experiments.presets import PRESETS, Cell
from app.migrate import upgrade
from app.models import Experiment, Run, User
from app.models.common import utcnow
from app.repos import experiments as experiment_rows
from app.repos import runs as run_rows
from app.repos import users
from app.runs.execute import execute_run
from app.settings import Settings
from app.worker.errors import InvalidInput
from app.worker.training import RunConfig

WORKER = "test:experiments"


class NoBackend:
    """Takes the submitted ids; the test trains them in its own process, as a worker would."""

    name = "test"

    def __init__(self) -> None:
        self.submitted: list[int] = []

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def submit(self, run_id: int) -> None:
        self.submitted.append(run_id)

    def cancel(self, run_id: int) -> None: ...

    def health(self) -> dict:
        return {"backend": "test", "ok": True}


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> tuple[Engine, Settings]:
    """One SQLite database and DATA_DIR for the module: the shapes cache is built once."""
    root = tmp_path_factory.mktemp("experiments")
    url = f"sqlite:///{root / 'cvprep.sqlite3'}"
    upgrade(url)
    settings = Settings(DATA_DIR=root / "data", DATABASE_URL=url, SECRET_KEY="test-secret-key")
    engine = make_engine(url)
    yield engine, settings
    engine.dispose()


def new_user(engine: Engine) -> User:
    with write_session(engine) as session:
        user = users.create_guest(session)
        session.commit()
        session.refresh(user)
    return user


def train_queue(engine: Engine, settings: Settings) -> list[int]:
    """Claim and train every claimable queued run, oldest first, as the local worker does."""
    done = []
    while True:
        with write_session(engine) as session:
            run_id = run_rows.claim_next(session, worker_id=WORKER, now=utcnow())
        if run_id is None:
            return done
        execute_run(run_id, engine=engine, settings=settings, worker_id=WORKER, num_threads=1)
        done.append(run_id)


def state(
    engine: Engine, settings: Settings, experiment_id: int, owner_id: int
) -> tuple[dict, list[Run]]:
    with read_session(engine) as session:
        row = experiment_rows.get_experiment(
            session, experiment_id=experiment_id, owner_id=owner_id
        )
        assert row is not None
        runs = experiment_rows.runs_in_order(session, experiment=row)
        return describe(row, PRESETS[row.preset], runs, settings.runs_dir), runs


def launch_test_size(engine: Engine, settings: Settings, name: str, user: User, backend=None):
    return launch_experiment(
        PRESETS[name],
        owner=user,
        engine=engine,
        settings=settings,
        backend=backend or NoBackend(),
        size="test",
    )


# --- every preset, end to end at test size ----------------------------------------------------


@pytest.mark.parametrize("name", list(PRESETS))
def test_every_preset_trains_end_to_end_and_gives_a_verdict_with_per_seed_numbers(
    name: str, shared: tuple[Engine, Settings]
) -> None:
    engine, settings = shared
    user = new_user(engine)
    backend = NoBackend()
    preset = PRESETS[name]
    experiment = launch_test_size(engine, settings, name, user, backend)
    assert experiment.id is not None and user.id is not None
    plan = preset.plan("test")
    assert len(experiment.run_ids) == len(plan) == len(experiment.cells)
    assert backend.submitted == experiment.run_ids  # the count shown is the count queued
    assert preset.sizes["test"].seeds >= 3
    described, runs = state(engine, settings, experiment.id, user.id)
    assert described["status"] == "queued"
    assert described["finding"]["outcome"] == "pending"
    assert described["finding"]["summary"] == f"Waiting for the runs: 0 of {len(runs)} finished."
    trained = train_queue(engine, settings)
    assert trained == experiment.run_ids  # in order: a pretraining run first, then seed by seed
    described, runs = state(engine, settings, experiment.id, user.id)
    assert [run.status for run in runs] == ["succeeded"] * len(runs), [r.error for r in runs]
    assert described["status"] == "succeeded"
    finding = described["finding"]
    assert finding["outcome"] in ("shown", "not shown", "inconclusive")
    assert finding["summary"].startswith(finding["outcome"].capitalize())
    # Paired seeds: seed i of every arm has seed i and data_seed i.
    for run, (arm, seed) in zip(runs, experiment.cells, strict=True):
        if seed is not None:
            assert run.config["seed"] == run.config["data_seed"] == seed
            assert {**run.config, "seed": 0, "data_seed": 0} | {} == {
                **RunConfig.from_dict(
                    {k: v for k, v in preset.config(Cell(arm, 0), "test").items() if k != "init"}
                    | ({"init": run.config["init"]} if run.config["init"] != "scratch" else {})
                ).to_dict(),
                "seed": 0,
                "data_seed": 0,
            }
    arms = {arm["key"]: arm for arm in described["arms"]}
    for arm in preset.arms_at("test"):
        values = arms[arm.key]["val_accuracy"]
        assert len(values) == (1 if arm.once else 3)
        assert arms[arm.key]["mean"] == pytest.approx(sum(values) / len(values))
    if name == "transfer":
        pretrain = runs[0]
        assert experiment.cells[0] == ["pretrain", None]
        for run, (arm, _) in zip(runs, experiment.cells, strict=True):
            if arm in ("frozen", "finetuned"):
                assert run.config["init"] == f"run:{pretrain.id}"
        assert pretrain.config["first_class"] == 0 and runs[1].config["first_class"] == 5
        assert arms["pretrain"]["comparable"] is False


def test_the_transfer_backbone_is_always_the_experiments_own_run(
    shared: tuple[Engine, Settings],
) -> None:
    engine, settings = shared
    user = new_user(engine)
    first = launch_test_size(engine, settings, "transfer", user)
    train_queue(engine, settings)  # a succeeded run of the same architecture now exists
    with write_session(engine) as session:  # a succeeded single run that would "match"
        run_rows.create_run(
            session,
            owner_id=user.id or 0,
            config=RunConfig.from_dict(
                PRESETS["transfer"].config(Cell("pretrain", None), "test")
            ).to_dict(),
            now=utcnow(),
        )
        session.commit()
    train_queue(engine, settings)
    second = launch_test_size(engine, settings, "transfer", user)
    assert second.run_ids[0] not in first.run_ids  # a new pretraining run, never another's
    with read_session(engine) as session:
        rows = {r.id: r for r in session.exec(select(Run).where(Run.id.in_(second.run_ids))).all()}  # type: ignore[attr-defined]
    for run_id, (arm, _) in zip(second.run_ids, second.cells, strict=True):
        if arm in ("frozen", "finetuned"):
            assert rows[run_id].config["init"] == f"run:{second.run_ids[0]}"
    train_queue(engine, settings)


def test_runs_after_a_failed_pretraining_run_fail_and_the_verdict_says_why(
    shared: tuple[Engine, Settings],
) -> None:
    engine, settings = shared
    user = new_user(engine)
    experiment = launch_test_size(engine, settings, "transfer", user)
    pretrain = experiment.run_ids[0]
    with write_session(engine) as session:
        row = run_rows.run_by_id(session, run_id=pretrain)
        assert row is not None
        run_rows.request_cancel(session, run=row, now=utcnow())  # queued → cancelled at once
    train_queue(engine, settings)
    assert user.id is not None and experiment.id is not None
    described, runs = state(engine, settings, experiment.id, user.id)
    statuses = {
        arm: run.status
        for run, (arm, seed) in zip(runs, experiment.cells, strict=True)
        if seed in (None, 0)
    }
    assert statuses == {
        "pretrain": "cancelled",
        "scratch": "succeeded",
        "frozen": "failed",
        "finetuned": "failed",
    }
    failed = next(r for r, (arm, _) in zip(runs, experiment.cells, strict=True) if arm == "frozen")
    assert failed.error == (
        f"run {pretrain}, which this run starts from, ended cancelled: nothing to start from"
    )
    assert described["status"] == "failed"
    assert described["finding"]["outcome"] == "inconclusive"
    assert "ended cancelled" in described["finding"]["summary"]


def test_a_second_live_experiment_is_refused_naming_the_limit_and_creates_nothing(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    upgrade(url)
    settings = Settings(DATA_DIR=tmp_path / "data", DATABASE_URL=url, SECRET_KEY="k")
    engine = make_engine(url)
    user = new_user(engine)
    # The biggest preset launches under the default limits of a fresh install.
    first = launch_experiment(
        PRESETS["batchnorm"], owner=user, engine=engine, settings=settings, backend=NoBackend()
    )
    assert len(first.run_ids) == len(PRESETS["batchnorm"].plan()) > settings.run_max_queued
    with pytest.raises(InvalidInput) as error:
        launch_experiment(
            PRESETS["imbalance"], owner=user, engine=engine, settings=settings, backend=NoBackend()
        )
    assert error.value.field == "preset"
    assert "EXPERIMENT_MAX_LIVE" in str(error.value)
    with read_session(engine) as session:
        assert session.exec(select(func.count()).select_from(Run)).one() == len(first.run_ids)
        assert session.exec(select(func.count()).select_from(Experiment)).one() == 1
    engine.dispose()


def test_running_a_preset_again_takes_the_next_seeds_so_the_noise_shows(
    shared: tuple[Engine, Settings],
) -> None:
    engine, settings = shared
    user = new_user(engine)
    first = launch_test_size(engine, settings, "residual", user)
    train_queue(engine, settings)
    second = launch_test_size(engine, settings, "residual", user)
    assert sorted({seed for _, seed in first.cells}) == [0, 1, 2]
    assert sorted({seed for _, seed in second.cells}) == [3, 4, 5]
    train_queue(engine, settings)
    assert user.id is not None and second.id is not None
    described, runs = state(engine, settings, second.id, user.id)
    assert described["seed_values"] == [3, 4, 5]
    assert {run.config["data_seed"] for run in runs} == {3, 4, 5}
    assert described["finding"]["outcome"] != "pending"


def test_guests_together_meet_a_cap_on_live_experiments(tmp_path: Path) -> None:
    """Identities are free: many guest cookies must not mean many experiments training."""
    url = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    upgrade(url)
    settings = Settings(
        DATA_DIR=tmp_path / "data", DATABASE_URL=url, SECRET_KEY="k", EXPERIMENT_MAX_LIVE_GUESTS=1
    )
    engine = make_engine(url)
    first, second = new_user(engine), new_user(engine)
    launch_experiment(
        PRESETS["residual"], owner=first, engine=engine, settings=settings, backend=NoBackend()
    )
    with pytest.raises(InvalidInput) as error:
        launch_experiment(
            PRESETS["residual"], owner=second, engine=engine, settings=settings, backend=NoBackend()
        )
    assert error.value.field == "preset" and "EXPERIMENT_MAX_LIVE_GUESTS" in str(error.value)
    engine.dispose()
