"""Runs on Celery workers over Redis, each figure beside a baseline measured in the same run:

- submit → first progress seen over HTTP with a warm `cvprep worker` (its pool child forked
  and torch imported), beside the same with the local backend's warm worker process; both
  also beside the engine's own time to its first step (metrics.json), so the difference is
  what the queue, the database and the worker add;
- runs per minute on short runs with two workers beside one worker (RUN_THREADS=1 each).

Needs Redis (BENCH_REDIS_URL, default redis://127.0.0.1:6379/14; a queue named for this run);
the database is a SQLite file shared by the server and its workers on this machine.
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
import redis

from app.runs.files import run_dir
from app.settings import Settings
from app.worker.training.outputs import METRICS
from benchmarks.load import ROOT, running_server
from benchmarks.runs import SHORT, _ended, _stepped, _wait

REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
SUBMITS = 5
WARM_PAUSE_S = 2.0  # between submits, on both backends
BATCH = 8  # short runs per throughput measurement


@contextmanager
def celery_worker(env: dict[str, str], log: Path) -> Iterator[subprocess.Popen]:
    """`cvprep worker` with `env` over this process's environment; stopped on exit."""
    process = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "worker"],
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)


def _wait_workers(client: httpx.Client, count: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while client.get("/healthz").json()["jobs"].get("workers", 0) < count:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{count} workers did not come up")
        time.sleep(0.3)


def _wait_warm(worker: subprocess.Popen | None, timeout: float = 120) -> None:
    """Until the worker's pool child has imported torch and sleeps waiting for work (it was
    forked afresh after the last run): the state a worker is in between runs."""
    if worker is None:
        return
    deadline = time.monotonic() + timeout
    idle = 0
    while idle < 5:
        if time.monotonic() > deadline:
            raise RuntimeError("the worker's pool child did not become ready")
        time.sleep(0.2)
        try:
            children = Path(f"/proc/{worker.pid}/task/{worker.pid}/children").read_text().split()
            ready = bool(children) and all(
                "libtorch" in Path(f"/proc/{c}/maps").read_text()
                and Path(f"/proc/{c}/stat").read_text().rsplit(")", 1)[1].split()[0] == "S"
                for c in children
            )
        except OSError:
            ready = False
        idle = idle + 1 if ready else 0


def _first_progress(
    client: httpx.Client, data_dir: Path, worker: subprocess.Popen | None = None
) -> tuple[list[float], list[float]]:
    """(submit → first step seen over HTTP, the engine's own time to its first step), in s,
    each submit made with the worker warm (for Celery: its next pool child ready)."""
    warm = client.post("/api/runs", json=SHORT).json()["id"]  # caches the data set
    _wait(client, warm, _ended, pause=0.2)
    seen, engine = [], []
    for _ in range(SUBMITS):
        time.sleep(WARM_PAUSE_S)
        _wait_warm(worker)
        began = time.perf_counter()
        run_id = client.post("/api/runs", json=SHORT).json()["id"]
        _wait(client, run_id, _stepped)
        seen.append(time.perf_counter() - began)
        body = _wait(client, run_id, _ended, pause=0.1)
        assert body["status"] == "succeeded", body["error"]
        metrics = json.loads((run_dir(Settings(DATA_DIR=data_dir), run_id) / METRICS).read_text())
        engine.append(metrics["timing"]["to_first_step_s"])
    return seen, engine


def _throughput(client: httpx.Client) -> float:
    """Short runs per minute: BATCH runs submitted at once, until the last has ended."""
    began = time.perf_counter()
    ids = [client.post("/api/runs", json=SHORT).json()["id"] for _ in range(BATCH)]
    for run_id in ids:
        body = _wait(client, run_id, _ended, pause=0.2, timeout=900)
        assert body["status"] == "succeeded", body["error"]
    return BATCH / (time.perf_counter() - began) * 60


def _summary(label: str, seen: list[float], engine: list[float]) -> str:
    added = statistics.median(s - e for s, e in zip(seen, engine, strict=True))
    return (
        f"{label:<28} submit → first progress: median {statistics.median(seen):.3f} s, "
        f"max {max(seen):.3f} s; engine's own {statistics.median(engine):.3f} s; "
        f"added {added:.3f} s"
    )


def main(data_dir: Path) -> None:
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except redis.RedisError as error:
        print(f"\nScale-out: skipped, no Redis at {REDIS_URL} ({error})")
        return
    queue = f"cvprep-bench-{os.getpid()}"
    common = {"RUN_THREADS": "1", "DATABASE_URL": "", "SECRET_KEY": "bench"}
    celery = {
        **common,
        "JOBS_BACKEND": "celery",
        "REDIS_URL": REDIS_URL,
        "CELERY_QUEUE": queue,
        "RUN_MAX_RUNNING_PER_USER": str(BATCH),
        "RUN_MAX_QUEUED": str(BATCH),
    }

    local_dir = data_dir / "local"
    with (
        running_server(local_dir, {**common, "RUN_WORKERS": "1"}) as base_url,
        httpx.Client(base_url=base_url, timeout=60) as client,
    ):
        local_seen, local_engine = _first_progress(client, local_dir)

    celery_dir = data_dir / "celery"
    env = {**celery, "DATA_DIR": str(celery_dir)}
    with ExitStack() as stack:
        base_url = stack.enter_context(running_server(celery_dir, celery))
        client = stack.enter_context(httpx.Client(base_url=base_url, timeout=60))
        worker = stack.enter_context(celery_worker(env, data_dir / "worker-1.log"))
        _wait_workers(client, 1)
        celery_seen, celery_engine = _first_progress(client, celery_dir, worker)
        _wait_warm(worker)
        one = _throughput(client)
        second = stack.enter_context(celery_worker(env, data_dir / "worker-2.log"))
        _wait_workers(client, 2)
        _wait_warm(worker)
        _wait_warm(second)
        two = _throughput(client)

    print(
        f"\nScale-out: Celery workers over Redis beside the local backend (SQLite, {SUBMITS} submits)"
    )
    print(_summary("local backend, warm", local_seen, local_engine))
    print(_summary("celery worker, warm", celery_seen, celery_engine))
    ratio = statistics.median(celery_seen) / statistics.median(local_seen)
    print(f"celery / local, submit → first progress: {ratio:.2f}x")
    print(
        f"short runs ({BATCH} at once, RUN_THREADS=1, {os.cpu_count()} cores): one worker "
        f"{one:.1f} runs/min, two workers {two:.1f} runs/min: {two / one:.2f}x "
        "(each run also pays a fresh child's torch import)"
    )


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory(prefix="cvprep-bench-") as tmp:
        main(Path(tmp))
