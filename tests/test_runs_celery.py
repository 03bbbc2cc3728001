"""Runs on real `cvprep worker` processes over the real Redis, state in PostgreSQL, through a
real `cvprep serve` with JOBS_BACKEND=celery.

Each test session uses its own Celery queue name, so nothing else on the Redis is touched.
Runs are tiny (shapes at 16 px); waits are generous, the CPU is shared.
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
import sqlalchemy

from benchmarks.load import ROOT, serving
from tests.test_runs_worker import LONG, TINY, ended, training, wait_for


def start_worker(env: dict[str, str], log: Path) -> subprocess.Popen:
    """`cvprep worker` in its own process (and process group) with `env`."""
    return subprocess.Popen(
        [sys.executable, "-m", "app.cli", "worker"],
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def stop_worker(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def wait_for_workers(base_url: str, count: int, timeout: float = 90) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        jobs = httpx.get(f"{base_url}/healthz", timeout=5).json()["jobs"]
        if jobs.get("workers", 0) >= count:
            return jobs
        assert time.monotonic() < deadline, f"workers did not come up: {jobs}"
        time.sleep(0.3)


class Cluster:
    def __init__(self, base_url: str, env: dict[str, str], database_url: str, data: Path):
        self.base_url, self.env, self.data = base_url, env, data
        self.engine = sqlalchemy.create_engine(database_url)
        self.workers: list[subprocess.Popen] = []

    def add_worker(self) -> subprocess.Popen:
        worker = start_worker(self.env, self.data / f"worker-{len(self.workers)}.log")
        self.workers.append(worker)
        return worker

    def holder(self, run_id: int) -> int:
        """The pid of the process that holds (or held) the run."""
        with self.engine.connect() as connection:
            worker = connection.exec_driver_sql(
                "SELECT worker_id FROM run WHERE id = %s", (run_id,)
            ).scalar_one()
        return int(worker.rsplit(":", 1)[1])


def forget_queue(redis_url: str, queue: str) -> None:
    """Delete what a test session's queue left in Redis (its list, binding, presence keys)."""
    import redis

    client = redis.Redis.from_url(redis_url)
    for key in client.scan_iter(match=f"*{queue}*", count=500):
        client.delete(key)
    client.close()


def parent_of(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("PPid:")).split()[1])


@pytest.fixture(scope="module")
def cluster(
    tmp_path_factory: pytest.TempPathFactory, postgres_url: str, redis_url: str
) -> Iterator[Cluster]:
    """A server with JOBS_BACKEND=celery on PostgreSQL and one `cvprep worker`."""
    data = tmp_path_factory.mktemp("celery-runs")
    env = {
        "DATA_DIR": str(data),
        "DATABASE_URL": postgres_url,
        "JOBS_BACKEND": "celery",
        "REDIS_URL": redis_url,
        "CELERY_QUEUE": f"cvprep-test-{os.getpid()}-{int(time.time())}",
        "RUN_THREADS": "1",
        "RUN_HEARTBEAT_TIMEOUT": "5",
        "SECRET_KEY": "test-secret-key",
    }
    with serving(env) as (_, base_url):
        cluster = Cluster(base_url, env, postgres_url, data)
        cluster.add_worker()
        try:
            wait_for_workers(base_url, 1)
            yield cluster
        finally:
            for worker in cluster.workers:
                stop_worker(worker)
            cluster.engine.dispose()
            forget_queue(redis_url, env["CELERY_QUEUE"])


def test_a_run_end_to_end_on_a_celery_worker(cluster: Cluster) -> None:
    with httpx.Client(base_url=cluster.base_url, timeout=60) as client:
        created = client.post("/api/runs", json=TINY)
        assert created.status_code == 202, created.text
        run_id = created.json()["id"]
        body = wait_for(client, run_id, ended)
        assert body["status"] == "succeeded", body["error"]
        assert body["attempt"] == 1 and [h["epoch"] for h in body["history"]] == [1, 2, 3]
        # Trained in a pool child of the worker, not in the worker's main process.
        assert cluster.holder(run_id) != cluster.workers[0].pid
        raw = client.get(f"/api/runs/{run_id}/files/predictions.npz")
        predictions = np.load(io.BytesIO(raw.content))
        y_pred = predictions["y_prob"].argmax(1)
        accuracy = float((y_pred == predictions["y_true"]).mean())
        assert body["metrics"]["val_accuracy"] == pytest.approx(accuracy)
        health = client.get("/healthz").json()["jobs"]
        assert health["backend"] == "celery" and health["ok"] and health["redis"] == "ok"


def test_torch_lives_only_in_the_pool_child(cluster: Cluster) -> None:
    """CUDA can only be set up in a process that did not inherit it: the main process of the
    worker never loads torch; its pool child does, before its first run."""
    main = cluster.workers[0].pid

    def child_has_torch() -> bool:
        # The child of the last run may just have exited and the next not yet be forked.
        children = Path(f"/proc/{main}/task/{main}/children").read_text().split()
        try:
            return any("libtorch" in Path(f"/proc/{c}/maps").read_text() for c in children)
        except OSError:
            return False

    deadline = time.monotonic() + 60
    while not child_has_torch():
        assert time.monotonic() < deadline, "the pool child never loaded torch"
        time.sleep(0.3)
    assert "libtorch" not in Path(f"/proc/{main}/maps").read_text()


