"""The scale-out job backend: runs are sent to Celery workers (`cvprep worker`) over Redis.

`submit` publishes the run id once, with no retry loop: if Redis cannot be reached within
`CONNECT_TIMEOUT_S` it raises BackendUnavailable (the launch then marks the run failed and
says why). `cancel` does nothing more than the row's flag, which the worker holding the run
reads with its heartbeat wherever it is. The web process sweeps for silent runs (no heartbeat
for RUN_HEARTBEAT_TIMEOUT: a worker machine that died) and marks them interrupted, as the local
backend does. When the web process starts, it sends every queued run's id once more: one that
died between saving a run and sending its id left that run with no message, and a duplicate
message is harmless (the row decides: a delivery for a run already claimed is skipped).
`health` pings Redis and counts the workers that announced themselves.
"""

from __future__ import annotations

import logging
import threading
from datetime import timedelta
from typing import Any

import redis
from kombu.exceptions import KombuError, OperationalError
from kombu.utils.url import maybe_sanitize_url
from sqlalchemy import Engine

from app.db import read_session, write_session
from app.models.common import utcnow
from app.repos import runs as run_rows
from app.runs.backend import BackendUnavailable
from app.runs.celery_app import CONNECT_TIMEOUT_S, TASK_NAME, make_celery
from app.runs.celery_worker import presence_prefix
from app.settings import Settings

logger = logging.getLogger("cvprep.runs")

SWEEP_S = 5.0  # how often silent runs are looked for
HEALTH_TIMEOUT_S = 1.0  # /healthz waits at most this long for Redis


class CeleryBackend:
    """Runs trained by Celery workers anywhere (see the module docstring)."""

    name = "celery"

    def __init__(self, settings: Settings, engine: Engine) -> None:
        self.settings, self.engine = settings, engine
        self.celery = make_celery(settings)
        self.where = str(maybe_sanitize_url(settings.redis_url))  # no password in messages
        self.closing = threading.Event()
        self.sweeper: threading.Thread | None = None

    def start(self) -> None:
        if self.sweeper is not None:
            return
        self.closing.clear()
        self.sweeper = threading.Thread(target=self._sweep_loop, name="run-sweeper", daemon=True)
        self.sweeper.start()

    def stop(self) -> None:
        # Runs live on the workers: stopping the web process leaves them training.
        if self.sweeper is None:
            return
        self.closing.set()
        self.sweeper.join()
        self.sweeper = None

    def submit(self, run_id: int) -> None:
        """Send run `run_id` to the queue. Raises BackendUnavailable if Redis cannot take it."""
        try:
            self.celery.send_task(
                TASK_NAME, args=[run_id], queue=self.settings.celery_queue, retry=False
            )
        except (OperationalError, KombuError, redis.RedisError, OSError) as error:
            # Where and why go to the log only: a web user's message names no host or port.
            logger.warning("run %s not sent to Redis at %s: %s", run_id, self.where, error)
            raise BackendUnavailable(
                "the job queue (Redis, REDIS_URL) cannot be reached, so no run can start "
                "now; try again in a minute (the server's log says why)"
            ) from error

    def cancel(self, run_id: int) -> None:
        # The worker holding the run reads the row's flag with its heartbeat, on any machine.
        return None

    def health(self) -> dict[str, Any]:
        state: dict[str, Any] = {"backend": self.name, "queue": self.settings.celery_queue}
        client = redis.Redis.from_url(
            self.settings.redis_url,
            socket_connect_timeout=min(HEALTH_TIMEOUT_S, CONNECT_TIMEOUT_S),
            socket_timeout=HEALTH_TIMEOUT_S,
        )
        try:
            client.ping()
            workers = sum(
                1 for _ in client.scan_iter(match=presence_prefix(self.settings) + "*", count=100)
            )
            waiting = int(client.llen(self.settings.celery_queue))  # type: ignore[arg-type]
        except redis.RedisError as error:
            # The kind of failure only: /healthz is public, the host and port go to the log.
            logger.warning("health: Redis at %s: %s", self.where, error)
            state.update(ok=False, redis="unreachable", error=type(error).__name__)
            return state
        finally:
            client.close()
        state.update(ok=workers > 0, redis="ok", workers=workers, messages_waiting=waiting)
        return state

    # --- the sweeper ---------------------------------------------------------------------------

    def resend_queued(self) -> list[int]:
        """Send every queued run's id again; the ids sent, oldest first. Stops at the first
        run Redis cannot take (logged: the next start sends them)."""
        with read_session(self.engine) as session:
            ids = run_rows.queued_ids(session)
        sent: list[int] = []
        for run_id in ids:
            try:
                self.submit(run_id)
            except BackendUnavailable as error:
                logger.warning("queued runs not sent again: %s", error)
                break
            sent.append(run_id)
        return sent

    def _sweep_loop(self) -> None:
        try:
            self.resend_queued()
        except Exception:
            logger.exception("sending queued runs again failed")
        while not self.closing.wait(SWEEP_S):
            try:
                self.sweep()
            except Exception:
                logger.exception("looking for silent runs failed")

    def sweep(self) -> list[int]:
        """Mark running runs without a heartbeat for RUN_HEARTBEAT_TIMEOUT interrupted."""
        timeout = self.settings.run_heartbeat_timeout
        now = utcnow()
        with write_session(self.engine) as session:
            ids = run_rows.interrupt_silent(
                session,
                before=now - timedelta(seconds=timeout),
                reason=(
                    f"its worker sent no heartbeat for {timeout:g} s (the worker or its "
                    "machine stopped, or lost the database); start the run again to redo it"
                ),
                now=now,
            )
        if ids:
            logger.warning("runs interrupted for lack of a heartbeat: %s", ids)
        return ids
