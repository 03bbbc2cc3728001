"""The local job backend: RUN_WORKERS worker processes beside the web process, supervised.

`start` spawns the workers (app.runs.local_worker; "spawn", never fork) and a supervisor
thread. Every `SUPERVISE_S` seconds the supervisor checks each worker process; one that has
exited (killed, out of memory, crashed) has its run marked `interrupted` with the reason and
is started again. Every `SWEEP_S` seconds it also marks interrupted any running run whose
heartbeat is older than RUN_HEARTBEAT_TIMEOUT (a worker that died unseen, e.g. in a server
that was killed). `stop` asks the workers to end: a run in progress stops at its next step,
keeps its checkpoint and ends `interrupted`; queued runs stay queued for the next start.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import threading
import time
from datetime import timedelta
from multiprocessing.context import SpawnProcess
from typing import Any

from sqlalchemy import Engine

from app.db import write_session
from app.models.common import utcnow
from app.repos import runs as run_rows
from app.runs import local_worker
from app.runs.reporting import SERVER_STOPPED
from app.settings import Settings

logger = logging.getLogger("cvprep.runs")

SUPERVISE_S = 0.5  # how often worker processes are checked
SWEEP_S = 5.0  # how often silent runs are looked for
STOP_WAIT_S = 6.0  # at shutdown, how long a worker may take to end its run cleanly
MAX_BACKOFF_S = 30.0  # a worker that keeps dying is restarted at most this often
STEADY_S = 60.0  # a worker that lived this long before it died is restarted at once


def describe_exit(exitcode: int | None) -> str:
    """A worker process's end in words: "killed by SIGKILL", "exited with status 1"."""
    if exitcode is None:
        return "stopped"
    if exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        return f"killed by {name}"
    return f"exited with status {exitcode}"


class _Slot:
    """One worker process and what the supervisor knows of it."""

    def __init__(self, index: int) -> None:
        self.index = index
        self.process: SpawnProcess | None = None
        self.worker_id: str | None = None
        self.deaths = 0  # every exit, for health()
        self.failing = 0  # exits in a row of workers that died young: the restart back-off
        self.started = 0.0
        self.next_start = 0.0


class LocalBackend:
    """Runs trained by worker processes of this server (see the module docstring)."""

    name = "local"

    def __init__(self, settings: Settings, engine: Engine) -> None:
        self.settings, self.engine = settings, engine
        self.context = multiprocessing.get_context("spawn")
        # Made in start(), and only when there are workers: each holds named semaphores.
        self.wake: Any = None
        self.stopping: Any = None
        self.slots = [_Slot(i) for i in range(settings.run_workers)]
        self.closing = threading.Event()
        self.supervisor: threading.Thread | None = None
        self.lock = threading.Lock()

    # --- JobBackend -----------------------------------------------------------------------

    def start(self) -> None:
        if not self.slots or self.supervisor is not None:
            return
        self.wake = self.context.Event()
        self.stopping = self.context.Event()
        with self.lock:
            for slot in self.slots:
                self._spawn(slot)
        self.supervisor = threading.Thread(
            target=self._supervise, name="run-supervisor", daemon=True
        )
        self.supervisor.start()

    def stop(self) -> None:
        if self.supervisor is None:
            return
        self.closing.set()
        self.supervisor.join()
        self.stopping.set()
        self.wake.set()
        deadline = time.monotonic() + STOP_WAIT_S
        for slot in self.slots:
            if slot.process is not None:
                slot.process.join(max(0.0, deadline - time.monotonic()))
        for slot in self.slots:
            process = slot.process
            if process is not None and process.is_alive():
                process.terminate()
                process.join(2)
                if process.is_alive():
                    process.kill()
                    process.join(2)
        # A worker that ended cleanly has written its run's end; one that was made to stop
        # could not, so its run is marked here.
        held = [slot.worker_id for slot in self.slots if slot.worker_id]
        self._interrupt(held, SERVER_STOPPED)
        self.supervisor = None
        # Release the processes and the shared events now: their semaphores are unlinked here,
        # not left for the resource tracker to find when the server exits on a signal.
        for slot in self.slots:
            if slot.process is not None:
                slot.process.close()
                slot.process = None
        self.wake = self.stopping = None

    def submit(self, run_id: int) -> None:
        if self.supervisor is not None:
            self.wake.set()

    def cancel(self, run_id: int) -> None:
        # The worker reads the flag with its heartbeat (app.runs.reporting.HEARTBEAT_S).
        return None

    def health(self) -> dict[str, Any]:
        alive = sum(1 for s in self.slots if s.process is not None and s.process.is_alive())
        return {
            "backend": self.name,
            "ok": alive == len(self.slots) and len(self.slots) > 0,
            "workers": len(self.slots),
            "workers_alive": alive,
            "worker_restarts": sum(s.deaths for s in self.slots),
        }

    # --- supervision -------------------------------------------------------------------------

    def _spawn(self, slot: _Slot) -> None:
        process = self.context.Process(
            target=local_worker.main,
            args=(self.settings, self.wake, self.stopping, os.getpid()),
            name=f"cvprep-run-worker-{slot.index}",
            daemon=True,  # never outlives the server, whatever happens to it
        )
        process.start()
        assert process.pid is not None
        slot.process = process
        slot.started = time.monotonic()
        slot.worker_id = local_worker.worker_id_for(process.pid)
        logger.info("run worker %s started", slot.worker_id)

    def _supervise(self) -> None:
        last_sweep = 0.0
        while not self.closing.wait(SUPERVISE_S):
            for slot in self.slots:
                try:
                    self._check(slot)
                except Exception:
                    logger.exception("supervising run worker %s failed", slot.index)
            if time.monotonic() - last_sweep >= SWEEP_S:
                last_sweep = time.monotonic()
                try:
                    self._sweep()
                except Exception:
                    logger.exception("looking for silent runs failed")

    def _check(self, slot: _Slot) -> None:
        process = slot.process
        if process is not None and process.exitcode is None:
            return
        now = time.monotonic()
        if process is not None:
            how = describe_exit(process.exitcode)
            reason = f"the worker process training it {how}; start the run again to redo it"
            runs = self._interrupt([slot.worker_id] if slot.worker_id else [], reason)
            logger.warning("run worker %s %s; runs interrupted: %s", slot.worker_id, how, runs)
            process.close()
            slot.process = None
            slot.deaths += 1
            slot.failing = 1 if now - slot.started >= STEADY_S else slot.failing + 1
            # 0, 1, 3, 7, 15, 30 s: a worker that cannot even start does not spin the CPU.
            slot.next_start = now + min(MAX_BACKOFF_S, 2.0 ** min(slot.failing - 1, 5) - 1)
        if now >= slot.next_start and not self.closing.is_set():
            with self.lock:
                self._spawn(slot)

    def _sweep(self) -> None:
        timeout = self.settings.run_heartbeat_timeout
        now = utcnow()
        with write_session(self.engine) as session:
            ids = run_rows.interrupt_silent(
                session,
                before=now - timedelta(seconds=timeout),
                reason=f"its worker sent no heartbeat for {timeout:g} s (it stopped or was lost)",
                now=now,
            )
        if ids:
            logger.warning("runs interrupted for lack of a heartbeat: %s", ids)

    def _interrupt(self, worker_ids: list[str], reason: str) -> list[int]:
        if not worker_ids:
            return []
        with write_session(self.engine) as session:
            return run_rows.interrupt_held_by(
                session, worker_ids=worker_ids, reason=reason, now=utcnow()
            )
