"""Execute one claimed run: load its row, build the RunConfig, call the engine, write what
happens into the row. Every job backend calls this (the local worker process now; a task
queue's task the same way), so a run reports the same wherever it trains.

While the engine trains, `app.runs.reporting.RunReporter` turns its events into the row and
answers its `should_stop`: true once the cancel flag is set, the run outgrows a limit
(RUN_MAX_SECONDS, RUN_MAX_IMAGES), the caller shuts down, or the row says the run is no longer
this worker's. Here: the run starts afresh, trains, and its outcome is written.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine

from app.db import read_session, write_session
from app.messages import without_paths
from app.models.common import utcnow
from app.models.runs import FAILED
from app.repos import runs as run_rows
from app.runs.files import remove_run_files, run_dir
from app.runs.reporting import RunReporter, final_curve, outcome
from app.settings import Settings
from app.worker.errors import InvalidInput
from app.worker.training import RunConfig
from app.worker.training import run as train
from app.worker.training.data import cache
from app.worker.training.outputs import finite

logger = logging.getLogger("cvprep.runs")

WRITE_TRIES = 5  # the outcome is written this many times before the run is given up on
# Figures of metrics.json that stay on disk only: long per-step series and the traceback.
_DISK_ONLY = ("history", "step_loss", "traceback")


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
    reporter = RunReporter(engine, settings, run_id, worker_id, shutdown)
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
    except InvalidInput as error:
        status, message = FAILED, str(error)
    except Exception as error:  # the engine raises only before training; anything else is ours
        logger.exception("run %s could not start", run_id)
        status, message = FAILED, f"{type(error).__name__}: {error}"
    else:
        status, message = outcome(reporter, result.status, result.error)
        metrics = {k: v for k, v in result.metrics.items() if k not in _DISK_ONLY}
        history = result.metrics.get("history") or reporter.history
        values = {"metrics": metrics, "history": history}
        curve = final_curve(result.metrics, int(reporter.info.get("steps_per_epoch", 0)))
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