def test_cancel_reaches_the_run_on_the_worker(cluster: Cluster) -> None:
    with httpx.Client(base_url=cluster.base_url, timeout=60) as client:
        run_id = client.post("/api/runs", json=LONG).json()["id"]
        wait_for(client, run_id, training)
        asked = time.monotonic()
        assert client.delete(f"/api/runs/{run_id}").status_code == 202
        body = wait_for(client, run_id, ended, timeout=60)
        assert body["status"] == "cancelled" and body["error"] is None
        assert time.monotonic() - asked < 10


def test_a_killed_worker_leaves_its_run_interrupted_and_never_trains_it_twice(
    cluster: Cluster,
) -> None:
    with httpx.Client(base_url=cluster.base_url, timeout=60) as client:
        run_id = client.post("/api/runs", json=LONG).json()["id"]
        running = wait_for(client, run_id, training)
        child = cluster.holder(run_id)
        os.kill(child, signal.SIGKILL)
        killed = time.monotonic()
        body = wait_for(client, run_id, ended, timeout=60)
        # Ended by whichever saw it first: the next pool child, handed the message again
        # (late acknowledgement, rejected on worker loss), finding the holder's process gone,
        # or the web's sweeper (RUN_HEARTBEAT_TIMEOUT=5 here).
        assert time.monotonic() - killed < 20
        assert body["status"] == "interrupted", body
        assert "died" in body["error"] or "no heartbeat" in body["error"]
        assert body["attempt"] == 1 and body["started"] == running["started"]
        # The message did come back, and was not trained again.
        log = cluster.data / "worker-0.log"
        deadline = time.monotonic() + 60
        while f"run {run_id}: skip" not in log.read_text():
            assert time.monotonic() < deadline, "the lost run's message never came back"
            time.sleep(0.3)
        again = client.get(f"/api/runs/{run_id}").json()
        assert (again["status"], again["attempt"], again["started"]) == (
            "interrupted",
            1,
            running["started"],
        )
        assert f"took run {run_id} " not in log.read_text().split(f"took run {run_id} ", 1)[1]
        # The worker itself lives on and trains the next run.
        assert cluster.workers[0].poll() is None
        after = client.post("/api/runs", json=TINY).json()["id"]
        assert wait_for(client, after, ended)["status"] == "succeeded"


def test_two_workers_share_the_queue_and_each_user_gets_a_fair_share(cluster: Cluster) -> None:
    second = cluster.add_worker()
    wait_for_workers(cluster.base_url, 2)
    with (
        httpx.Client(base_url=cluster.base_url, timeout=60) as alice,
        httpx.Client(base_url=cluster.base_url, timeout=60) as bob,
    ):
        first = alice.post("/api/runs", json=LONG).json()["id"]
        wait_for(alice, first, training)
        # Alice's second run would be next in the queue; Bob's run goes first all the same
        # (RUN_MAX_RUNNING_PER_USER=1), on the other worker.
        waiting = alice.post("/api/runs", json=LONG).json()["id"]
        other = bob.post("/api/runs", json=LONG).json()["id"]
        wait_for(bob, other, training, timeout=120)
        assert alice.get(f"/api/runs/{waiting}").json()["status"] == "queued"
        parents = {parent_of(cluster.holder(first)), parent_of(cluster.holder(other))}
        assert parents == {cluster.workers[0].pid, second.pid}
        # Once Alice's first run ends, her second starts.
        alice.delete(f"/api/runs/{first}")
        wait_for(alice, waiting, training, timeout=120)
        for client, run_id in ((alice, waiting), (bob, other)):
            client.delete(f"/api/runs/{run_id}")
            assert wait_for(client, run_id, ended, timeout=60)["status"] == "cancelled"


def test_a_whole_worker_killed_leaves_its_run_interrupted_by_the_sweeper(cluster: Cluster) -> None:
    with httpx.Client(base_url=cluster.base_url, timeout=60) as client:
        run_id = client.post("/api/runs", json=LONG).json()["id"]
        wait_for(client, run_id, training)
        holder = cluster.holder(run_id)
        # The machine goes away: every worker process at once, nobody left to re-queue.
        for worker in cluster.workers:
            if worker.poll() is None:
                os.killpg(worker.pid, signal.SIGKILL)
                worker.wait(10)
        killed = time.monotonic()
        body = wait_for(client, run_id, ended, timeout=60)
        # RUN_HEARTBEAT_TIMEOUT=5 here: the web process's sweeper marks it.
        assert time.monotonic() - killed < 20
        assert body["status"] == "interrupted" and "no heartbeat" in body["error"]
        assert cluster.holder(run_id) == holder and body["attempt"] == 1
        # A new worker takes new runs; the lost message is not trained again.
        cluster.add_worker()
        after = client.post("/api/runs", json=TINY).json()["id"]
        assert wait_for(client, after, ended)["status"] == "succeeded"
        again = client.get(f"/api/runs/{run_id}").json()
        assert (again["status"], again["attempt"]) == ("interrupted", 1)
