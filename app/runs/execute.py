"""Execute one claimed run: load its row, build the RunConfig, call the engine, write what
happens into the row. Every job backend calls this (the local worker process now; a task
queue's task the same way), so a run reports the same wherever it trains.

While the engine trains, a heartbeat thread stamps the row every `HEARTBEAT_S` seconds and
reads its cancel flag; the engine's `should_stop` is true once the flag is set, the run
outgrows a limit (RUN_MAX_SECONDS, RUN_MAX_IMAGES), the caller shuts down, or the row says
the run is no longer this worker's. Step progress reaches the row at most every
`PROGRESS_WRITE_S` seconds; the start, every epoch's end and the outcome at once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine

from app.db import read_session, write_session
from app.messages import without_paths
from app.models.common import utcnow
from app.models.runs import CANCELLED, FAILED, INTERRUPTED, SUCCEEDED
from app.repos import runs as run_rows
from app.runs.files import remove_run_files, run_dir
from app.settings import Settings
from app.worker.training import (
    ConfigError,
    EpochEnd,
    Event,
    Failed,
    RunConfig,
    Started,
    StepProgress,
)
from app.worker.training import run as train
from app.worker.training.data import cache
from app.worker.training.outputs import finite

logger = logging.getLogger("cvprep.runs")

HEARTBEAT_S = 0.5  # heartbeat and cancel-flag read; a cancel takes effect within about this
PROGRESS_WRITE_S = 0.5  # step progress is written at most this often
CURVE_POINTS = 400  # the live loss curve keeps at most this many points
WRITE_TRIES = 5  # the outcome is written this many times before the run is given up on
# Figures of metrics.json that stay on disk only: long per-step series and the traceback.
_DISK_ONLY = ("history", "step_loss", "traceback")

SERVER_STOPPED = "the server stopped while this run was training; start it again to redo it"


def thin(points: list[list[float]], limit: int = CURVE_POINTS) -> list[list[float]]:
    """At most `limit` points, evenly spread, always keeping the first and the last."""
    if len(points) <= limit:
        return points
    step = (len(points) - 1) / (limit - 1)
    return [points[round(i * step)] for i in range(limit)]


class _Reporter:
    """The engine's `on_event` and `should_stop` for one run, writing into its row."""

    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        run_id: int,
        worker_id: str,
        shutdown: Callable[[], bool],
    ) -> None:
        self.engine, self.settings = engine, settings
        self.run_id, self.worker_id, self.shutdown = run_id, worker_id, shutdown
        self.began = time.monotonic()
        self.stop_reason: str | None = None  # cancel | time | images | shutdown | lost
        self.curve: list[list[float]] = []
        self.history: list[dict[str, Any]] = []
        self.info: dict[str, Any] = {}
        self.last_write = 0.0
        self.done = threading.Event()
        self.heart = threading.Thread(
            target=self._beat, name=f"run-{run_id}-heartbeat", daemon=True
        )

    # --- the row -----------------------------------------------------------------------------

    def write(self, values: dict[str, Any]) -> None:
        """Write into the row; a lost run stops, a database error is logged and skipped."""
        try:
            with write_session(self.engine) as session:
                held = run_rows.report(
                    session, run_id=self.run_id, worker_id=self.worker_id, values=values
                )
        except Exception:
            logger.exception("run %s: progress not written", self.run_id)
            return
        if not held:
            self.stop_reason = self.stop_reason or "lost"

    def _beat(self) -> None:
        while not self.done.wait(HEARTBEAT_S):
            try:
                with write_session(self.engine) as session:
                    flag = run_rows.beat(
                        session, run_id=self.run_id, worker_id=self.worker_id, now=utcnow()
                    )
            except Exception:
                logger.exception("run %s: heartbeat not written", self.run_id)
                continue
            if flag is None:
                self.stop_reason = self.stop_reason or "lost"
            elif flag:
                self.stop_reason = self.stop_reason or "cancel"

    # --- the engine's callbacks ----------------------------------------------------------------

    def should_stop(self) -> bool:
        if self.stop_reason is None:
            if self.shutdown():
                self.stop_reason = "shutdown"
            elif time.monotonic() - self.began > self.settings.run_max_seconds:
                self.stop_reason = "time"
        return self.stop_reason is not None

    def on_event(self, event: Event) -> None:
        if isinstance(event, StepProgress):
            self.curve.append([round(event.epoch - 1 + event.step / event.steps, 5), event.loss])
            if len(self.curve) > 2 * CURVE_POINTS:
                self.curve = thin(self.curve)
            now = time.monotonic()
            if now - self.last_write < PROGRESS_WRITE_S and event.step != event.steps:
                return
            self.last_write = now
            self.write(
                finite(
                    {
                        "epoch": event.epoch,
                        "epochs": event.epochs,
                        "step": event.step,
                        "steps": event.steps,
                        "loss": event.loss,
                        "images_per_s": event.images_per_s,
                        "eta_s": event.eta_s,
                        "curve": thin(self.curve),
                    }
                )
            )
        elif isinstance(event, Started):
            self.info = {
                key: value for key, value in event.to_dict().items() if key not in ("kind",)
            }
            images = event.train_size + event.val_size
            if images > self.settings.run_max_images:
                self.stop_reason = "images"
                self.info["too_many_images"] = images
            self.write(
                finite(
                    {
                        "info": self.info,
                        "epochs": event.epochs,
                        "steps": event.steps_per_epoch,
                        "epoch": event.start_epoch,
                    }
                )
            )
        elif isinstance(event, EpochEnd):
            latest = dict(event.metrics)
            self.history.append(
                {k: v for k, v in latest.items() if k not in ("confusion_matrix", "per_class")}
            )
            latest["classes"] = self.info.get("classes", [])
            self.write(finite({"metrics": latest, "history": self.history}))
        elif isinstance(event, Failed):
            logger.info("run %s failed: %s", self.run_id, event.message)


