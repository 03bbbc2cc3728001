"""A run's engine events become its row: the reporter the engine calls while it trains.

`RunReporter` is the engine's `on_event` and `should_stop` for one run. It turns each event
into the row's columns (`Started` → info, epochs, steps; `StepProgress` → epoch, step, loss,
images/s, ETA and the live loss curve, written at most every `PROGRESS_WRITE_S` seconds;
`EpochEnd` → the latest metrics and the history), stamps a heartbeat every `HEARTBEAT_S`
seconds from its own thread and reads the cancel flag there. `outcome` says what the row's
status and error are when the engine returns. `app.runs.present` formats the row for pages;
`app.runs.execute` drives one run with this reporter.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine

from app.db import write_session
from app.models.common import utcnow
from app.models.runs import CANCELLED, FAILED, INTERRUPTED, SUCCEEDED
from app.repos import runs as run_rows
from app.settings import Settings
from app.worker.training import EpochEnd, Event, Failed, Started, StepProgress
from app.worker.training.outputs import finite

logger = logging.getLogger("cvprep.runs")

HEARTBEAT_S = 0.5  # heartbeat and cancel-flag read; a cancel takes effect within about this
PROGRESS_WRITE_S = 0.5  # step progress is written at most this often
CURVE_POINTS = 400  # the live loss curve keeps at most this many points

SERVER_STOPPED = "the server stopped while this run was training; start it again to redo it"


def thin(points: list[list[float]], limit: int = CURVE_POINTS) -> list[list[float]]:
    """At most `limit` points, evenly spread, always keeping the first and the last."""
    if len(points) <= limit:
        return points
    step = (len(points) - 1) / (limit - 1)
    return [points[round(i * step)] for i in range(limit)]


class RunReporter:
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


def final_curve(metrics: dict[str, Any], steps: int) -> list[list[float]]:
    """Every step's loss from metrics.json as [epoch fraction, loss], thinned."""
    losses = metrics.get("step_loss") or []
    if not steps:
        return []
    return thin([[round((i + 1) / steps, 5), loss] for i, loss in enumerate(losses)])


def outcome(reporter: RunReporter, status: str, error: str | None) -> tuple[str, str | None]:
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
