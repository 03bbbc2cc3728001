"""The local backend's worker process: torch imported once, then claim and train runs forever.

Started by `LocalBackend` with multiprocessing's "spawn" method (a fresh interpreter: CUDA
cannot be initialised in a forked child, and the web process's threads and sockets are not
copied). It claims the oldest queued run from the database, trains it through
`execute_run`, and waits for the next one: woken at once by the web process after a submit,
and by a poll every `POLL_S` seconds otherwise (a run queued while it was busy, or before a
restart). It stops when the web process asks, or when the web process is gone.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
from typing import Any

from app.settings import Settings

logger = logging.getLogger("cvprep.runs")

POLL_S = 2.0  # look for queued runs at least this often, woken or not
NICENESS = 10  # training is batch work: the web process's requests go first on a busy CPU


def worker_id_for(pid: int) -> str:
    """The id a worker writes into the rows it holds: host and process id."""
    return f"{socket.gethostname()}:{pid}"


def thread_count(settings: Settings) -> int:
    """torch threads per worker: RUN_THREADS, or all cores but one shared among the workers."""
    if settings.run_threads:
        return settings.run_threads
    cores = os.cpu_count() or 1
    return max(1, (cores - 1) // max(1, settings.run_workers))


def main(settings: Settings, wake: Any, stop: Any, parent_pid: int) -> None:
    """The process's whole life. `wake` and `stop` are multiprocessing Events of the parent."""
    # Ctrl-C in a terminal reaches the whole process group; the parent decides when this
    # process stops (through `stop`), so the run in progress ends cleanly.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: worker %(message)s")
    with contextlib.suppress(OSError):
        os.nice(NICENESS)
    threads = thread_count(settings)
    import torch  # once, here: every run of this process shares it

    torch.set_num_threads(threads)
    torch.set_num_interop_threads(1)

    from app.db import make_engine, write_session
    from app.models.common import utcnow
    from app.repos import runs as run_rows
    from app.runs.execute import execute_run

    engine = make_engine(settings.sqlalchemy_url)
    worker_id = worker_id_for(os.getpid())

    def orphaned() -> bool:
        return os.getppid() != parent_pid

    def should_end() -> bool:
        return stop.is_set() or orphaned()

    logger.info("%s ready (%d torch threads)", worker_id, threads)
    try:
        while not should_end():
            # Cleared before looking, so a submit that lands while we look wakes the next wait.
            wake.clear()
            while not should_end():
                with write_session(engine) as session:
                    run_id = run_rows.claim_next(
                        session,
                        worker_id=worker_id,
                        now=utcnow(),
                        max_running_per_user=settings.run_max_running_per_user,
                    )
                if run_id is None:
                    break
                logger.info("%s took run %s", worker_id, run_id)
                status = execute_run(
                    run_id,
                    engine=engine,
                    settings=settings,
                    worker_id=worker_id,
                    shutdown=should_end,
                    num_threads=threads,
                )
                logger.info("%s ended run %s: %s", worker_id, run_id, status)
            wake.wait(POLL_S)
    finally:
        engine.dispose()