def _final_curve(metrics: dict[str, Any], steps: int) -> list[list[float]]:
    """Every step's loss from metrics.json as [epoch fraction, loss], thinned."""
    losses = metrics.get("step_loss") or []
    if not steps:
        return []
    return thin([[round((i + 1) / steps, 5), loss] for i, loss in enumerate(losses)])


def _outcome(reporter: _Reporter, status: str, error: str | None) -> tuple[str, str | None]:
    """The row's status and error for how the engine ended and why it was stopped."""
    if status != "cancelled":
        return (SUCCEEDED, None) if status == "succeeded" else (FAILED, error)
    settings, reason = reporter.settings, reporter.stop_reason
    if reason == "time":
        return CANCELLED, (
            f"stopped at the run-time limit of {settings.run_max_seconds} s (RUN_MAX_SECONDS); "
            "what it learnt until then is kept"
        )
    if reason == "images":
        images = reporter.info.get("too_many_images")
        return FAILED, (
            f"images: the data set has {images} images, more than the limit of "
            f"{settings.run_max_images} per run (RUN_MAX_IMAGES)"
        )
    if reason == "shutdown":
        return INTERRUPTED, SERVER_STOPPED
    return CANCELLED, None


def _evict_cache(settings: Settings) -> None:
    """Hold DATA_DIR/cache under DATA_CACHE_MAX_BYTES, least recently used entries first."""
    try:
        removed = cache.evict(settings.data_dir / "cache", settings.data_cache_max_bytes)
    except OSError:
        logger.exception("the decode cache could not be trimmed")
        return
    if removed:
        logger.info("decode cache: removed %s (DATA_CACHE_MAX_BYTES)", ", ".join(removed))


def execute_run(
    run_id: int,
    *,
    engine: Engine,
    settings: Settings,
    worker_id: str,
    shutdown: Callable[[], bool] = lambda: False,
    num_threads: int | None = None,
) -> str | None:
    """Train run `run_id`, which `worker_id` has claimed (status running), to its end.

    Writes progress, the latest metrics and a heartbeat into the row while it trains and the
    outcome at the end: succeeded; cancelled (the owner asked, or RUN_MAX_SECONDS passed);
    failed with the message (a bad config, a missing file, anything the engine raised, or more
    images than RUN_MAX_IMAGES); interrupted when `shutdown()` turned true. The engine's files
    go to DATA_DIR/runs/<id>/. `num_threads` caps torch's intra-op threads.

    Returns the status written, or None when the row was no longer this worker's to write
    (it was marked interrupted meanwhile). Never raises for a failure of the run itself.
    """
    with read_session(engine) as session:
        row = run_rows.run_by_id(session, run_id=run_id)
    if row is None or row.worker_id != worker_id:
        return None
    # A run always starts afresh: nothing left in its folder (by an earlier attempt, or by a
    # database that was reset while DATA_DIR was kept) may pass for its output.
    remove_run_files(settings, run_id)
    reporter = _Reporter(engine, settings, run_id, worker_id, shutdown)
    reporter.heart.start()
    values: dict[str, Any] = {}
    status: str
    message: str | None
    try:
        config = RunConfig.from_dict(row.config)
        result = train(
            config,
            reporter.on_event,
            reporter.should_stop,
            out_dir=run_dir(settings, run_id),
            data_dir=settings.data_dir,
            runs_dir=settings.runs_dir,
            num_threads=num_threads,
        )
    except ConfigError as error:
        status, message = FAILED, str(error)
    except Exception as error:  # the engine raises only before training; anything else is ours
        logger.exception("run %s could not start", run_id)
        status, message = FAILED, f"{type(error).__name__}: {error}"
    else:
        status, message = _outcome(reporter, result.status, result.error)
        metrics = {k: v for k, v in result.metrics.items() if k not in _DISK_ONLY}
        history = result.metrics.get("history") or reporter.history
        values = {"metrics": metrics, "history": history}
        curve = _final_curve(result.metrics, int(reporter.info.get("steps_per_epoch", 0)))
        if curve:
            values["curve"] = curve
    finally:
        reporter.done.set()
        reporter.heart.join()
    if message is not None:
        message = without_paths(message, settings)
    _evict_cache(settings)
    if reporter.stop_reason == "lost":
        return None
    for attempt in range(WRITE_TRIES):
        try:
            with write_session(engine) as session:
                held = run_rows.finish(
                    session,
                    run_id=run_id,
                    worker_id=worker_id,
                    status=status,
                    error=message,
                    values=finite(values),
                    now=utcnow(),
                )
            return status if held else None
        except Exception:
            logger.exception("run %s: outcome not written (try %d)", run_id, attempt + 1)
            time.sleep(1 + attempt)
    return None
