"""`cvprep worker`: a Celery worker that trains runs, on this machine or any other.

The main process never imports torch; it forks pool children (`--concurrency`, one run per
child at a time, a fresh child per run). Each child sets up its database engine and imports
torch right after the fork, while it waits for work (so a waiting worker is warm), and CUDA
is first touched by the run itself; the task and those hooks are in `app.runs.celery_tasks`,
this module only starts the worker. `--gpu N` pins the worker to one GPU through
CUDA_VISIBLE_DEVICES, set before anything could import torch: start one worker per GPU.

While it runs, the main process writes a short-lived key into Redis every few seconds
(`cvprep:worker:<queue>:<name>`), so the web process's /healthz can count live workers
without a broadcast.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import threading
import time
from typing import Any

from app.settings import Settings

logger = logging.getLogger("cvprep.runs")

PRESENCE_S = 5.0  # how often a worker refreshes its presence key
PRESENCE_TTL_S = 20  # a key not refreshed for this long lapses: the worker is gone


def presence_prefix(settings: Settings) -> str:
    """The Redis key prefix under which the workers of CELERY_QUEUE announce themselves."""
    return f"cvprep:worker:{settings.celery_queue}:"


def _threads(settings: Settings, concurrency: int) -> int:
    if settings.run_threads:
        return settings.run_threads
    return max(1, (os.cpu_count() or 1) // max(1, concurrency))


def _announce(settings: Settings, name: str, info: dict[str, Any], stop: threading.Event) -> None:
    import redis

    client = redis.Redis.from_url(settings.redis_url, socket_connect_timeout=2, socket_timeout=2)
    key = presence_prefix(settings) + name
    while True:
        try:
            client.set(key, json.dumps(info), ex=PRESENCE_TTL_S)
        except redis.RedisError:
            logger.warning("worker %s: could not announce itself to Redis", name)
        if stop.wait(PRESENCE_S):
            break
    with contextlib.suppress(redis.RedisError):
        client.delete(key)


def _pin_gpu(gpu: str | None) -> None:
    """Make GPU `gpu` (an index, or comma-separated indices) the only one CUDA will show to
    this process and its children. Effective only before torch initialises CUDA: call it
    before anything imports torch. None leaves the environment as it is."""
    if gpu is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = gpu


def run_worker(settings: Settings, *, concurrency: int = 1, gpu: str | None = None) -> int:
    """Start the worker and block until it stops (SIGTERM: the runs in progress finish first).

    `gpu`: a GPU index (or comma-separated indices) for CUDA_VISIBLE_DEVICES; None leaves the
    environment's. Returns the worker's exit status.
    """
    _pin_gpu(gpu)
    from celery import signals

    from app.runs.celery_tasks import configure

    app = configure(settings, threads=_threads(settings, concurrency))

    name = f"cvprep-{os.getpid()}@{socket.gethostname()}"
    stop = threading.Event()
    info = {"name": name, "concurrency": concurrency, "gpu": gpu, "started": time.time()}
    announcer = threading.Thread(
        target=_announce, args=(settings, name, info, stop), name="presence", daemon=True
    )

    @signals.worker_ready.connect(weak=False)
    def ready(**_: Any) -> None:
        announcer.start()

    argv = [
        "worker",
        f"--hostname={name}",
        f"--queues={settings.celery_queue}",
        f"--concurrency={concurrency}",
        "--pool=prefork",
        "--loglevel=INFO",
        "--without-gossip",
        "--without-mingle",
    ]
    try:
        app.worker_main(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    finally:
        stop.set()
        if announcer.is_alive():
            announcer.join(5)
    return 0
