"""Experiments: presets launched as groups of runs, trained end to end by the real worker code,
their findings; the API and pages; launch limits; dependencies between the runs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import recall_score
from sqlalchemy import Engine
from sqlmodel import func, select

from app.db import make_engine, read_session, write_session
from app.experiments.launch import describe, launch_experiment
from app.experiments.presets import PRESETS
from app.migrate import upgrade
from app.models import Experiment, Run, User
from app.models.common import utcnow
from app.repos import experiments as experiment_rows
from app.repos import runs as run_rows
from app.repos import users
from app.runs.execute import execute_run
from app.settings import Settings
from app.worker.training import ConfigError

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


def state(engine: Engine, experiment_id: int, owner_id: int) -> tuple[dict, list[Run]]:
    with read_session(engine) as session:
        row = experiment_rows.get_experiment(
            session, experiment_id=experiment_id, owner_id=owner_id
        )
        assert row is not None
        runs = experiment_rows.runs_in_order(session, experiment=row)
        return describe(row, PRESETS[row.preset], runs), runs


# --- every preset, end to end at test size ----------------------------------------------------


@pytest.mark.parametrize("name", list(PRESETS))
def test_every_preset_trains_end_to_end_and_states_a_finding(
    name: str, shared: tuple[Engine, Settings]
) -> None:
    engine, settings = shared
    user = new_user(engine)
    backend = NoBackend()
    preset = PRESETS[name]
    experiment = launch_experiment(
        preset, owner=user, engine=engine, settings=settings, backend=backend, quick=True
    )
    assert experiment.id is not None and user.id is not None
    assert len(experiment.run_ids) == len(preset.labels())
    assert backend.submitted == experiment.run_ids
    described, runs = state(engine, experiment.id, user.id)
    assert described["status"] == "queued"
    assert described["finding"] == {
        "shown": None,
        "summary": f"Waiting for the runs: 0 of {len(runs)} finished.",
    }
    trained = train_queue(engine, settings)
    assert trained == experiment.run_ids  # in order: the pretraining run first
    described, runs = state(engine, experiment.id, user.id)
    assert [run.status for run in runs] == ["succeeded"] * len(runs), [r.error for r in runs]
    assert described["status"] == "succeeded"
    finding = described["finding"]
    assert finding["shown"] in (True, False)
    # The summary states the effect with the runs' own numbers.
    assert any(ch.isdigit() for ch in finding["summary"])
    if name == "transfer":
        pretrain = runs[0]
        for run in runs[2:]:
            assert run.config["init"] == f"run:{pretrain.id}"
        assert pretrain.config["first_class"] == 0 and runs[1].config["first_class"] == 5
        assert (runs[1].metrics or {})["classes"] != (pretrain.metrics or {})["classes"]


def predictions(settings: Settings, run_id: int) -> tuple[np.ndarray, np.ndarray]:
    saved = np.load(settings.runs_dir / str(run_id) / "predictions.npz")
    return saved["y_true"], saved["y_prob"].argmax(1)


def test_imbalance_weighted_or_focal_raises_the_rarest_recall_over_plain_ce(
    shared: tuple[Engine, Settings],
) -> None:
    engine, settings = shared
    user = new_user(engine)
    experiment = launch_experiment(
        PRESETS["imbalance"],
        owner=user,
        engine=engine,
        settings=settings,
        backend=NoBackend(),
        quick=True,
    )
    train_queue(engine, settings)
    ce, weighted, focal, _ = experiment.run_ids
    rarest = 4
    recall = {}
    for run_id in (ce, weighted, focal):
        truth, guess = predictions(settings, run_id)
        recall[run_id] = recall_score(truth, guess, labels=[rarest], average=None)[0]
    assert max(recall[weighted], recall[focal]) > recall[ce]
    assert user.id is not None
    described, _ = state(engine, experiment.id or 0, user.id)
    assert described["finding"]["shown"] is True


def test_residual_keeps_the_first_layers_gradient_far_above_the_plain_nets(
    shared: tuple[Engine, Settings],
) -> None:
    engine, settings = shared
    user = new_user(engine)
    experiment = launch_experiment(
        PRESETS["residual"],
        owner=user,
        engine=engine,
        settings=settings,
        backend=NoBackend(),
        quick=True,
    )
    train_queue(engine, settings)
    assert user.id is not None and experiment.id is not None
    _, (plain, residual) = state(engine, experiment.id, user.id)
    for a, b in zip(plain.history, residual.history, strict=True):
        assert b["grad_norms"]["stem"] > 100 * a["grad_norms"]["stem"]


def test_transfer_reuses_a_succeeded_pretraining_run_of_the_learner(
    shared: tuple[Engine, Settings],
) -> None:
    engine, settings = shared
    user = new_user(engine)
    preset = PRESETS["transfer"]
    first = launch_experiment(
        preset, owner=user, engine=engine, settings=settings, backend=NoBackend(), quick=True
    )
    with write_session(engine) as session:  # train only the pretraining run
        assert run_rows.claim(session, run_id=first.run_ids[0], worker_id=WORKER, now=utcnow())
    execute_run(first.run_ids[0], engine=engine, settings=settings, worker_id=WORKER)
    backend = NoBackend()
    second = launch_experiment(
        preset, owner=user, engine=engine, settings=settings, backend=backend, quick=True
    )
    assert second.run_ids[0] == first.run_ids[0]
    assert backend.submitted == second.run_ids[1:]  # the pretraining run is not queued again
    trained = train_queue(engine, settings)  # the rest of both groups, from the one pretraining
    assert sorted(trained) == sorted(first.run_ids[1:] + second.run_ids[1:])


def test_runs_after_a_failed_pretraining_run_fail_and_the_finding_says_why(
    shared: tuple[Engine, Settings],
) -> None:
    engine, settings = shared
    user = new_user(engine)
    experiment = launch_experiment(
        PRESETS["transfer"],
        owner=user,
        engine=engine,
        settings=settings,
        backend=NoBackend(),
        quick=True,
    )
    pretrain = experiment.run_ids[0]
    with write_session(engine) as session:
        row = run_rows.run_by_id(session, run_id=pretrain)
        assert row is not None
        run_rows.request_cancel(session, run=row, now=utcnow())  # queued → cancelled at once
    trained = train_queue(engine, settings)
    assert trained == [experiment.run_ids[1]]  # from scratch: it depends on nothing
    assert user.id is not None and experiment.id is not None
    described, runs = state(engine, experiment.id, user.id)
    assert [r.status for r in runs] == ["cancelled", "succeeded", "failed", "failed"]
    assert runs[2].error == (
        f"run {pretrain}, which this run starts from, ended cancelled: nothing to start from"
    )
    assert described["status"] == "failed"
    assert described["finding"]["shown"] is None
    assert "ended cancelled" in described["finding"]["summary"]


def test_a_preset_over_the_queue_limit_names_it_and_creates_nothing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    upgrade(url)
    settings = Settings(
        DATA_DIR=tmp_path / "data", DATABASE_URL=url, SECRET_KEY="k", RUN_MAX_QUEUED=3
    )
    engine = make_engine(url)
    user = new_user(engine)
    with pytest.raises(ConfigError) as error:
        launch_experiment(
            PRESETS["imbalance"],
            owner=user,
            engine=engine,
            settings=settings,
            backend=NoBackend(),
        )
    assert error.value.field == "preset"
    assert "RUN_MAX_QUEUED" in str(error.value) and "4 runs" in str(error.value)
    with read_session(engine) as session:
        assert session.exec(select(func.count()).select_from(Run)).one() == 0
        assert session.exec(select(func.count()).select_from(Experiment)).one() == 0
    engine.dispose()
